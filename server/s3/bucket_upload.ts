/**
 * An upload into a bucket, on its way. Nothing is visible under its name
 * before it is published: a small file is held in memory and published by
 * one PutObject, `If-None-Match: *` without overwrite (S3's only-if-absent
 * create, atomic), `If-Match` on the version seen for a replace only if
 * unchanged; a larger one goes up part by part as a multipart upload,
 * one part in memory at a time, and is published by CompleteMultipartUpload.
 * The data's digest is checked against the sender's before either happens
 * (transfer_handlers.ts), and kept with a single-PUT object.
 *
 * @module
 */

import { commitGroup } from "../../io/commit_group.ts";
import type { Digest } from "../../protocol/checksum.ts";
import { FtsError } from "../../protocol/errors.ts";
import { quote } from "../_storage_common.ts";
import type { StoreUpload } from "../store.ts";
import type { BucketClaim } from "./bucket_space.ts";
import { bucketFailure, isPreconditionFailed } from "./bucket_errors.ts";
import { MAX_S3_PART_NUMBER, type S3Client, type S3Part } from "./client.ts";
import { objectMetadata } from "./object_metadata.ts";

/**
 * The largest upload published by one PutObject, held whole in memory until
 * then: on Ceph RGW the only create-if-absent that holds (it ignores
 * `If-None-Match` on CompleteMultipartUpload), so the largest upload that
 * can be made without overwrite; small enough that the uploads a connection
 * holds for its commit group (io/commit_group.ts, 16 MiB) stay that size.
 */
export const SINGLE_PUT_MAX_BYTES = 16 * 1024 * 1024;

/**
 * Bytes of each part of a multipart upload, held in memory while it goes
 * up: above S3's 5 MiB least part, and one part per upload at a time.
 */
export const PART_BYTES = 16 * 1024 * 1024;

/** Part sizes are rounded up to this, for a file too large for 10,000 parts of {@link PART_BYTES}. */
const PART_SIZE_STEP_BYTES = 1024 * 1024;

/** Where and how an upload is to go. */
export interface BucketUploadPlan {
  client: S3Client;
  key: string;
  segments: string[];
  size: number;
  overwrite: boolean;
  mtime: number;
  mode?: number;
  /** Its claim on the quota. */
  claim: BucketClaim;
  /** Bytes of the object it replaces (0 for none), credited when it is published. */
  replacingBytes: number;
  /**
   * Replace only the object of this ETag (an upload `ifUnchanged`: the
   * version the client saw), else CHANGED; a single PUT only.
   */
  ifMatch?: string;
}

/** The part size for a file of `size` bytes: {@link PART_BYTES}, or more to fit in 10,000 parts. */
export function partBytesFor(size: number): number {
  const least = Math.ceil(size / MAX_S3_PART_NUMBER / PART_SIZE_STEP_BYTES) * PART_SIZE_STEP_BYTES;
  return Math.max(PART_BYTES, least);
}

/** An upload being received into a bucket; see the module's description. */
export class BucketUpload implements StoreUpload {
  readonly #plan: BucketUploadPlan;
  readonly #multipart: boolean;
  /** The whole file (single PUT) or the part being filled (multipart). */
  readonly #buffer: Uint8Array;
  #filled = 0;
  #uploadId: string | null = null;
  readonly #parts: S3Part[] = [];
  #digest: Digest | undefined;
  #ended = false;
  readonly offset = 0;
  readonly makesDirectories = false;
  readonly write: (chunk: Uint8Array) => Promise<void>;

  constructor(plan: BucketUploadPlan) {
    this.#plan = plan;
    this.#multipart = plan.size > SINGLE_PUT_MAX_BYTES;
    this.#buffer = new Uint8Array(this.#multipart ? partBytesFor(plan.size) : plan.size);
    this.write = (chunk) => this.#write(chunk);
  }

  /** Nothing is held from before: a bucket keeps no partials (README). */
  hashHeld(): Promise<void> {
    return Promise.resolve();
  }

  /** The data's digest, checked against the sender's: kept with the object. */
  received(digest: Digest): void {
    this.#digest = digest;
  }

  async #write(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      const count = Math.min(chunk.length - at, this.#buffer.length - this.#filled);
      if (count === 0) throw new RangeError("more data than the upload's declared size");
      this.#buffer.set(chunk.subarray(at, at + count), this.#filled);
      this.#filled += count;
      at += count;
      if (this.#multipart && this.#filled === this.#buffer.length) await this.#sendPart();
    }
  }

  /** Sends the part filled so far (starting the multipart upload with the first). */
  async #sendPart(): Promise<void> {
    const { client, key, mtime, mode } = this.#plan;
    try {
      this.#uploadId ??= await client.createMultipartUpload(key, {
        metadata: objectMetadata(mtime, mode),
      });
      const partNumber = this.#parts.length + 1;
      const etag = await client.uploadPart(
        key,
        this.#uploadId,
        partNumber,
        this.#buffer.subarray(0, this.#filled),
      );
      this.#parts.push({ partNumber, etag });
      this.#filled = 0;
    } catch (err) {
      throw bucketFailure(err);
    }
  }

  async publish(): Promise<void> {
    const [outcome] = await commitGroup([this]);
    if (!outcome!.ok) throw outcome!.error;
  }

  /** The last part goes up (a multipart upload); a single PUT waits for {@link place}. */
  async settle(): Promise<void> {
    if (this.#multipart && this.#filled > 0) await this.#sendPart();
  }

  /**
   * Publishes it: the whole object appears at once. Without overwrite, a
   * name taken meanwhile (by any server on the bucket) is refused with
   * EXISTS, by S3 itself. Nothing to fsync: null.
   */
  async place(): Promise<null> {
    const { client, key, overwrite, mtime, mode, claim, replacingBytes, segments } = this.#plan;
    if (this.#multipart && this.#plan.ifMatch !== undefined) {
      throw new RangeError("a multipart upload cannot replace only if unchanged");
    }
    try {
      if (this.#multipart) {
        await client.completeMultipartUpload(key, this.#uploadId!, this.#parts);
        this.#uploadId = null;
      } else {
        await client.putObject(key, this.#buffer, {
          ifNoneMatch: !overwrite,
          ifMatch: this.#plan.ifMatch,
          metadata: objectMetadata(mtime, mode, this.#digest),
        });
      }
    } catch (err) {
      if (isPreconditionFailed(err) && this.#plan.ifMatch !== undefined) {
        throw new FtsError(
          "CHANGED",
          `${quote(segments)} changed since it was listed: it was left as it is`,
          { cause: err },
        );
      }
      if (isPreconditionFailed(err)) {
        throw new FtsError("EXISTS", `${quote(segments)} already exists`, { cause: err });
      }
      throw bucketFailure(err);
    }
    this.#ended = true;
    claim.commit(overwrite ? replacingBytes : 0);
    return null;
  }

  /** Throws it away: its multipart upload is aborted, its claim released. */
  async discard(): Promise<void> {
    this.#plan.claim.release();
    if (this.#ended) return;
    this.#ended = true;
    const uploadId = this.#uploadId;
    this.#uploadId = null;
    if (uploadId !== null) {
      // Best effort: one left behind is invisible, and a lifecycle rule removes it (README).
      await this.#plan.client.abortMultipartUpload(this.#plan.key, uploadId).catch(() => {});
    }
  }

  /** A bucket keeps no partials for a resume (README): a broken upload is thrown away. */
  interrupted(): Promise<void> {
    return this.discard();
  }
}
