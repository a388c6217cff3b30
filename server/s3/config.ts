/**
 * Where an S3 bucket is: the endpoint and the region, from the environment
 * the AWS tools read (AWS_ENDPOINT_URL, AWS_REGION) unless given. Addressing
 * is path-style (`ENDPOINT/BUCKET/KEY`), which self-hosted servers (Ceph RGW,
 * MinIO) answer without a DNS name a bucket.
 */

/** The region when none is given: the one AWS's own tools assume. */
export const DEFAULT_S3_REGION = "us-east-1";

/** The endpoint and region of a bucket. */
export interface S3Endpoint {
  /** The server's base URL, `http(s)://host[:port]`, without a path. */
  endpoint: URL;
  /** The region requests are signed for. */
  region: string;
}

/**
 * The endpoint and region: `endpoint` or AWS_ENDPOINT_URL (one of them is
 * required: no AWS endpoint is guessed), `region` or AWS_REGION or
 * {@link DEFAULT_S3_REGION}. Throws TypeError for an endpoint that is not an
 * http(s) URL without path, query or credentials.
 *
 * @example
 * ```ts
 * import { s3Endpoint } from "./config.ts";
 * const where = s3Endpoint({}, { AWS_ENDPOINT_URL: "http://127.0.0.1:7480" });
 * console.assert(where.endpoint.host === "127.0.0.1:7480" && where.region === "us-east-1");
 * ```
 */
export function s3Endpoint(
  given: { endpoint?: string; region?: string },
  env: Record<string, string | undefined> = Deno.env.toObject(),
): S3Endpoint {
  const text = given.endpoint ?? env["AWS_ENDPOINT_URL"];
  if (!text) throw new TypeError("no S3 endpoint: give one, or set AWS_ENDPOINT_URL");
  let endpoint: URL;
  try {
    endpoint = new URL(text);
  } catch {
    throw new TypeError("the S3 endpoint is not a URL");
  }
  if (endpoint.protocol !== "http:" && endpoint.protocol !== "https:") {
    throw new TypeError("the S3 endpoint must be an http:// or https:// URL");
  }
  if (endpoint.username || endpoint.password) {
    throw new TypeError(
      "the S3 endpoint must not carry credentials: they come from the environment",
    );
  }
  if ((endpoint.pathname !== "/" && endpoint.pathname !== "") || endpoint.search || endpoint.hash) {
    throw new TypeError("the S3 endpoint must be a scheme, host and port only (no path or query)");
  }
  const region = given.region ?? (env["AWS_REGION"] || DEFAULT_S3_REGION);
  if (!/^[a-z0-9-]{1,64}$/.test(region)) {
    throw new TypeError("the S3 region must be lower-case letters, digits and '-'");
  }
  return { endpoint, region };
}
