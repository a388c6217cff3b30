/**
 * The closed set of error codes fts speaks on the wire, and the error class
 * that carries one.
 *
 * @module
 */

/** Every error code a reply may carry. Clients branch on these, never on message text. */
export const ERROR_CODES = [
  "NOT_FOUND",
  "EXISTS",
  "BAD_NAME",
  "BAD_REQUEST",
  "INTEGRITY",
  "NO_SPACE",
  "DENIED",
  "BUSY",
  "INTERNAL",
  "VERSION",
  "TOO_LARGE",
  "NOT_EMPTY",
  "WRONG_TYPE",
  "UNSUPPORTED",
  "CHANGED",
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = typeof ERROR_CODES[number];

/** Reports whether a value is one of the known error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === "string" &&
    (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * An error with a stable code and a human message. Operation errors travel to
 * the peer as a reply; the session goes on.
 *
 * @example
 * ```ts
 * import { FtsError } from "./errors.ts";
 * const err = new FtsError("NOT_FOUND", "no such file: a.txt");
 * console.assert(err.code === "NOT_FOUND");
 * ```
 */
export class FtsError extends Error {
  /** The stable code. */
  readonly code: ErrorCode;

  /** An error with a stable `code` and a human `message`; `options.cause` keeps what led to it. */
  constructor(code: ErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FtsError";
    this.code = code;
  }
}

/**
 * A violation of the wire protocol: a bad frame, an oversize length, a message
 * out of place. The connection that sent it is closed; nobody else is affected.
 */
export class ProtocolError extends FtsError {
  /** A violation described by `message`, sent to the peer in `fatal` with `code`. */
  constructor(message: string, code: ErrorCode = "BAD_REQUEST") {
    super(code, message);
    this.name = "ProtocolError";
  }
}
