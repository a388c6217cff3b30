/**
 * Remote names relative to the shell's remote directory (`cd`): joined,
 * normalised, and kept inside the served root. The root is "".
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../cli/usage_error.ts";

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

function aboveTop(name: string): UsageError {
  return new UsageError(`${name} is above the top of the served directory`);
}

/** The last segment of a remote name. */
export function remoteBase(name: string): string {
  return posix.basename(name);
}
