/**
 * Paths the system can reach: a name is refused (BAD_NAME) before it makes a
 * path longer than one system call takes, so that nothing the server creates
 * or moves is beyond the reach of a later request to list or delete it.
 *
 * @module
 */

import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { quote } from "./_storage_common.ts";

/**
 * The longest path, in bytes, one system call takes: Linux's PATH_MAX is 4096
 * bytes with the terminating NUL, and a longer path fails with ENAMETOOLONG.
 */
export const MAX_PATH_BYTES = 4095;

const encoder = new TextEncoder();

/**
 * Throws BAD_NAME if `segments` under the directory `base` would make a
 * path longer than the system takes ({@link MAX_PATH_BYTES}); `named` is
 * the whole name, for the message.
 *
 * @example
 * ```ts
 * import { assertPathFits } from "./path_limits.ts";
 * assertPathFits("/srv/files", ["docs", "a.txt"]); // fits: returns
 * let refused = false;
 * try {
 *   // Twenty segments of 255 bytes: a path of over 5000 bytes.
 *   assertPathFits("/srv/files", Array(20).fill("x".repeat(255)));
 * } catch {
 *   refused = true;
 * }
 * console.assert(refused);
 * ```
 */
export function assertPathFits(base: string, segments: string[], named = segments): void {
  const bytes = encoder.encode(join(base, ...segments)).length;
  if (bytes > MAX_PATH_BYTES) {
    throw new FtsError(
      "BAD_NAME",
      `bad name ${quote(named)}: its path on the server would be longer than the system's ` +
        `limit of ${MAX_PATH_BYTES} bytes`,
    );
  }
}

/**
 * Throws BAD_NAME if the directory at `source`, moved to `target`, would
 * hold a path longer than {@link MAX_PATH_BYTES}: a path the system cannot
 * reach, which no request could list or delete; `named` is the request's
 * target name, for the message. The walk reads the subtree without
 * following links and stops at the first path over the limit, so its depth
 * is bounded by the limit; it is synchronous, so that no other request adds
 * depth between the measure and the rename. A move that makes no path
 * longer is not walked.
 */
export function assertSubtreeFits(source: string, target: string, named: string[]): void {
  const targetBytes = encoder.encode(target).length;
  if (targetBytes <= encoder.encode(source).length) return;
  const tooLong = () =>
    new FtsError(
      "BAD_NAME",
      `bad name ${quote(named)}: a path in the directory moved there would be longer than ` +
        `the system's limit of ${MAX_PATH_BYTES} bytes`,
    );
  // Each directory to read, with the length its path would have at `target`.
  const pending: { path: string; bytesThere: number }[] = [{
    path: source,
    bytesThere: targetBytes,
  }];
  while (pending.length > 0) {
    const { path, bytesThere } = pending.pop()!;
    let entries: Deno.DirEntry[];
    try {
      entries = [...Deno.readDirSync(path)];
    } catch (err) {
      // Past the limit where it is already: moved deeper, it is past it still.
      if ((err as { code?: unknown }).code === "ENAMETOOLONG") throw tooLong();
      throw err;
    }
    for (const entry of entries) {
      const entryBytes = bytesThere + 1 + encoder.encode(entry.name).length;
      if (entryBytes > MAX_PATH_BYTES) throw tooLong();
      if (entry.isDirectory) {
        pending.push({ path: join(path, entry.name), bytesThere: entryBytes });
      }
    }
  }
}
