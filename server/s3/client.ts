/**
 * A small S3 client over `fetch`: the operations a gateway in front of a
 * bucket needs, each one request, signed with SigV4 (signing.ts), path-style
 * (`ENDPOINT/BUCKET/KEY`). Objects are streamed down; they go up as bytes in
 * memory (see {@link S3Body}); the XML answers are read whole but bounded. Every refusal is an {@link S3Error}
 * with the server's code and the HTTP status.
 */

import type { S3Credentials } from "./credentials.ts";
import { S3Error } from "./error.ts";
import { canonicalQuery, sha256Hex, signRequest, uriEncode } from "./signing.ts";
import { escapeXml, parseXml, xmlChildren, xmlChildText, type XmlElement } from "./xml.ts";

/**
 * Largest XML answer read (a listing page of 1000 keys of up to 1024 bytes,
 * URL-encoded, is some 4 MB at worst); a larger one is refused, not buffered.
 */
const MAX_RESULT_BODY_BYTES = 8 * 1024 * 1024;

/** Largest error answer read for its code; the rest is not needed. */
const MAX_ERROR_BODY_BYTES = 64 * 1024;

/** S3's limit on a key's length, in UTF-8 bytes. */
export const MAX_S3_KEY_BYTES = 1024;

/** S3's part numbers run from 1 to this. */
export const MAX_S3_PART_NUMBER = 10_000;

/** Where the client sends its requests, and as whom. */
export interface S3ClientOptions {
  /** The server's base URL (config.ts {@link s3Endpoint}). */
  endpoint: URL;
  /** The region requests are signed for. */
  region: string;
  /** The keys requests are signed with. */
  credentials: S3Credentials;
  /** The bucket every operation works in. */
  bucket: string;
}

/**
 * A body to send: bytes in memory, hashed and signed. Not a stream: Deno's
 * fetch sends a ReadableStream body chunked and drops a Content-Length set
 * for it (seen with Deno 2.9.6), and S3 refuses a body without a length
 * (411). A large object goes up as a multipart upload, one part in memory at
 * a time.
 */
export type S3Body = Uint8Array;

/** User metadata: `x-amz-meta-NAME` headers, names lower-case, values printable ASCII. */
export type S3Metadata = Record<string, string>;

/** Options of {@link S3Client.putObject}. */
export interface PutObjectOptions {
  /** Create only: refused with PreconditionFailed when the key exists (`If-None-Match: *`). */
  ifNoneMatch?: boolean;
  /**
   * Replace only this version: refused with PreconditionFailed unless the
   * key's ETag is this one (`If-Match`, sent without its quotes).
   */
  ifMatch?: string;
  /** Metadata stored with the object. */
  metadata?: S3Metadata;
  /** The object's Content-Type. @default "application/octet-stream" */
  contentType?: string;
}

/** What HeadObject and GetObject tell of an object. */
export interface S3ObjectInfo {
  /** Bytes in this answer (the whole object for HeadObject, the range for a ranged GET). */
  contentLength: number;
  /** The object's ETag, as the server sent it (quotes included). */
  etag: string;
  /** The object's Last-Modified time. */
  lastModified: Date;
  /** Its user metadata. */
  metadata: S3Metadata;
}

/** A GetObject answer: the bytes as a stream, and what the headers said. */
export interface S3GetObjectResult extends S3ObjectInfo {
  /** The object's bytes (the range asked for); cancel it if not read to the end. */
  body: ReadableStream<Uint8Array>;
  /** The object's whole size (from Content-Range on a ranged GET). */
  objectSize: number;
}

/** One object of a listing. */
export interface S3ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** Options of {@link S3Client.listObjectsV2}. */
export interface ListObjectsOptions {
  /** Only keys that start with this. */
  prefix?: string;
  /** Keys with this after the prefix are rolled up into common prefixes (`/`: directories). */
  delimiter?: string;
  /** The previous page's `nextContinuationToken`. */
  continuationToken?: string;
  /** At most this many keys and prefixes in the page. @default 1000 (the server's) */
  maxKeys?: number;
}

/** One page of ListObjectsV2. */
export interface S3ListObjectsResult {
  objects: S3ListedObject[];
  /** Prefixes up to and including the delimiter, each once. */
  commonPrefixes: string[];
  /** The token for the next page; undefined on the last one. */
  nextContinuationToken?: string;
}

/** One uploaded part of a multipart upload. */
export interface S3Part {
  partNumber: number;
  etag: string;
}

/** A part as ListParts shows it. */
export interface S3ListedPart extends S3Part {
  size: number;
}

/** One page of ListParts. */
export interface S3ListPartsResult {
  parts: S3ListedPart[];
  /** The marker for the next page; undefined on the last one. */
  nextPartNumberMarker?: number;
}

/** An unfinished multipart upload, as ListMultipartUploads shows it. */
export interface S3ListedUpload {
  key: string;
  uploadId: string;
  initiated: Date;
}

/** Options of {@link S3Client.listMultipartUploads}. */
export interface ListUploadsOptions {
  /** Only uploads of keys that start with this. */
  prefix?: string;
  /** The previous page's markers. */
  keyMarker?: string;
  uploadIdMarker?: string;
}

/** One page of ListMultipartUploads. */
export interface S3ListUploadsResult {
  uploads: S3ListedUpload[];
  /** The markers for the next page; undefined on the last one. */
  next?: { keyMarker: string; uploadIdMarker: string };
}

/** One request as {@link S3Client} builds it. */
interface S3Request {
  /** The operation's S3 name, for errors. */
  operation: string;
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  /** The object's key; null for a request on the bucket. */
  key: string | null;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  body?: S3Body;
  /** The code a bodiless refusal with status 404 means (HEAD answers have no body). */
  notFoundCode?: string;
}

/**
 * Requests to one bucket of one S3 server.
 *
 * @example
 * ```ts ignore
 * import { S3Client } from "./client.ts";
 * const s3 = new S3Client({ endpoint: new URL("http://127.0.0.1:7480"), region: "us-east-1",
 *   credentials: { accessKeyId: "AK", secretAccessKey: "SK" }, bucket: "files" });
 * await s3.putObject("a/b.txt", new TextEncoder().encode("hello"), { ifNoneMatch: true });
 * ```
 */
export class S3Client {
  readonly #options: S3ClientOptions;

  constructor(options: S3ClientOptions) {
    this.#options = options;
  }

  /** The bucket this client works in. */
  get bucket(): string {
    return this.#options.bucket;
  }

  /**
   * Succeeds when the bucket exists and these credentials may use it. HEAD
   * answers carry no body, so a refusal is asked again as an empty listing,
   * whose answer names the cause (NoSuchBucket, InvalidAccessKeyId,
   * SignatureDoesNotMatch, AccessDenied).
   */
  async headBucket(): Promise<void> {
    try {
      await this.#send({ operation: "HeadBucket", method: "HEAD", key: null });
    } catch (err) {
      if (!(err instanceof S3Error) || err.status === 0) throw err;
      await this.listObjectsV2({ maxKeys: 1 }).catch((cause) => {
        if (cause instanceof S3Error) {
          throw new S3Error(cause.code, cause.status, "HeadBucket", cause.serverMessage);
        }
        throw cause;
      });
      throw err;
    }
  }

  /**
   * Creates the bucket (owned by these credentials). A gateway never does:
   * its bucket must exist; tests and benches make theirs with it.
   */
  async createBucket(): Promise<void> {
    const response = await this.#send({ operation: "CreateBucket", method: "PUT", key: null });
    await response.body?.cancel();
  }

  /** Stores `body` under `key`; returns its ETag. */
  async putObject(key: string, body: S3Body, options: PutObjectOptions = {}): Promise<string> {
    const headers = metadataHeaders(options.metadata);
    headers["content-type"] = options.contentType ?? "application/octet-stream";
    if (options.ifNoneMatch) headers["if-none-match"] = "*";
    // Ceph RGW 16.2 compares If-Match with the ETag unquoted: a quoted one (as ETags are sent)
    // never matches there.
    if (options.ifMatch !== undefined) headers["if-match"] = options.ifMatch.replaceAll('"', "");
    const response = await this.#send({
      operation: "PutObject",
      method: "PUT",
      key,
      headers,
      body,
    });
    await response.body?.cancel();
    return response.headers.get("etag") ?? "";
  }

  /**
   * The object's bytes from `range.offset` (and at most `range.length` of
   * them), streamed. A range past the end is refused (InvalidRange).
   */
  async getObject(
    key: string,
    range?: { offset: number; length?: number },
  ): Promise<S3GetObjectResult> {
    const headers: Record<string, string> = {};
    if (range) {
      if (!Number.isSafeInteger(range.offset) || range.offset < 0) {
        throw new RangeError(`range offset must be a whole number >= 0, not ${range.offset}`);
      }
      if (range.length !== undefined && (!Number.isSafeInteger(range.length) || range.length < 1)) {
        throw new RangeError(`range length must be a whole number >= 1, not ${range.length}`);
      }
      const last = range.length === undefined ? "" : String(range.offset + range.length - 1);
      headers["range"] = `bytes=${range.offset}-${last}`;
    }
    const response = await this.#send({ operation: "GetObject", method: "GET", key, headers });
    const info = objectInfo(response, "GetObject");
    let objectSize = info.contentLength;
    if (range) {
      // A server that ignores Range answers 200 with the whole object: that is not what was asked.
      const contentRange = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(
        response.headers.get("content-range") ?? "",
      );
      if (response.status !== 206 || !contentRange || Number(contentRange[1]) !== range.offset) {
        await response.body?.cancel();
        throw new S3Error("InvalidResponse", response.status, "GetObject");
      }
      objectSize = Number(contentRange[3]);
    }
    return { ...info, objectSize, body: response.body ?? new Blob().stream() };
  }

  /** What is known of `key` without its bytes; NoSuchKey when there is none. */
  async headObject(key: string): Promise<S3ObjectInfo> {
    const response = await this.#send({
      operation: "HeadObject",
      method: "HEAD",
      key,
      notFoundCode: "NoSuchKey",
    });
    return objectInfo(response, "HeadObject");
  }

  /** Removes `key` (succeeds too when there is none: S3's DeleteObject does). */
  async deleteObject(key: string): Promise<void> {
    const response = await this.#send({ operation: "DeleteObject", method: "DELETE", key });
    await response.body?.cancel();
  }

  /**
   * Copies `sourceKey` to `key` within the bucket, server-side, metadata
   * and all, or with `metadata` in place of the source's. Returns the new
   * ETag. With `ifMatch`, only while the source's ETag is that one
   * (`x-amz-copy-source-if-match`), else PreconditionFailed. (S3 copies at
   * most 5 GiB in one request.)
   */
  async copyObject(
    sourceKey: string,
    key: string,
    metadata?: S3Metadata,
    options: { ifMatch?: string } = {},
  ): Promise<string> {
    checkKey(sourceKey);
    const headers = metadataHeaders(metadata);
    if (options.ifMatch !== undefined) {
      headers["x-amz-copy-source-if-match"] = options.ifMatch;
      // Ceph RGW 16.2 reads only the older name, and copies regardless of the newer one (seen).
      headers["x-amz-copy-if-match"] = options.ifMatch;
    }
    headers["x-amz-copy-source"] = `/${uriEncode(this.bucket, false)}/${
      uriEncode(sourceKey, true)
    }`;
    headers["x-amz-metadata-directive"] = metadata ? "REPLACE" : "COPY";
    const result = await this.#result({ operation: "CopyObject", method: "PUT", key, headers });
    return xmlChildText(result, "ETag") ?? "";
  }

  /** One page of the keys under `prefix`, those below a `delimiter` rolled up into prefixes. */
  async listObjectsV2(options: ListObjectsOptions = {}): Promise<S3ListObjectsResult> {
    // encoding-type=url: keys may hold characters XML 1.0 cannot carry (control characters).
    const query: Record<string, string> = { "list-type": "2", "encoding-type": "url" };
    if (options.prefix !== undefined) query["prefix"] = options.prefix;
    if (options.delimiter !== undefined) query["delimiter"] = options.delimiter;
    if (options.continuationToken !== undefined) {
      query["continuation-token"] = options.continuationToken;
    }
    if (options.maxKeys !== undefined) query["max-keys"] = String(options.maxKeys);
    const result = await this.#result({
      operation: "ListObjectsV2",
      method: "GET",
      key: null,
      query,
    });
    const decode = keyDecoder(result);
    const truncated = xmlChildText(result, "IsTruncated") === "true";
    return {
      objects: xmlChildren(result, "Contents").map((entry) => ({
        key: decode(requiredText(entry, "Key", "ListObjectsV2")),
        size: wholeNumber(requiredText(entry, "Size", "ListObjectsV2"), "ListObjectsV2"),
        etag: xmlChildText(entry, "ETag") ?? "",
        lastModified: new Date(xmlChildText(entry, "LastModified") ?? NaN),
      })),
      commonPrefixes: xmlChildren(result, "CommonPrefixes").map((entry) =>
        decode(requiredText(entry, "Prefix", "ListObjectsV2"))
      ),
      nextContinuationToken: truncated
        ? requiredText(result, "NextContinuationToken", "ListObjectsV2")
        : undefined,
    };
  }

  /** Starts a multipart upload of `key`; returns its upload id. Nothing is visible until it completes. */
  async createMultipartUpload(
    key: string,
    options: Omit<PutObjectOptions, "ifNoneMatch"> = {},
  ): Promise<string> {
    const headers = metadataHeaders(options.metadata);
    headers["content-type"] = options.contentType ?? "application/octet-stream";
    const result = await this.#result({
      operation: "CreateMultipartUpload",
      method: "POST",
      key,
      query: { uploads: "" },
      headers,
    });
    return requiredText(result, "UploadId", "CreateMultipartUpload");
  }

  /** Uploads part `partNumber` (1-10000) of an upload; returns its ETag for the completion. */
  async uploadPart(
    key: string,
    uploadId: string,
    partNumber: number,
    body: S3Body,
  ): Promise<string> {
    checkPartNumber(partNumber);
    const response = await this.#send({
      operation: "UploadPart",
      method: "PUT",
      key,
      query: { partNumber: String(partNumber), uploadId },
      body,
    });
    await response.body?.cancel();
    const etag = response.headers.get("etag");
    if (etag === null) throw new S3Error("InvalidResponse", response.status, "UploadPart");
    return etag;
  }

  /**
   * Publishes the upload: the parts, in ascending order, become the object
   * at once. Returns its ETag. With `ifNoneMatch`, sends `If-None-Match: *`
   * (a server that honours it refuses with PreconditionFailed when the key
   * exists; not every server does).
   */
  async completeMultipartUpload(
    key: string,
    uploadId: string,
    parts: S3Part[],
    options: { ifNoneMatch?: boolean } = {},
  ): Promise<string> {
    const xml = "<CompleteMultipartUpload>" +
      parts.map((part) => {
        checkPartNumber(part.partNumber);
        return `<Part><PartNumber>${part.partNumber}</PartNumber><ETag>${
          escapeXml(part.etag)
        }</ETag></Part>`;
      }).join("") + "</CompleteMultipartUpload>";
    const result = await this.#result({
      operation: "CompleteMultipartUpload",
      method: "POST",
      key,
      query: { uploadId },
      headers: {
        "content-type": "application/xml",
        ...(options.ifNoneMatch ? { "if-none-match": "*" } : {}),
      },
      body: new TextEncoder().encode(xml),
    });
    return xmlChildText(result, "ETag") ?? "";
  }

  /** Abandons an upload and frees its parts. */
  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    const response = await this.#send({
      operation: "AbortMultipartUpload",
      method: "DELETE",
      key,
      query: { uploadId },
    });
    await response.body?.cancel();
  }

  /** One page of an upload's parts (NoSuchUpload once it has been completed or aborted). */
  async listParts(
    key: string,
    uploadId: string,
    partNumberMarker?: number,
  ): Promise<S3ListPartsResult> {
    const query: Record<string, string> = { uploadId };
    if (partNumberMarker !== undefined) query["part-number-marker"] = String(partNumberMarker);
    const result = await this.#result({ operation: "ListParts", method: "GET", key, query })
      .catch((err) => {
        // Ceph RGW 16.2 answers NoSuchKey where AWS answers NoSuchUpload (an upload completed,
        // aborted or never made); an upload id names one upload, so both mean it is gone.
        if (err instanceof S3Error && err.code === "NoSuchKey") {
          throw new S3Error("NoSuchUpload", err.status, "ListParts", err.serverMessage);
        }
        throw err;
      });
    const truncated = xmlChildText(result, "IsTruncated") === "true";
    return {
      parts: xmlChildren(result, "Part").map((part) => ({
        partNumber: wholeNumber(requiredText(part, "PartNumber", "ListParts"), "ListParts"),
        etag: requiredText(part, "ETag", "ListParts"),
        size: wholeNumber(requiredText(part, "Size", "ListParts"), "ListParts"),
      })),
      nextPartNumberMarker: truncated
        ? wholeNumber(requiredText(result, "NextPartNumberMarker", "ListParts"), "ListParts")
        : undefined,
    };
  }

  /** One page of the bucket's unfinished multipart uploads. */
  async listMultipartUploads(options: ListUploadsOptions = {}): Promise<S3ListUploadsResult> {
    // No encoding-type=url here: Ceph RGW 16.2 then encodes the keys but not NextKeyMarker, and
    // says neither (no EncodingType), so its answer cannot be decoded right.
    const query: Record<string, string> = { uploads: "" };
    if (options.prefix !== undefined) query["prefix"] = options.prefix;
    if (options.keyMarker !== undefined) query["key-marker"] = options.keyMarker;
    if (options.uploadIdMarker !== undefined) query["upload-id-marker"] = options.uploadIdMarker;
    const result = await this.#result({
      operation: "ListMultipartUploads",
      method: "GET",
      key: null,
      query,
    });
    const operation = "ListMultipartUploads";
    const truncated = xmlChildText(result, "IsTruncated") === "true";
    return {
      uploads: xmlChildren(result, "Upload").map((upload) => ({
        key: requiredText(upload, "Key", operation),
        uploadId: requiredText(upload, "UploadId", operation),
        initiated: new Date(xmlChildText(upload, "Initiated") ?? NaN),
      })),
      next: truncated
        ? {
          keyMarker: requiredText(result, "NextKeyMarker", operation),
          uploadIdMarker: requiredText(result, "NextUploadIdMarker", operation),
        }
        : undefined,
    };
  }

  /**
   * Sends `request` and returns its XML answer's root; an `<Error>` root is
   * thrown even with status 200, which CopyObject and
   * CompleteMultipartUpload may answer when they fail after starting.
   */
  async #result(request: S3Request): Promise<XmlElement> {
    const response = await this.#send(request);
    const text = await readBounded(response, MAX_RESULT_BODY_BYTES, request.operation);
    const root = parseAnswer(text, response.status, request.operation);
    if (root.name === "Error") throw errorFrom(root, response.status, request.operation);
    return root;
  }

  /** Signs and sends `request`; returns the answer when its status is 2xx, else throws S3Error. */
  async #send(request: S3Request): Promise<Response> {
    const { endpoint, region, credentials, bucket } = this.#options;
    if (request.key !== null) checkKey(request.key);
    const canonicalPath = `/${uriEncode(bucket, false)}` +
      (request.key === null ? "" : `/${uriEncode(request.key, true)}`);
    const query = request.query ?? {};
    const headers = { ...request.headers };
    const bytes = request.body ?? new Uint8Array();
    const payloadHash = sha256Hex(bytes);
    // fetch takes bytes over an ArrayBuffer, not a SharedArrayBuffer: copy those.
    const body = request.body === undefined
      ? undefined
      : bytes.buffer instanceof ArrayBuffer
      ? bytes as Uint8Array<ArrayBuffer>
      : new Uint8Array(bytes);
    const signed = signRequest(
      { method: request.method, host: endpoint.host, canonicalPath, query, headers, payloadHash },
      credentials,
      region,
      new Date(),
    );
    // fetch sets Host from the URL itself, to the same value as was signed.
    delete signed["host"];
    const search = canonicalQuery(query);
    const url = `${endpoint.origin}${canonicalPath}${search === "" ? "" : `?${search}`}`;
    let response: Response;
    try {
      response = await fetch(url, { method: request.method, headers: signed, body });
    } catch (err) {
      throw new S3Error("RequestFailed", 0, request.operation, "", { cause: err });
    }
    if (response.ok) return response;
    const text = request.method === "HEAD"
      ? ""
      : await readBounded(response, MAX_ERROR_BODY_BYTES, request.operation).catch(() => "");
    if (text.trim() !== "") {
      let root: XmlElement | undefined;
      try {
        root = parseXml(text);
      } catch {
        // Not XML (a proxy's error page): the status alone is the answer.
      }
      if (root?.name === "Error") throw errorFrom(root, response.status, request.operation);
    }
    throw new S3Error(
      statusCode(response.status, request.notFoundCode),
      response.status,
      request.operation,
    );
  }
}

/**
 * The code a bodiless refusal means, from its status (as the AWS SDKs name
 * them), or `notFoundCode` for 404 when the request says what was missing.
 */
function statusCode(status: number, notFoundCode?: string): string {
  switch (status) {
    case 304:
      return "NotModified";
    case 400:
      return "BadRequest";
    case 403:
      return "Forbidden";
    case 404:
      return notFoundCode ?? "NotFound";
    case 412:
      return "PreconditionFailed";
    case 416:
      return "InvalidRange";
    default:
      return `HTTP${status}`;
  }
}

/** The S3Error an `<Error>` element describes. */
function errorFrom(root: XmlElement, status: number, operation: string): S3Error {
  return new S3Error(
    xmlChildText(root, "Code") ?? statusCode(status),
    status,
    operation,
    xmlChildText(root, "Message") ?? "",
  );
}

/** The answer's text, at most `maxBytes` of it; a longer answer is refused and cancelled. */
async function readBounded(
  response: Response,
  maxBytes: number,
  operation: string,
): Promise<string> {
  if (!response.body) return "";
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of response.body) {
    total += chunk.length;
    if (total > maxBytes) {
      throw new S3Error(
        "InvalidResponse",
        response.status,
        operation,
        `answer larger than ${maxBytes} bytes`,
      );
    }
    chunks.push(chunk);
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

/** The root of an XML answer; an answer that is not XML is an InvalidResponse. */
function parseAnswer(text: string, status: number, operation: string): XmlElement {
  try {
    return parseXml(text);
  } catch (err) {
    throw new S3Error("InvalidResponse", status, operation, "", { cause: err });
  }
}

/** The text of `element`'s child `name`; its absence is an InvalidResponse. */
function requiredText(element: XmlElement, name: string, operation: string): string {
  const text = xmlChildText(element, name);
  if (text === undefined) throw new S3Error("InvalidResponse", 200, operation, `no ${name}`);
  return text;
}

/** `text` as a whole number; anything else is an InvalidResponse. */
function wholeNumber(text: string, operation: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) {
    throw new S3Error("InvalidResponse", 200, operation, "not a whole number");
  }
  return value;
}

/**
 * Decodes keys of a listing that was answered with `encoding-type=url`
 * (form encoding: `+` is a space, as the AWS SDKs decode it); a server that
 * did not encode says so by leaving out EncodingType, and its keys are kept.
 */
function keyDecoder(result: XmlElement): (key: string) => string {
  if (xmlChildText(result, "EncodingType") !== "url") return (key) => key;
  return (key) => decodeURIComponent(key.replaceAll("+", " "));
}

/** What the headers of a HeadObject or GetObject answer say. */
function objectInfo(response: Response, operation: string): S3ObjectInfo {
  const length = response.headers.get("content-length");
  if (length === null) throw new S3Error("InvalidResponse", response.status, operation);
  const metadata: S3Metadata = {};
  for (const [name, value] of response.headers) {
    if (name.startsWith("x-amz-meta-")) metadata[name.slice("x-amz-meta-".length)] = value;
  }
  return {
    contentLength: wholeNumber(length, operation),
    etag: response.headers.get("etag") ?? "",
    lastModified: new Date(response.headers.get("last-modified") ?? NaN),
    metadata,
  };
}

/** The `x-amz-meta-*` headers for `metadata`, its names and values checked. */
function metadataHeaders(metadata: S3Metadata | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(metadata ?? {})) {
    if (!/^[a-z0-9-]+$/.test(name)) {
      throw new TypeError(`metadata name must be lower-case letters, digits and '-': ${name}`);
    }
    // Header values are bytes, and servers trim and fold spaces: printable ASCII, no edge spaces.
    if (!/^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/.test(value)) {
      throw new TypeError(`metadata "${name}" must be printable ASCII without edge spaces`);
    }
    headers[`x-amz-meta-${name}`] = value;
  }
  return headers;
}

/**
 * Refuses a key S3 or a URL cannot carry: empty, over MAX_S3_KEY_BYTES, or
 * with a `.` or `..` segment, which URL parsing would resolve away (even
 * percent-encoded) so that another key than the one signed was asked for.
 */
function checkKey(key: string): void {
  if (key === "") throw new TypeError("an S3 key must not be empty");
  if (new TextEncoder().encode(key).length > MAX_S3_KEY_BYTES) {
    throw new TypeError(`an S3 key must be at most ${MAX_S3_KEY_BYTES} bytes`);
  }
  if (key.split("/").some((segment) => segment === "." || segment === "..")) {
    throw new TypeError("an S3 key must not have a '.' or '..' segment");
  }
}

/** Refuses a part number outside 1-MAX_S3_PART_NUMBER. */
function checkPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_S3_PART_NUMBER) {
    throw new RangeError(`a part number must be 1-${MAX_S3_PART_NUMBER}, not ${partNumber}`);
  }
}
