/**
 * The three ways a client operation fails, and the one place that tells them
 * apart: a {@link RemoteError} is the server's answer (the session goes on);
 * a {@link ConnectionError} is a session that broke or was closed; a
 * `ProtocolError` is a server out of step, so its session cannot go on
 * either. Everything else (a local file missing, a hash mismatch) is an
 * `FtsError` of this side, and the session goes on.
 *
 * @module
 */

import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { ConnectionError } from "./transport.ts";

export { ConnectionError };

/**
 * An error the server replied with; the session goes on.
 *
 * @example
 * ```ts
 * import { RemoteError } from "./errors.ts";
 * const err = new RemoteError("NOT_FOUND", "no such file or directory: \"a\"");
 * console.assert(err.code === "NOT_FOUND" && err.name === "RemoteError");
 * ```
 */
export class RemoteError extends FtsError {
  /** An error reply's `code` and `message`, as the server sent them. */
  constructor(code: FtsError["code"], message: string) {
    super(code, message);
    this.name = "RemoteError";
  }
}

/**
 * Whether `err` leaves a session unusable: the connection is gone, or the
 * server broke the protocol and nobody knows where its next frame starts.
 *
 * @example
 * ```ts
 * import { breaksSession, ConnectionError, RemoteError } from "./errors.ts";
 * console.assert(breaksSession(new ConnectionError("gone")));
 * console.assert(!breaksSession(new RemoteError("EXISTS", "taken")));
 * ```
 */
export function breaksSession(err: unknown): boolean {
  return err instanceof ConnectionError || err instanceof ProtocolError;
}

/**
 * The error a failed read or write on the connection reports: an operation
 * error of this side (`FtsError`, not a protocol error) and a
 * {@link ConnectionError} as they are, anything else (an OS error, a protocol
 * error) as a {@link ConnectionError} saying the connection was lost.
 *
 * @example
 * ```ts
 * import { asConnectionError, ConnectionError } from "./errors.ts";
 * console.assert(asConnectionError(new Error("reset")) instanceof ConnectionError);
 * ```
 */
export function asConnectionError(err: unknown): unknown {
  if (
    err instanceof ConnectionError || err instanceof FtsError && !(err instanceof ProtocolError)
  ) {
    return err;
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new ConnectionError(`connection lost: ${reason}`, { cause: err });
}
