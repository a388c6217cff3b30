/**
 * One error for every refusal from an S3 server: its S3 error code, which
 * callers branch on, and the HTTP status. The server's own message is kept
 * apart as data, never in `message`: it is the other side's text, for
 * whoever prints it to escape.
 */

/**
 * The S3 error codes this project branches on, and any other the server
 * sends (S3's list is open: servers add their own). Codes made here when the
 * answer had none: `NotFound`-like answers to HEAD (which has no body) are
 * given the code they mean, `InvalidResponse` is an answer that could not be
 * read, and `RequestFailed` (status 0) a request that got no answer at all.
 */
export type S3ErrorCode =
  | "NoSuchKey"
  | "NoSuchBucket"
  | "NoSuchUpload"
  | "PreconditionFailed"
  | "SignatureDoesNotMatch"
  | "InvalidAccessKeyId"
  | "AccessDenied"
  | "InvalidPart"
  | "InvalidPartOrder"
  | "EntityTooSmall"
  | "InvalidRange"
  | "InvalidResponse"
  | "RequestFailed"
  | (string & Record<never, never>);

/** Longest error code accepted from a server; a longer one is not a code and is not kept. */
const MAX_ERROR_CODE_CHARS = 64;

/** Longest server message kept; the rest is cut (an error page can be any size). */
const MAX_SERVER_MESSAGE_CHARS = 1024;

/** An S3 server refused a request, or answered it in a way that cannot be read. */
export class S3Error extends Error {
  override name = "S3Error";
  /** The S3 error code (`NoSuchKey`, `PreconditionFailed`, ...). */
  readonly code: S3ErrorCode;
  /** The HTTP status of the answer (0 when none came). */
  readonly status: number;
  /** The server's message, raw and cut to MAX_SERVER_MESSAGE_CHARS: escape it before printing. */
  readonly serverMessage: string;

  constructor(
    code: string,
    status: number,
    operation: string,
    serverMessage = "",
    options?: ErrorOptions,
  ) {
    const safeCode = /^[A-Za-z0-9.]+$/.test(code) && code.length <= MAX_ERROR_CODE_CHARS
      ? code
      : "InvalidResponse";
    super(`${operation}: ${safeCode} (HTTP ${status})`, options);
    this.code = safeCode;
    this.status = status;
    this.serverMessage = serverMessage.slice(0, MAX_SERVER_MESSAGE_CHARS);
  }
}
