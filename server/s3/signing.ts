/**
 * AWS Signature Version 4 for S3 requests: the canonical request, the string
 * to sign and the Authorization header, as AWS's SigV4 specification
 * describes them. The canonical URI and query are made here with
 * {@link uriEncode}, and the client sends exactly those strings, so what is
 * signed and what the server sees cannot differ.
 */

import { createHash, createHmac } from "node:crypto";
import type { S3Credentials } from "./credentials.ts";

/** The service name in the credential scope. */
const SERVICE = "s3";

/** The signing algorithm's name, as it appears in the Authorization header. */
const ALGORITHM = "AWS4-HMAC-SHA256";

/** What {@link signRequest} signs. */
export interface RequestToSign {
  /** HTTP method, upper case. */
  method: string;
  /** The host header's value: host, and port when not the scheme's default. */
  host: string;
  /** The path exactly as sent, already encoded with {@link uriEncode} segment by segment. */
  canonicalPath: string;
  /** The query's parameters, unencoded; {@link canonicalQuery} orders and encodes them. */
  query: Record<string, string>;
  /** Headers to send and sign (names in any case); host and the x-amz-* ones are added. */
  headers: Record<string, string>;
  /** Hex SHA-256 of the body ({@link sha256Hex}). */
  payloadHash: string;
}

/**
 * Encodes `text` as SigV4 asks: every UTF-8 byte except the unreserved
 * characters `A-Z a-z 0-9 - _ . ~` becomes `%XY` (upper-case hex); `/` is kept
 * only when `keepSlash` (an object key's path), never in a query.
 * `encodeURIComponent` is not this: it keeps `! ' ( ) *`.
 *
 * @example
 * ```ts
 * import { uriEncode } from "./signing.ts";
 * console.assert(uriEncode("a b/ü*(x)", true) === "a%20b/%C3%BC%2A%28x%29");
 * console.assert(uriEncode("a/b", false) === "a%2Fb");
 * ```
 */
export function uriEncode(text: string, keepSlash: boolean): string {
  let out = "";
  for (const byte of new TextEncoder().encode(text)) {
    const char = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(char) || (keepSlash && char === "/")) out += char;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** The query string, parameters sorted by encoded name then value, as both signed and sent. */
export function canonicalQuery(query: Record<string, string>): string {
  return Object.entries(query)
    .map(([name, value]) => [uriEncode(name, false), uriEncode(value, false)] as const)
    .sort(([a, av], [b, bv]) => a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0)
    .map(([name, value]) => `${name}=${value}`)
    .join("&");
}

/** Hex SHA-256 of `bytes`, the payload hash of a body sent whole. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** `20260102T030405Z`: the x-amz-date form of `at`. */
function amzDate(at: Date): string {
  return at.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/**
 * The headers to send for `request`, signed with `credentials` for `region`
 * at `at`: the request's own headers plus host, x-amz-date,
 * x-amz-content-sha256, x-amz-security-token (with a session token) and
 * Authorization. Every header in the result except Authorization is signed.
 */
export function signRequest(
  request: RequestToSign,
  credentials: S3Credentials,
  region: string,
  at: Date,
): Record<string, string> {
  const date = amzDate(at);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers)) {
    // Canonical values are trimmed with inner runs of spaces made one; send them so too.
    headers[name.toLowerCase()] = value.trim().replace(/ +/g, " ");
  }
  headers["host"] = request.host;
  headers["x-amz-date"] = date;
  headers["x-amz-content-sha256"] = request.payloadHash;
  if (credentials.sessionToken !== undefined) {
    headers["x-amz-security-token"] = credentials.sessionToken;
  }
  const names = Object.keys(headers).sort();
  const signedHeaders = names.join(";");
  const canonicalRequest = [
    request.method,
    request.canonicalPath,
    canonicalQuery(request.query),
    names.map((name) => `${name}:${headers[name]}\n`).join(""),
    signedHeaders,
    request.payloadHash,
  ].join("\n");
  const scope = `${date.slice(0, 8)}/${region}/${SERVICE}/aws4_request`;
  const stringToSign = [
    ALGORITHM,
    date,
    scope,
    createHash("sha256").update(canonicalRequest).digest("hex"),
  ].join("\n");
  let key: Uint8Array = new TextEncoder().encode("AWS4" + credentials.secretAccessKey);
  for (const part of [date.slice(0, 8), region, SERVICE, "aws4_request"]) {
    key = createHmac("sha256", key).update(part).digest();
  }
  const signature = createHmac("sha256", key).update(stringToSign).digest("hex");
  headers["authorization"] =
    `${ALGORITHM} Credential=${credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
