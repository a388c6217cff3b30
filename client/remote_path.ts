/**
 * Remote names relative to the shell's remote directory (`cd`): joined,
 * normalised, and kept inside the served root. The root is "".
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { FtsError } from "../protocol/errors.ts";
import { parseName } from "../protocol/names.ts";

/**
 * Resolves `name` against the remote directory `cwd`; a leading `/` starts
 * at the root.
 *
 * @example
 * ```ts
 * import { resolveRemote } from "./remote_path.ts";
 * console.assert(resolveRemote("reports", "../logs/a.txt") === "logs/a.txt");
 * ```
 */
export function resolveRemote(cwd: string, name: string): string {
  const joined = name.startsWith("/") ? name.replace(/^\/+/, "") : posix.join(cwd, name);
  const normalized = posix.normalize(joined || ".").replace(/\/+$/, "");
  if (normalized === "..") throw aboveTop(name);
  if (normalized.startsWith("../")) throw aboveTop(name);
  return normalized === "." ? "" : normalized;
}

/**
 * A remote name as the client shows it to people and in JSON: rooted at the
 * top of the served directory, so the top is `/` (as `pwd` and the prompt
 * show it).
 *
 * @example
 * ```ts
 * import { shownRemote } from "./remote_path.ts";
 * console.assert(shownRemote("") === "/" && shownRemote("a/b") === "/a/b");
 * ```
 */
export function shownRemote(name: string): string {
  return `/${name}`;
}

/**
 * A remote name as it is typed in the remote directory `cwd`: relative to
 * it when it lies below it, `/`-rooted otherwise; {@link resolveRemote}
 * turns it back into `name`.
 *
 * @example
 * ```ts
 * import { typedRemote } from "./remote_path.ts";
 * console.assert(typedRemote("d", "d/big.bin") === "big.bin");
 * console.assert(typedRemote("d", "e/big.bin") === "/e/big.bin");
 * console.assert(typedRemote("", "big.bin") === "big.bin");
 * ```
 */
export function typedRemote(cwd: string, name: string): string {
  if (cwd === "") return name;
  return name.startsWith(`${cwd}/`) ? name.slice(cwd.length + 1) : shownRemote(name);
}

function aboveTop(name: string): UsageError {
  return new UsageError(`${name} is above the top of the served directory`);
}

/** The last segment of a remote name. */
export function remoteBase(name: string): string {
  return posix.basename(name);
}

/**
 * The full remote name of an entry the server listed in `dir`, checked by
 * the rules the server applies to the client's names (protocol/names.ts):
 * one segment, and a valid name as a whole. Otherwise `BAD_NAME`, naming it:
 * a download never takes a name the server itself would refuse.
 *
 * @example
 * ```ts
 * import { listedName } from "./remote_path.ts";
 * console.assert(listedName("reports", "q1.csv") === "reports/q1.csv");
 * ```
 */
export function listedName(dir: string, name: string): string {
  const full = dir === "" ? name : `${dir}/${name}`;
  try {
    if (name.includes("/")) {
      throw new FtsError("BAD_NAME", `bad name ${JSON.stringify(name)}: not one path segment`);
    }
    parseName(full);
  } catch (err) {
    if (!(err instanceof FtsError)) throw err;
    throw new FtsError(
      "BAD_NAME",
      `the server listed ${JSON.stringify(name)} in /${dir}, a name no download takes ` +
        `(${err.message}); nothing was downloaded`,
    );
  }
  return full;
}
