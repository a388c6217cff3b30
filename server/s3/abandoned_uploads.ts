/**
 * Multipart uploads a gateway left unfinished (killed mid-upload): invisible,
 * but their parts take room in the bucket. A bucket-backed server aborts
 * those under its prefix that are older than any live upload could be, at
 * start; a lifecycle rule on the bucket (README) removes them sooner.
 *
 * @module
 */

import type { S3Client } from "./client.ts";
import { S3Error } from "./error.ts";

/**
 * An unfinished multipart upload older than this is abandoned: far longer
 * than any upload through a gateway takes (10 TB at 20 MB/s is under six
 * days), so another gateway's live upload is never aborted.
 */
export const ABANDONED_UPLOAD_AGE_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Pages of ListMultipartUploads read at most (1000 uploads each): the rest
 * wait for the next start.
 */
const MAX_UPLOAD_PAGES = 100;

/**
 * Aborts the unfinished multipart uploads of keys under `prefix` (no
 * slashes at its ends; "" for the whole bucket) begun before
 * `startedBeforeMs`; returns how many it aborted.
 */
export async function abortAbandonedUploads(
  client: S3Client,
  prefix: string,
  startedBeforeMs: number,
): Promise<number> {
  let aborted = 0;
  let next: { keyMarker: string; uploadIdMarker: string } | undefined;
  for (let page = 0; page < MAX_UPLOAD_PAGES; page++) {
    const listed = await client.listMultipartUploads({
      prefix: prefix === "" ? undefined : `${prefix}/`,
      ...next,
    });
    for (const upload of listed.uploads) {
      if (!(upload.initiated.getTime() < startedBeforeMs)) continue;
      try {
        await client.abortMultipartUpload(upload.key, upload.uploadId);
        aborted++;
      } catch (err) {
        // Another gateway starting at the same time aborted it first.
        if (!(err instanceof S3Error && err.code === "NoSuchUpload")) throw err;
      }
    }
    next = listed.next;
    if (next === undefined) break;
  }
  return aborted;
}
