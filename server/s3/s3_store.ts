/**
 * A bucket (or a prefix of one) served as fts's store, the S3 twin of the
 * local root's storage.ts, one S3 request or a few per operation:
 * list → ListObjectsV2 with `/` as the delimiter (and HeadObject per file,
 * for the mtime kept in metadata); stat → HeadObject, or the directory's
 * keys; download → GetObject; upload → bucket_upload.ts; mkdir → a
 * zero-byte marker object `dir/`; rm → DeleteObject; mv of a file → copy
 * then delete (not atomic: README); chmod → the metadata copied onto the
 * object itself. What S3 cannot do in one step is refused with a clear
 * code rather than half done: a rename of a directory that is not empty, a
 * large upload or rename without overwrite, a large replace only if unchanged.
 *
 * A directory stays when its last file goes: removing an entry first
 * writes its parent's marker, as a local directory outlives its files.
 *
 * @module
 */

import { createStreamingHash, sendFileFrom } from "../../io/verified_transfer.ts";
import type { ChecksumName } from "../../protocol/checksum.ts";
import { FtsError } from "../../protocol/errors.ts";
import type { Entry, FileVersion } from "../../protocol/messages.ts";
import { quote } from "../_storage_common.ts";
import type { DroppedPartials, ListedPartial } from "../partials.ts";
import type { UploadOptions } from "../pending_upload.ts";
import type { DirectoryDigests, FoundDigest, Store, StoredFile, StoreUpload } from "../store.ts";
import { bucketFailure, isNoSuchKey, isPreconditionFailed } from "./bucket_errors.ts";
import { BucketKeys } from "./bucket_keys.ts";
import type { BucketSpace } from "./bucket_space.ts";
import { BucketUpload, MAX_COPY_BYTES, SINGLE_PUT_MAX_BYTES } from "./bucket_upload.ts";
import type { S3Client, S3ObjectInfo } from "./client.ts";
import { ObjectSource } from "./object_source.ts";
import { keptDigest, objectMode, objectMtime, withMode } from "./object_metadata.ts";

/**
 * HeadObject requests a listing sends at once (for each file's mtime, kept
 * in metadata): enough to hide the round trips, few enough not to flood
 * the bucket's server for one client.
 */
export const LIST_HEAD_CONCURRENCY = 16;

/** Why an upload or rename without overwrite above {@link SINGLE_PUT_MAX_BYTES} is refused. */
export const LARGE_CREATE_REFUSAL =
  `this server keeps its files in an S3 bucket, where a file of more than ` +
  `${SINGLE_PUT_MAX_BYTES} bytes cannot be created only if its name is free (the ` +
  `bucket's server does not honour If-None-Match on multipart uploads and copies): ` +
  `replace (-f) instead, which does not check`;

/** Why an upload only if unchanged above {@link SINGLE_PUT_MAX_BYTES} is refused. */
export const LARGE_IF_UNCHANGED_REFUSAL =
  `this server keeps its files in an S3 bucket, where a file of more than ` +
  `${SINGLE_PUT_MAX_BYTES} bytes cannot replace another only if that is unchanged (only a ` +
  `single PUT checks the version it replaces): replace (-f) instead, which does not check`;

/** What a bucket-backed server says at start of the refusals above. */
export const LARGE_CREATE_NOTE =
  `uploads and renames without -f of files over ${SINGLE_PUT_MAX_BYTES} bytes are ` +
  `refused: an S3 bucket creates an object only if its name is free in a single PUT ` +
  `(Ceph RGW ignores If-None-Match on multipart uploads and copies)`;

/** The bucket a server serves, as the handlers see it. */
export class S3Store implements Store {
  readonly root: string;
  readonly space: BucketSpace;
  readonly #client: S3Client;
  readonly #keys: BucketKeys;

  /** The bucket `client` works in, under `prefix` (no slashes at its ends; "" for all of it). */
  constructor(client: S3Client, prefix: string, space: BucketSpace) {
    this.#client = client;
    this.#keys = new BucketKeys(prefix);
    this.space = space;
    this.root = `s3://${client.bucket}${prefix === "" ? "" : `/${prefix}`}`;
  }

  /** What HeadObject says of the file `segments`, or null when there is none. */
  async #headFile(segments: string[]): Promise<S3ObjectInfo | null> {
    if (segments.length === 0) return null;
    try {
      return await this.#client.headObject(this.#keys.file(segments));
    } catch (err) {
      if (isNoSuchKey(err)) return null;
      throw err;
    }
  }

  /** Whether directory `segments` exists: the root, or a marker or any key under it. */
  async #isDirectory(segments: string[]): Promise<boolean> {
    if (segments.length === 0) return true;
    const page = await this.#client.listObjectsV2({
      prefix: this.#keys.directory(segments),
      maxKeys: 1,
    });
    return page.objects.length > 0 || page.commonPrefixes.length > 0;
  }

  /** Whether directory `segments` holds anything but its marker. */
  async #hasEntries(segments: string[]): Promise<boolean> {
    const prefix = this.#keys.directory(segments);
    const page = await this.#client.listObjectsV2({ prefix, delimiter: "/", maxKeys: 2 });
    return page.commonPrefixes.length > 0 || page.objects.some((object) => object.key !== prefix);
  }

  /** NOT_FOUND or WRONG_TYPE unless the directory an entry `segments` goes into is one. */
  async #assertParentDirectory(segments: string[]): Promise<void> {
    const parent = segments.slice(0, -1);
    for (let depth = 1; depth <= parent.length; depth++) {
      if (await this.#headFile(parent.slice(0, depth)) !== null) {
        throw new FtsError("WRONG_TYPE", `${quote(parent.slice(0, depth))} is not a directory`);
      }
    }
  }

  /** Writes the marker of the directory `segments` lies in, so that it outlives `segments`. */
  async #keepParent(segments: string[]): Promise<void> {
    if (segments.length < 2) return;
    await this.#client.putObject(this.#keys.directory(segments.slice(0, -1)), new Uint8Array(0));
  }

  list(segments: string[]): Promise<Entry[]> {
    return mapped(async () => {
      const file = await this.#headFile(segments);
      if (file !== null) return [fileEntry(segments.at(-1)!, file)];
      const prefix = this.#keys.directory(segments);
      const dirs: Entry[] = [];
      const fileNames: string[] = [];
      let found = segments.length === 0;
      let token: string | undefined;
      do {
        const page = await this.#client.listObjectsV2({
          prefix,
          delimiter: "/",
          continuationToken: token,
        });
        if (page.objects.length > 0 || page.commonPrefixes.length > 0) found = true;
        for (const key of page.commonPrefixes) {
          const name = this.#keys.nameUnder(prefix, key);
          if (name !== null) dirs.push({ name, type: "dir", size: 0, mtime: 0 });
        }
        for (const object of page.objects) {
          if (object.key === prefix) continue; // The directory's own marker.
          const name = this.#keys.nameUnder(prefix, object.key);
          if (name !== null) fileNames.push(name);
        }
        token = page.nextContinuationToken;
      } while (token !== undefined);
      if (!found) throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(segments)}`);
      const files = await boundedMap(fileNames, LIST_HEAD_CONCURRENCY, async (name) => {
        const info = await this.#headFile([...segments, name]);
        // Removed since it was listed: simply gone.
        return info === null ? null : fileEntry(name, info);
      });
      const entries = [...dirs, ...files.filter((entry) => entry !== null)];
      return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
  }

  stat(segments: string[]): Promise<Entry> {
    return mapped(async () => {
      const name = segments.at(-1) ?? "";
      const file = await this.#headFile(segments);
      if (file !== null) return fileEntry(name, file);
      if (await this.#isDirectory(segments)) return { name, type: "dir", size: 0, mtime: 0 };
      throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(segments)}`);
    });
  }

  openForDownload(segments: string[]): Promise<StoredFile> {
    return mapped(async () => {
      try {
        const object = await this.#client.getObject(this.#keys.file(segments));
        return {
          file: new ObjectSource(object.body),
          size: object.contentLength,
          mtime: objectMtime(object),
          mode: objectMode(object),
        };
      } catch (err) {
        if (!isNoSuchKey(err)) throw err;
        if (await this.#isDirectory(segments)) {
          throw new FtsError("WRONG_TYPE", `${quote(segments)} is not a regular file`);
        }
        throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(segments)}`);
      }
    });
  }

  /**
   * The digests kept with the objects (from the upload that stored them,
   * when its checksum is `checksum`), else read and hashed now; nothing
   * learnt is written back (that would be a copy of the object).
   */
  directoryDigests(_dir: string[], checksum: ChecksumName): Promise<DirectoryDigests> {
    const digestOf = (segments: string[]) =>
      mapped(async (): Promise<FoundDigest | null> => {
        const info = await this.#headFile(segments);
        if (info === null) return null;
        const mtime = objectMtime(info);
        const kept = keptDigest(info, checksum);
        if (kept !== null) return { hex: kept, size: info.contentLength, mtime, hashedNow: false };
        let opened: StoredFile;
        try {
          opened = await this.openForDownload(segments);
        } catch (err) {
          if (err instanceof FtsError) return null;
          throw err;
        }
        try {
          const hash = await createStreamingHash(checksum);
          const { digest } = await sendFileFrom(
            opened.file,
            opened.size,
            opened.size,
            () => Promise.resolve(),
            hash,
          );
          return { hex: digest.hex, size: opened.size, mtime: opened.mtime, hashedNow: true };
        } finally {
          opened.file.close();
        }
      });
    return Promise.resolve({ digestOf, keepOnly: () => {}, save: () => Promise.resolve() });
  }

  beginUpload(segments: string[], options: UploadOptions): Promise<StoreUpload> {
    return mapped(async () => {
      const { ifUnchanged } = options;
      if (ifUnchanged !== undefined && options.size > SINGLE_PUT_MAX_BYTES) {
        throw new FtsError("UNSUPPORTED", LARGE_IF_UNCHANGED_REFUSAL);
      }
      if (!options.overwrite && options.size > SINGLE_PUT_MAX_BYTES) {
        throw new FtsError("UNSUPPORTED", LARGE_CREATE_REFUSAL);
      }
      const key = this.#keys.file(segments);
      await this.#assertParentDirectory(segments);
      const [existing, isDirectory] = await Promise.all([
        this.#headFile(segments),
        this.#isDirectory(segments),
      ]);
      if (isDirectory) throw new FtsError("WRONG_TYPE", `${quote(segments)} is a directory`);
      // A courtesy: the publish itself refuses a name taken meanwhile.
      if (existing && !options.overwrite) {
        throw new FtsError("EXISTS", `${quote(segments)} already exists`);
      }
      if (ifUnchanged !== undefined) assertUnchanged(segments, existing, ifUnchanged);
      const replacingBytes = existing?.contentLength ?? 0;
      const claim = this.space.claim(
        options.size,
        replacingBytes,
        `an upload of ${options.size} bytes`,
      );
      return new BucketUpload({
        client: this.#client,
        key,
        segments,
        size: options.size,
        overwrite: options.overwrite,
        mtime: options.mtime ?? Date.now(),
        mode: options.mode,
        claim,
        replacingBytes,
        // The version looked at is the one replaced, or none: S3 checks its ETag as it writes.
        ifMatch: ifUnchanged === undefined ? undefined : existing!.etag,
      });
    });
  }

  rename(from: string[], to: string[], overwrite: boolean): Promise<void> {
    return mapped(async () => {
      const file = await this.#headFile(from);
      if (file !== null) return await this.#renameFile(from, to, file, overwrite);
      if (!await this.#isDirectory(from)) {
        throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(from)}`);
      }
      if (to.length > from.length && from.every((segment, i) => segment === to[i])) {
        throw new FtsError(
          "BAD_NAME",
          `${quote(to)} is inside ${quote(from)}: it cannot move there`,
        );
      }
      if (await this.#hasEntries(from)) {
        throw new FtsError(
          "UNSUPPORTED",
          `${quote(from)} is a directory that is not empty: in an S3 bucket a rename of one ` +
            `would copy and delete each file in turn, not move them at once, so it is refused`,
        );
      }
      await this.#assertTargetDirectory(to);
      if (await this.#headFile(to) !== null) {
        throw new FtsError(
          "WRONG_TYPE",
          `${quote(to)} is not a directory: a directory cannot replace it`,
        );
      }
      if (await this.#hasEntries(to)) {
        throw new FtsError("NOT_EMPTY", `${quote(to)} is a directory that is not empty`);
      }
      if (from.join("/") === to.join("/")) return;
      try {
        await this.#client.putObject(this.#keys.directory(to), new Uint8Array(0), {
          ifNoneMatch: !overwrite,
        });
      } catch (err) {
        if (isPreconditionFailed(err)) throw new FtsError("EXISTS", `${quote(to)} already exists`);
        throw err;
      }
      await this.#keepParent(from);
      await this.#client.deleteObject(this.#keys.directory(from));
    });
  }

  /** NOT_FOUND naming the new name's directory (not the source) if it is missing. */
  async #assertTargetDirectory(to: string[]): Promise<void> {
    await this.#assertParentDirectory(to);
    if (!await this.#isDirectory(to.slice(0, -1))) {
      throw new FtsError(
        "NOT_FOUND",
        `the directory ${quote(to.slice(0, -1))} of the new name ${quote(to)} does not exist`,
      );
    }
  }

  /**
   * A file's rename: a copy of the version looked at (`If-Match` on its
   * ETag), then the delete of the old name. Without overwrite, the copy is
   * a read and a conditional PutObject, which S3 refuses when the name was
   * taken meanwhile; above {@link SINGLE_PUT_MAX_BYTES} that is refused.
   */
  async #renameFile(
    from: string[],
    to: string[],
    file: S3ObjectInfo,
    overwrite: boolean,
  ): Promise<void> {
    await this.#assertTargetDirectory(to);
    const [existing, isDirectory] = await Promise.all([
      this.#headFile(to),
      this.#isDirectory(to),
    ]);
    if (isDirectory) {
      throw new FtsError("WRONG_TYPE", `${quote(to)} is a directory: a file cannot replace it`);
    }
    if (existing && !overwrite) throw new FtsError("EXISTS", `${quote(to)} already exists`);
    if (from.join("/") === to.join("/")) return;
    const source = this.#keys.file(from);
    const target = this.#keys.file(to);
    const changed = () =>
      new FtsError("NOT_FOUND", `${quote(from)} was moved or removed meanwhile`);
    if (overwrite) {
      if (file.contentLength > MAX_COPY_BYTES) {
        throw new FtsError(
          "UNSUPPORTED",
          `${quote(from)} is larger than the ${MAX_COPY_BYTES} bytes S3 copies in one request`,
        );
      }
      try {
        await this.#client.copyObject(source, target, undefined, { ifMatch: file.etag });
      } catch (err) {
        if (isPreconditionFailed(err) || isNoSuchKey(err)) throw changed();
        throw err;
      }
    } else {
      if (file.contentLength > SINGLE_PUT_MAX_BYTES) {
        throw new FtsError("UNSUPPORTED", LARGE_CREATE_REFUSAL);
      }
      let bytes: Uint8Array;
      try {
        const object = await this.#client.getObject(source);
        if (object.etag !== file.etag) {
          await object.body.cancel();
          throw changed();
        }
        bytes = new Uint8Array(await new Response(object.body).arrayBuffer());
      } catch (err) {
        if (isNoSuchKey(err)) throw changed();
        throw err;
      }
      try {
        await this.#client.putObject(target, bytes, { ifNoneMatch: true, metadata: file.metadata });
      } catch (err) {
        if (isPreconditionFailed(err)) throw new FtsError("EXISTS", `${quote(to)} already exists`);
        throw err;
      }
    }
    await this.#keepParent(from);
    await this.#client.deleteObject(source);
    if (existing) this.space.freed(existing.contentLength);
  }

  remove(segments: string[]): Promise<void> {
    return mapped(async () => {
      const file = await this.#headFile(segments);
      if (file !== null) {
        await this.#keepParent(segments);
        await this.#client.deleteObject(this.#keys.file(segments));
        this.space.freed(file.contentLength);
        return;
      }
      if (!await this.#isDirectory(segments)) {
        throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(segments)}`);
      }
      if (await this.#hasEntries(segments)) {
        throw new FtsError("NOT_EMPTY", `${quote(segments)} is a directory that is not empty`);
      }
      await this.#keepParent(segments);
      await this.#client.deleteObject(this.#keys.directory(segments));
    });
  }

  /** Writes the directory's marker, only if absent (S3 refuses it otherwise: EXISTS). */
  mkdir(segments: string[]): Promise<void> {
    return mapped(async () => {
      const marker = this.#keys.directory(segments);
      await this.#assertParentDirectory(segments);
      const taken = () => new FtsError("EXISTS", `${quote(segments)} already exists`);
      if (await this.#headFile(segments) !== null || await this.#isDirectory(segments)) {
        throw taken();
      }
      try {
        await this.#client.putObject(marker, new Uint8Array(0), { ifNoneMatch: true });
      } catch (err) {
        if (isPreconditionFailed(err)) throw taken();
        throw err;
      }
    });
  }

  /**
   * A file's permission bits are metadata: the object is copied onto
   * itself with them (only while it is the version looked at). A
   * directory in a bucket has none to set: UNSUPPORTED.
   */
  chmod(segments: string[], mode: number): Promise<void> {
    return mapped(async () => {
      const file = await this.#headFile(segments);
      if (file === null) {
        if (await this.#isDirectory(segments)) {
          throw new FtsError(
            "UNSUPPORTED",
            `${quote(segments)} is a directory, which has no permission bits in an S3 bucket`,
          );
        }
        throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(segments)}`);
      }
      if (file.contentLength > MAX_COPY_BYTES) {
        throw new FtsError(
          "UNSUPPORTED",
          `${quote(segments)} is larger than the ${MAX_COPY_BYTES} bytes S3 copies in one request`,
        );
      }
      const key = this.#keys.file(segments);
      try {
        await this.#client.copyObject(key, key, withMode(file.metadata, mode), {
          ifMatch: file.etag,
        });
      } catch (err) {
        if (isPreconditionFailed(err)) {
          throw new FtsError(
            "CHANGED",
            `${quote(segments)} changed meanwhile: it was left as it is`,
          );
        }
        throw err;
      }
    });
  }

  /** A bucket keeps no partials (README): none to list. */
  listPartials(): Promise<ListedPartial[]> {
    return Promise.resolve([]);
  }

  /** A bucket keeps no partials: an upload with resume starts from the first byte. */
  heldBytes(): number {
    return 0;
  }

  dropPartials(segments: string[], size: number | null): Promise<DroppedPartials> {
    const sized = size === null ? "" : ` of ${size} bytes`;
    return Promise.reject(
      new FtsError(
        "NOT_FOUND",
        `no data of an interrupted upload${sized} is held for ${quote(segments)}`,
      ),
    );
  }
}

/**
 * Throws CHANGED unless `found` (null when missing) is a file of
 * `expected`'s size and mtime: someone else replaced or removed it since the
 * client saw it. The publish then checks that it is still that object.
 */
function assertUnchanged(
  segments: string[],
  found: S3ObjectInfo | null,
  expected: FileVersion,
): void {
  if (
    found !== null && found.contentLength === expected.size && objectMtime(found) === expected.mtime
  ) {
    return;
  }
  const now = found === null
    ? "it was removed"
    : `it has ${found.contentLength} bytes, modified ${new Date(objectMtime(found)).toISOString()}`;
  throw new FtsError(
    "CHANGED",
    `${quote(segments)} changed since it was listed (${expected.size} bytes, modified ` +
      `${new Date(expected.mtime).toISOString()}; now ${now}): it was left as it is`,
  );
}

/** Runs `step`, its S3 refusals as fts's codes (bucket_errors.ts). */
async function mapped<T>(step: () => Promise<T>): Promise<T> {
  try {
    return await step();
  } catch (err) {
    throw bucketFailure(err);
  }
}

function fileEntry(name: string, info: S3ObjectInfo): Entry {
  return { name, type: "file", size: info.contentLength, mtime: objectMtime(info) };
}

/** `each` of `items`, at most `concurrency` at a time, results in order. */
async function boundedMap<T, R>(
  items: T[],
  concurrency: number,
  each: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const runner = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await each(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, runner));
  return results;
}
