/**
 * What a many-file transfer continued with `--resume` (`put -r --resume
 * tree`, `get -r --resume tree`) need not move again: files whose target
 * holds the same content already, the ones an interrupted run finished.
 * Same content means the same size and the same digest of the session's
 * checksum, computed on both sides (the server recalls its digests,
 * server `digests` op), so a different file that happens to have the
 * source's size is never taken for it.
 *
 * @module
 */

import { posix } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import type { FileDigest } from "../protocol/messages.ts";
import type { FtsConnection } from "./connection.ts";
import { hashLocalFile } from "./local_digests.ts";
import type { PlannedFile } from "./plan_tree.ts";

/**
 * The indexes of `files` whose two copies, here and on the server, hold the
 * same content already (for an upload the server's is the target, for a
 * download the local one). A server too old to tell digests has every file
 * moved again.
 */
export async function filesAlreadyThere(
  connection: FtsConnection,
  files: PlannedFile[],
): Promise<Set<number>> {
  const there = new Set<number>();
  const byDir = new Map<string, number[]>();
  files.forEach((file, index) => {
    const parent = posix.dirname(file.remote);
    const dir = parent === "." ? "" : parent;
    byDir.set(dir, [...(byDir.get(dir) ?? []), index]);
  });
  for (const [dir, indexes] of byDir) {
    // Only files whose local copy exists with a size worth comparing cost a digest.
    const local = new Map<number, number>();
    for (const index of indexes) {
      const size = await Deno.stat(files[index]!.local).then(
        (i) => i.isFile ? i.size : -1,
        () => -1,
      );
      if (size >= 0) local.set(index, size);
    }
    if (local.size === 0) continue;
    let remote: Map<string, FileDigest>;
    try {
      remote = await connection.digests(dir);
    } catch (err) {
      // The directory is not there yet (nothing of it was moved), or the server cannot say.
      if (err instanceof FtsError) continue;
      throw err;
    }
    for (const [index, size] of local) {
      const file = files[index]!;
      const theirs = remote.get(posix.basename(file.remote));
      if (theirs === undefined || theirs.size !== size) continue;
      if (await hashLocalFile(file.local, connection.checksum) === theirs.hex) there.add(index);
    }
  }
  return there;
}
