/**
 * The local side of a transfer's plan: the files a local glob pattern
 * matches, the tree below a local directory, and where a download lands.
 *
 * @module
 */

import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { globToRegExp, splitPattern } from "./glob.ts";
import { localPathInside } from "./local_target.ts";
import { remoteBase } from "./remote_path.ts";

/** A local file and its size in bytes. */
export interface LocalFile {
  /** Its path. */
  path: string;
  /** Its size in bytes. */
  size: number;
}

/**
 * The regular files in one directory whose names match the glob in the
 * last segment of `pattern`, sorted by path.
 *
 * @example
 * ```ts
 * import { expandLocalGlob } from "./local_files.ts";
 * const matches = await expandLocalGlob("*.no-such-extension-here");
 * console.assert(matches.length === 0);
 * ```
 */
export async function expandLocalGlob(pattern: string): Promise<LocalFile[]> {
  const { dir, last } = splitPattern(pattern);
  const regexp = globToRegExp(last);
  const matches: LocalFile[] = [];
  for await (const entry of Deno.readDir(dir || ".")) {
    if (!regexp.test(entry.name)) continue;
    const path = dir ? join(dir, entry.name) : entry.name;
    const info = await Deno.stat(path);
    if (info.isFile) matches.push({ path, size: info.size });
  }
  return matches.sort((a, b) => a.path < b.path ? -1 : 1);
}

/**
 * Every directory and file under `root`, parents first, sorted by name in
 * each directory; links are not followed. `WRONG_TYPE` when `root` is not a
 * directory.
 *
 * @example
 * ```ts
 * import { walkLocal } from "./local_files.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a.txt`, "a");
 * const paths = [];
 * for await (const entry of walkLocal(dir)) paths.push(entry.path);
 * console.assert(paths.length === 1 && paths[0]!.endsWith("a.txt"));
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function* walkLocal(
  root: string,
): AsyncGenerator<{ path: string; isDirectory: boolean; size: number; mtime: number }> {
  if (!(await Deno.stat(root)).isDirectory) {
    throw new FtsError("WRONG_TYPE", `${root} is not a directory (upload -r takes one)`);
  }
  const entries = [];
  for await (const entry of Deno.readDir(root)) entries.push(entry);
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isDirectory) {
      yield { path, isDirectory: true, size: 0, mtime: 0 };
      yield* walkLocal(path);
    } else if (entry.isFile) {
      // One stat per file, in place: a walk of many small files would wait on a thread for each.
      const info = Deno.statSync(path);
      yield { path, isDirectory: false, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
    }
  }
}

/**
 * Where a download of `remote` lands: `local`, or inside `local` when it is
 * a directory, or the remote base name here; a base name that would not lie
 * inside the directory is refused ({@link localPathInside}).
 *
 * @example
 * ```ts
 * import { localTarget } from "./local_files.ts";
 * console.assert(await localTarget("a/b.txt", undefined) === "b.txt");
 * ```
 */
export async function localTarget(remote: string, local: string | undefined): Promise<string> {
  const name = remoteBase(remote);
  if (local === undefined) return localPathInside(".", [name]);
  try {
    if ((await Deno.stat(local)).isDirectory) return localPathInside(local, [name]);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return local;
}
