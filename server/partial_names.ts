/**
 * The names of held partials. A partial's file is named by a hash of its
 * upload's name and its size (partials.ts), from which the name cannot be
 * had back; to list partials the server keeps each one's name and size in a
 * small file of the same key in a directory of its own, beside the partials.
 * A name file is data from disk: read back, it is checked to be a valid name
 * whose key is its file's, or it is not used.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseName } from "../protocol/names.ts";
import { MAX_NAME_BYTES } from "../protocol/limits.ts";

/**
 * The largest name file read back: a name of {@link MAX_NAME_BYTES}, each
 * byte escaped by JSON at worst as `\uXXXX` (6 bytes), and the size beside it.
 */
const MAX_NAME_FILE_BYTES = 6 * MAX_NAME_BYTES + 64;

/** What a name file holds: the upload a partial belongs to. */
export interface PartialName {
  /** The upload's name, as segments. */
  segments: string[];
  /** The upload's whole size in bytes. */
  size: number;
}

/**
 * The partial file's name for an upload: one per name and size.
 *
 * @example
 * ```ts
 * import { partialKey } from "./partial_names.ts";
 * console.assert(partialKey(["a", "b.txt"], 10) !== partialKey(["a", "b.txt"], 11));
 * console.assert(partialKey(["a", "b.txt"], 10).endsWith("-10"));
 * ```
 */
export function partialKey(segments: string[], size: number): string {
  return `${nameHash(segments)}-${size}`;
}

/**
 * The part of {@link partialKey} that depends on the name alone: every
 * partial of that name, whatever its size, has a key that starts with it and `-`.
 */
export function nameHash(segments: string[]): string {
  return createHash("sha256").update(segments.join("/")).digest("hex");
}

/** Whether `text` has the form of a {@link partialKey}. */
export function isPartialKey(text: string): boolean {
  return /^[0-9a-f]{64}-(0|[1-9][0-9]{0,15})$/.test(text);
}

/**
 * The name files in one directory, one per partial key.
 *
 * @example
 * ```ts
 * import { PartialNames, partialKey } from "./partial_names.ts";
 * const names = new PartialNames(Deno.makeTempDirSync());
 * names.record(["a", "b.bin"], 100);
 * console.assert(names.read(partialKey(["a", "b.bin"], 100))?.segments.join("/") === "a/b.bin");
 * Deno.removeSync(names.dir, { recursive: true });
 * ```
 */
export class PartialNames {
  /** The directory the name files are in. */
  readonly dir: string;

  /** The name files in `dir` (created when the first is written, if missing). */
  constructor(dir: string) {
    this.dir = dir;
  }

  /**
   * Keeps the name and size of an upload of `segments` with `size` bytes
   * under its key, unless a name file is there already (its content is
   * determined by the key). Written to a fresh temporary and renamed into
   * place, so that a reader sees all of it or nothing.
   */
  record(segments: string[], size: number): void {
    const path = join(this.dir, partialKey(segments, size));
    try {
      // Touched, so that a server starting meanwhile sees it is in use (partials.ts's removeStaleNames).
      const now = new Date();
      Deno.utimeSync(path, now, now);
      return;
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    const text = JSON.stringify({ name: segments.join("/"), size });
    const tmpPath = `${path}.${crypto.randomUUID()}.tmp`;
    try {
      Deno.writeTextFileSync(tmpPath, text, { createNew: true, mode: 0o600 });
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      Deno.mkdirSync(this.dir, { recursive: true });
      Deno.writeTextFileSync(tmpPath, text, { createNew: true, mode: 0o600 });
    }
    try {
      Deno.renameSync(tmpPath, path);
    } catch (err) {
      removeQuietly(tmpPath);
      throw err;
    }
  }

  /**
   * The upload the partial of `key` belongs to, or null when no name file
   * is there or it does not hold a valid name and size whose key is `key`.
   */
  read(key: string): PartialName | null {
    let bytes: Uint8Array;
    try {
      using file = Deno.openSync(join(this.dir, key), { read: true });
      const info = file.statSync();
      if (!info.isFile || info.size > MAX_NAME_FILE_BYTES) return null;
      bytes = new Uint8Array(info.size);
      let filled = 0;
      while (filled < bytes.length) {
        const read = file.readSync(bytes.subarray(filled));
        if (read === null) return null;
        filled += read;
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
    return parseNameFile(bytes, key);
  }

  /** Removes the name file of `key`, if there is one. */
  remove(key: string): void {
    removeQuietly(join(this.dir, key));
  }

  /**
   * Removes every file in the directory but the name files of `keep` and
   * those modified after `keepNewerThanMs` (ms since the epoch): name files
   * of partials gone, and temporaries a crash left. Run at start only.
   */
  async removeAllBut(keep: Set<string>, keepNewerThanMs = Infinity): Promise<void> {
    try {
      for await (const entry of Deno.readDir(this.dir)) {
        if (keep.has(entry.name)) continue;
        const path = join(this.dir, entry.name);
        let mtimeMs: number;
        try {
          mtimeMs = Deno.lstatSync(path).mtime?.getTime() ?? 0;
        } catch {
          continue; // Gone meanwhile.
        }
        if (mtimeMs <= keepNewerThanMs) removeQuietly(path);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

/** A name file's bytes as a {@link PartialName}, or null unless valid and of `key`. */
function parseNameFile(bytes: Uint8Array, key: string): PartialName | null {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  const { name, size } = value as Record<string, unknown>;
  if (typeof name !== "string" || !Number.isSafeInteger(size) || (size as number) < 0) return null;
  let segments: string[];
  try {
    segments = parseName(name);
  } catch {
    return null;
  }
  // The key is the check that the file is this partial's and was not swapped or torn.
  return partialKey(segments, size as number) === key ? { segments, size: size as number } : null;
}

/** Removes a file, best effort: gone already is fine. */
function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // Gone already, or not ours: the next start clears what is left.
  }
}
