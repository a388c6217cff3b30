/**
 * What fts keeps with an object as S3 user metadata (`x-amz-meta-fts-*`):
 * the file's modification time and permission bits, which S3 has no field
 * for, and the digest its upload was verified with, so that `stat` and
 * `sync -c` need not read it again.
 *
 * @module
 */

import type { ChecksumName, Digest } from "../../protocol/checksum.ts";
import type { S3Metadata, S3ObjectInfo } from "./client.ts";

/** The metadata names. */
const MTIME = "fts-mtime";
const MODE = "fts-mode";
const DIGEST_PREFIX = "fts-";

/** Permission bits of a file that was stored without any (as a local upload's default). */
export const DEFAULT_OBJECT_MODE = 0o644;

/** The metadata of a file modified at `mtime` (ms) with `mode`, and its verified digest if known. */
export function objectMetadata(mtime: number, mode?: number, digest?: Digest): S3Metadata {
  const metadata: S3Metadata = { [MTIME]: String(mtime) };
  if (mode !== undefined) metadata[MODE] = mode.toString(8);
  if (digest !== undefined) metadata[DIGEST_PREFIX + digest.algorithm] = digest.hex;
  return metadata;
}

/** `metadata` with other permission bits. */
export function withMode(metadata: S3Metadata, mode: number): S3Metadata {
  return { ...metadata, [MODE]: mode.toString(8) };
}

/** The object's modification time: fts's own, else S3's Last-Modified. */
export function objectMtime(info: S3ObjectInfo): number {
  const kept = Number(info.metadata[MTIME]);
  return Number.isSafeInteger(kept) ? kept : info.lastModified.getTime() || 0;
}

/** The object's permission bits, {@link DEFAULT_OBJECT_MODE} when none were kept. */
export function objectMode(info: S3ObjectInfo): number {
  const text = info.metadata[MODE] ?? "";
  return /^[0-7]{1,4}$/.test(text) ? parseInt(text, 8) : DEFAULT_OBJECT_MODE;
}

/** The digest kept with the object for `checksum`, lower-case hex, or null. */
export function keptDigest(info: S3ObjectInfo, checksum: ChecksumName): string | null {
  const hex = info.metadata[DIGEST_PREFIX + checksum];
  return hex !== undefined && /^[0-9a-f]{16,128}$/.test(hex) ? hex : null;
}
