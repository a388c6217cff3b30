/**
 * `fts serve --store s3://BUCKET[/PREFIX]` and its companions
 * (`--s3-endpoint` or AWS_ENDPOINT_URL, `--s3-region` or AWS_REGION), parsed
 * into what the main thread and the workers need. Credentials never come
 * from the command line: the main thread reads them (credentials.ts) and
 * posts them to the workers, which may read no file.
 *
 * @module
 */

import { UsageError } from "../../cli/usage_error.ts";
import { parseName } from "../../protocol/names.ts";
import type { S3Credentials } from "./credentials.ts";
import { s3Endpoint } from "./config.ts";

/** The bucket a server serves, for the main thread and each worker (structured-cloneable). */
export interface BucketStoreConfig {
  /** `s3://BUCKET[/PREFIX]`, as logs and the start line name it. */
  name: string;
  bucket: string;
  /** The served prefix, without slashes at its ends; "" for the whole bucket. */
  prefix: string;
  /** The S3 server's base URL. */
  endpoint: string;
  region: string;
  /** Read by the main thread at start; null until then. */
  credentials: S3Credentials | null;
  /** The quota's shared counts (bucket_space.ts), made by the main thread at start; null until then. */
  counts: SharedArrayBuffer | null;
}

/** S3's bucket names: 3-63 lower-case letters, digits, dots and hyphens, a letter or digit at each end. */
const BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * The store `--store` names, or null without one. Throws UsageError for a
 * store that is not `s3://BUCKET[/PREFIX]`, a prefix that is not a valid
 * fts name, S3 flags without `--store`, or an endpoint that is missing or
 * not an http(s) URL.
 *
 * @example
 * ```ts
 * import { parseStoreFlags } from "./store_config.ts";
 * const env = { get: (name: string) => name === "AWS_ENDPOINT_URL" ? "http://127.0.0.1:7480" : undefined };
 * const store = parseStoreFlags({ store: "s3://files/team/a" }, env)!;
 * console.assert(store.bucket === "files" && store.prefix === "team/a" && store.region === "us-east-1");
 * ```
 */
export function parseStoreFlags(
  given: { store?: string; endpoint?: string; region?: string },
  env: { get(name: string): string | undefined },
): BucketStoreConfig | null {
  if (given.store === undefined) {
    if (given.endpoint !== undefined || given.region !== undefined) {
      throw new UsageError("--s3-endpoint and --s3-region go with --store s3://BUCKET");
    }
    return null;
  }
  const match = /^s3:\/\/([^/]*)(?:\/(.*))?$/.exec(given.store);
  if (!match) throw new UsageError("--store must be s3://BUCKET or s3://BUCKET/PREFIX");
  const bucket = match[1]!;
  if (!BUCKET_NAME.test(bucket) || bucket.includes("..")) {
    throw new UsageError(
      "--store: the bucket name must be 3-63 lower-case letters, digits, '.' and '-'",
    );
  }
  const prefix = (match[2] ?? "").replace(/\/+$/, "");
  if (prefix !== "") {
    try {
      parseName(prefix);
    } catch (err) {
      throw new UsageError(`--store: the prefix is not a valid name: ${(err as Error).message}`);
    }
  }
  if (given.endpoint === undefined && !env.get("AWS_ENDPOINT_URL")) {
    throw new UsageError("--store needs --s3-endpoint URL or AWS_ENDPOINT_URL");
  }
  let where;
  try {
    where = s3Endpoint(given, {
      AWS_ENDPOINT_URL: env.get("AWS_ENDPOINT_URL"),
      AWS_REGION: env.get("AWS_REGION"),
    });
  } catch (err) {
    throw new UsageError(`--store: ${(err as Error).message}`);
  }
  return {
    name: `s3://${bucket}${prefix === "" ? "" : `/${prefix}`}`,
    bucket,
    prefix,
    endpoint: where.endpoint.origin,
    region: where.region,
    credentials: null,
    counts: null,
  };
}
