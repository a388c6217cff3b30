/**
 * What an entry costs against the root's quota, and the measure of a whole
 * tree at start. Every entry costs at least {@link ENTRY_BYTES} (see
 * {@link entryBytes}): a directory, an empty file or a link takes an inode
 * and a block too, and without the charge a peer could fill the disk's
 * inodes (and its space, in directory blocks) with names that cost nothing.
 *
 * @module
 */

import { join } from "node:path";

/**
 * What every entry (file, directory, link) costs at the least against the
 * quota: one block of a common file system (ext4, xfs, btrfs use 4 KiB), the
 * least a directory or a non-empty file takes on the disk, and a stand-in for
 * the inode and directory entry an empty file takes.
 */
export const ENTRY_BYTES = 4096;

/** What a regular file of `size` bytes costs against the quota: its size, at least {@link ENTRY_BYTES}. */
export function fileBytes(size: number): number {
  return Math.max(size, ENTRY_BYTES);
}

/**
 * What an entry costs against the quota: a regular file its
 * {@link fileBytes}, anything else (a directory, not counting what it holds;
 * a link) {@link ENTRY_BYTES}. The same rule at start and as entries come and go.
 */
export function entryBytes(info: { isFile: boolean; size: number }): number {
  return info.isFile ? fileBytes(info.size) : ENTRY_BYTES;
}

/**
 * What the entries under `dir` cost ({@link entryBytes}), not following
 * links, skipping `skip`. An entry that cannot be reached (its path too
 * long for the system, a directory that may not be read) counts
 * {@link ENTRY_BYTES} and its path goes into `skipped`; the walk goes on.
 * Recursion is bounded: each level adds at least two bytes to a path, and
 * a path past the system's limit cannot be read.
 *
 * @example
 * ```ts
 * import { ENTRY_BYTES, treeBytes } from "./entry_cost.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeFileSync(`${dir}/big`, new Uint8Array(10_000));
 * Deno.mkdirSync(`${dir}/empty`);
 * const skipped: string[] = [];
 * console.assert(await treeBytes(dir, null, skipped) === 10_000 + ENTRY_BYTES);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export async function treeBytes(
  dir: string,
  skip: string | null,
  skipped: string[],
): Promise<number> {
  let total = 0;
  try {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (path === skip) continue;
      if (entry.isDirectory) {
        total += ENTRY_BYTES + await treeBytes(path, skip, skipped);
      } else if (entry.isFile) {
        try {
          total += fileBytes((await Deno.lstat(path)).size);
        } catch {
          total += ENTRY_BYTES;
          skipped.push(path);
        }
      } else {
        total += ENTRY_BYTES;
      }
    }
  } catch {
    // What was counted before the failure stays counted.
    skipped.push(dir);
  }
  return total;
}
