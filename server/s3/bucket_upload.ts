/**
 * An upload into a bucket, on its way. Nothing is visible under its name
 * before it is published: a small file is held in memory and published by
 * one PutObject, `If-None-Match: *` without overwrite (S3's only-if-absent
 * create, atomic), `If-Match` on the version seen for a replace only if
 * unchanged; a larger one goes up part by part as a multipart upload, a
 * few parts in memory at a time, and is published by CompleteMultipartUpload.
 * The data's digest is checked against the sender's before either happens
 * (transfer_handlers.ts), and kept with the object (a multipart one gets it
 * by a copy onto itself once published).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
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
 * up: above S3's 5 MiB least part; with {@link PARTS_IN_FLIGHT}, an upload
 * holds at most 3 parts (24 MiB).
 */
export const PART_BYTES = 8 * 1024 * 1024;

/**
 * Parts of one upload sent at once while the next fills: a request's round
 * trip and the server's write are hidden behind the next part's bytes,
 * and memory stays a few parts per upload.
 */
export const PARTS_IN_FLIGHT = 2;

/**
 * What an upload's buffer starts at, doubling as bytes arrive: a declared
 * size takes no memory before its bytes come (1024 connections each
 * declaring 16 MiB and sending nothing hold 64 MiB, not 16 GiB).
 */
const FIRST_BUFFER_BYTES = 64 * 1024;

/** The largest object CopyObject copies in one request (S3's limit). */
export const MAX_COPY_BYTES = 5 * 1024 * 1024 * 1024;

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

/**
 * The ETag S3 gives the object a multipart upload of `parts` (in order)
 * makes: the MD5 of their MD5s (each part's ETag), then `-` and their count.
 */
export function multipartEtag(parts: S3Part[]): string {
  const md5 = createHash("md5");
  for (const part of parts) md5.update(Buffer.from(part.etag.replaceAll('"', ""), "hex"));
  return `${md5.digest("hex")}-${parts.length}`;
}

/** An upload being received into a bucket; see the module's description. */
export class BucketUpload implements StoreUpload {
  readonly #plan: BucketUploadPlan;
  readonly #multipart: boolean;
  /** The whole file (single PUT) or the part being filled (multipart), as far as it arrived. */
  #buffer: Uint8Array;
  #filled = 0;
  /** What {@link #buffer} grows to: the file's size (single PUT) or the part size. */
  readonly #capacity: number;
  #uploadId: string | null = null;
  readonly #parts: S3Part[] = [];
  /** Parts started so far: the next one's number is one more. */
  #partsStarted = 0;
  /** The parts being sent (at most {@link PARTS_IN_FLIGHT}). */
  readonly #inFlight = new Set<Promise<void>>();
  /** The first part that failed, if one did: nothing is published then. */
  #partFailure: unknown = null;
  #digest: Digest | undefined;
  #ended = false;
  readonly offset = 0;
  readonly makesDirectories = false;
  readonly write: (chunk: Uint8Array) => Promise<void>;

  constructor(plan: BucketUploadPlan) {
    this.#plan = plan;
    this.#multipart = plan.size > SINGLE_PUT_MAX_BYTES;
    this.#capacity = this.#multipart ? partBytesFor(plan.size) : plan.size;
    this.#buffer = new Uint8Array(Math.min(this.#capacity, FIRST_BUFFER_BYTES));
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
      if (this.#filled === this.#buffer.length) this.#grow();
      const count = Math.min(chunk.length - at, this.#buffer.length - this.#filled);
      this.#buffer.set(chunk.subarray(at, at + count), this.#filled);
      this.#filled += count;
      at += count;
      if (this.#multipart && this.#filled === this.#capacity) await this.#sendPart();
    }
  }

  /** Doubles the buffer, up to {@link #capacity}: memory follows the bytes that arrived. */
  #grow(): void {
    if (this.#buffer.length === this.#capacity) {
      throw new RangeError("more data than the upload's declared size");
    }
    const grown = new Uint8Array(Math.min(this.#capacity, 2 * this.#buffer.length));
    grown.set(this.#buffer.subarray(0, this.#filled));
    this.#buffer = grown;
  }

  /**
   * Starts sending the part filled so far (the first starts the multipart
   * upload), into a fresh buffer for the next; waits while
   * {@link PARTS_IN_FLIGHT} are on their way. Throws the first part's failure.
   */
  async #sendPart(): Promise<void> {
    this.#assertNoPartFailed();
    const { client, key, mtime, mode } = this.#plan;
    try {
      this.#uploadId ??= await client.createMultipartUpload(key, {
        metadata: objectMetadata(mtime, mode),
      });
    } catch (err) {
      throw bucketFailure(err);
    }
    const uploadId = this.#uploadId;
    const part = this.#buffer.subarray(0, this.#filled);
    const partNumber = ++this.#partsStarted;
    // The peer has sent a whole part: the next is taken at its full size.
    this.#buffer = new Uint8Array(this.#capacity);
    this.#filled = 0;
    const sending: Promise<void> = client.uploadPart(key, uploadId, partNumber, part).then(
      (etag) => void this.#parts.push({ partNumber, etag }),
      (err) => void (this.#partFailure ??= bucketFailure(err)),
    ).finally(() => this.#inFlight.delete(sending));
    this.#inFlight.add(sending);
    while (this.#inFlight.size >= PARTS_IN_FLIGHT) await Promise.race(this.#inFlight);
    this.#assertNoPartFailed();
  }

  #assertNoPartFailed(): void {
    if (this.#partFailure !== null) throw this.#partFailure;
  }

  /** Waits for every part on its way; throws the first part's failure. */
  async #partsSent(): Promise<void> {
    await Promise.all(this.#inFlight);
    this.#assertNoPartFailed();
  }

  async publish(): Promise<void> {
    const [outcome] = await commitGroup([this]);
    if (!outcome!.ok) throw outcome!.error;
  }

  /**
   * The first step of a publish, run for every upload of the connection's
   * commit group at once (io/commit_group.ts): a small file is published
   * here, by its PutObject, so that a group of small files goes up in
   * parallel (at most `MAX_GROUP_FILES` at once); a multipart upload's last
   * part goes up.
   */
  async settle(): Promise<void> {
    if (!this.#multipart) return await this.#publish();
    if (this.#filled > 0) await this.#sendPart();
    await this.#partsSent();
  }

  /** The second step, one upload at a time: a multipart upload is published. Nothing to fsync: null. */
  async place(): Promise<null> {
    if (this.#multipart) await this.#publish();
    return null;
  }

  /**
   * Publishes it: the whole object appears at once. Without overwrite, a
   * name taken meanwhile (by any server on the bucket) is refused with
   * EXISTS, and a replace only if unchanged of another version with
   * CHANGED, by S3 itself.
   */
  async #publish(): Promise<void> {
    const { client, key, overwrite, mtime, mode, claim, replacingBytes, segments } = this.#plan;
    if (this.#multipart && this.#plan.ifMatch !== undefined) {
      throw new RangeError("a multipart upload cannot replace only if unchanged");
    }
    try {
      if (this.#multipart) {
        await this.#partsSent();
        if (this.#parts.length !== this.#partsStarted) {
          throw new RangeError("a multipart upload is published with every part it sent");
        }
        const parts = this.#parts.toSorted((a, b) => a.partNumber - b.partNumber);
        const etag = await client.completeMultipartUpload(key, this.#uploadId!, parts);
        this.#uploadId = null;
        // Ceph RGW 16.2 answers an empty ETag here (seen): S3's is made from the parts' own.
        await this.#keepDigest(etag.replaceAll('"', "") || multipartEtag(parts));
      } else {
        await client.putObject(key, this.#buffer.subarray(0, this.#filled), {
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
  }

  /**
   * Adds the verified digest to a multipart object's metadata, which could
   * not hold it when the upload began: a copy onto itself, only while it is
   * the object just published (`etag`). Best effort: without it, `sync -c`
   * and `stat` read the object instead; a newer object in its place keeps
   * its own.
   */
  async #keepDigest(etag: string): Promise<void> {
    const { client, key, mtime, mode, size } = this.#plan;
    if (this.#digest === undefined || size > MAX_COPY_BYTES || etag === "") return;
    await client.copyObject(key, key, objectMetadata(mtime, mode, this.#digest), { ifMatch: etag })
      .catch(() => {});
  }

  /** Throws it away: its multipart upload is aborted, its claim released. */
  async discard(): Promise<void> {
    this.#plan.claim.release();
    if (this.#ended) return;
    this.#ended = true;
    const uploadId = this.#uploadId;
    this.#uploadId = null;
    // A part still on its way would keep its bytes past the abort.
    await Promise.all(this.#inFlight);
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
