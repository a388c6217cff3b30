/**
 * The digests of one directory's files on a local root: kept in the root's
 * state directory (io/known_digests.ts) while a stat shows a file unchanged
 * since it was hashed, else read and hashed now.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { KnownDigests } from "../io/known_digests.ts";
import { createStreamingHash, hashHeldPrefix } from "../io/verified_transfer.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import { FtsError } from "../protocol/errors.ts";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import type { Storage } from "./storage.ts";
import type { DirectoryDigests, FoundDigest } from "./store.ts";

/** The directory of the server's digest records, in the state directory. */
export const DIGEST_RECORDS_DIR = "digests";

/** Where the server keeps what it knows of the digests of directory `dir`'s files. */
function digestRecordPath(root: string, dir: string[], checksum: ChecksumName): string {
  const key = createHash("sha256").update(dir.join("/")).digest("hex");
  return join(root, STATE_DIR_NAME, DIGEST_RECORDS_DIR, `${key}-${checksum}`);
}

/** The kept digests of directory `dir` of `storage`'s root, with `checksum`. */
export async function localDirectoryDigests(
  storage: Storage,
  dir: string[],
  checksum: ChecksumName,
): Promise<DirectoryDigests> {
  const known = await KnownDigests.load(digestRecordPath(storage.root, dir, checksum), checksum);
  return {
    digestOf: (segments) => digestOf(storage, segments, known, checksum),
    keepOnly: (names) => known.keepOnly(names),
    save: () => known.save(),
  };
}

/**
 * The digest of the file `segments` names: the kept one while a stat shows
 * the file unchanged (it is not opened then), else read and hashed now.
 * Null for a file gone or replaced by something else since it was listed.
 */
async function digestOf(
  storage: Storage,
  segments: string[],
  known: KnownDigests,
  checksum: ChecksumName,
): Promise<FoundDigest | null> {
  let opened;
  try {
    const info = storage.fileInfo(segments);
    if (!info.isFile) return null;
    const kept = known.get(segments.at(-1)!, info);
    if (kept !== null) {
      return { hex: kept, size: info.size, mtime: info.mtime?.getTime() ?? 0, hashedNow: false };
    }
    opened = await storage.openForDownload(segments);
  } catch (err) {
    // Gone or replaced since the listing: not one of the directory's files now.
    if (err instanceof FtsError || err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  try {
    const hash = await createStreamingHash(checksum);
    await hashHeldPrefix(opened.file, opened.size, hash);
    const hex = hash.hex();
    known.set(segments.at(-1)!, opened.info, hex);
    return { hex, size: opened.size, mtime: opened.mtime, hashedNow: true };
  } finally {
    opened.file.close();
  }
}
