/**
 * A bucket-backed server's start, on the main thread, before any worker:
 * the credentials are read, the bucket is asked for (HeadBucket), and with
 * a quota what the served prefix holds is counted from its listing; uploads
 * abandoned long ago are aborted. A
 * missing bucket, wrong credentials or an unreachable server end the start
 * here, with a line saying which, rather than failing every request later.
 *
 * @module
 */

import { ABANDONED_UPLOAD_AGE_MS, abortAbandonedUploads } from "./abandoned_uploads.ts";
import { BucketSpace } from "./bucket_space.ts";
import { S3Client } from "./client.ts";
import { loadS3Credentials } from "./credentials.ts";
import { S3Error } from "./error.ts";
import type { BucketStoreConfig } from "./store_config.ts";

/** Why a bucket cannot be served; the message says what to fix. */
export class BucketStartError extends Error {
  override name = "BucketStartError";
  /** The S3 error code behind it, when the S3 server gave one. */
  readonly s3Code: string | null;

  constructor(message: string, s3Code: string | null, options?: ErrorOptions) {
    super(message, options);
    this.s3Code = s3Code;
  }
}

/** A client for `store`'s bucket, with its credentials. */
export function bucketClient(store: BucketStoreConfig): S3Client {
  if (store.credentials === null) throw new Error("the bucket's credentials were not read");
  return new S3Client({
    endpoint: new URL(store.endpoint),
    region: store.region,
    credentials: store.credentials,
    bucket: store.bucket,
  });
}

/** What a bucket's start found. */
export interface OpenedBucket {
  /** Multipart uploads left unfinished long ago (abandoned_uploads.ts), aborted now. */
  abortedUploads: number;
}

/**
 * Fills in `store`'s credentials (from `env`) and its quota's counts, once
 * the bucket answered, and aborts the uploads gateways abandoned under its
 * prefix; throws {@link BucketStartError} (or the credentials' own error)
 * when it cannot be served.
 */
export async function openBucket(
  store: BucketStoreConfig,
  quotaBytes: number | null,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<OpenedBucket> {
  store.credentials = await loadS3Credentials(env);
  const client = bucketClient(store);
  try {
    await client.headBucket();
    const abortedUploads = await abortAbandonedUploads(
      client,
      store.prefix,
      Date.now() - ABANDONED_UPLOAD_AGE_MS,
    );
    // Counted after the abort: an abandoned upload's parts are not objects, and never counted.
    store.counts = BucketSpace.allocate(quotaBytes === null ? 0 : await usedBytes(client, store));
    return { abortedUploads };
  } catch (err) {
    if (!(err instanceof S3Error)) throw err;
    throw new BucketStartError(startRefusal(store, err), err.code, { cause: err });
  }
}

/** What the keys under the served prefix hold, in bytes, page by page. */
async function usedBytes(client: S3Client, store: BucketStoreConfig): Promise<number> {
  let bytes = 0;
  let token: string | undefined;
  do {
    const page = await client.listObjectsV2({
      prefix: store.prefix === "" ? undefined : `${store.prefix}/`,
      continuationToken: token,
    });
    for (const object of page.objects) bytes += object.size;
    token = page.nextContinuationToken;
  } while (token !== undefined);
  return bytes;
}

/** The line for a refusal at start, by its S3 code. */
function startRefusal(store: BucketStoreConfig, err: S3Error): string {
  const bucket = `the bucket ${store.bucket} at ${store.endpoint}`;
  switch (err.code) {
    case "NoSuchBucket":
      return `${bucket} does not exist: create it first (fts never creates a bucket)`;
    case "InvalidAccessKeyId":
    case "SignatureDoesNotMatch":
      return `${bucket} refused the credentials (${err.code}): check AWS_ACCESS_KEY_ID and ` +
        `AWS_SECRET_ACCESS_KEY, or the shared credentials file's profile`;
    case "AccessDenied":
      return `${bucket} denied these credentials access (AccessDenied)`;
    case "RequestFailed":
      return `the S3 server at ${store.endpoint} did not answer`;
    default:
      return `${bucket} cannot be served: ${err.message}`;
  }
}
