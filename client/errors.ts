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
import type { ReplyError, ReplyOp } from "../protocol/messages.ts";
import { ConnectionError, OutOfStepError, RefusedError } from "./transport.ts";

export { ConnectionError, OutOfStepError, RefusedError };

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

/** This client's advice for an `EXISTS` it can override: `put --force`, `rename --force`. */
const OVERWRITE_ADVICE = "(use --force to overwrite)";

/** The ops whose `EXISTS` a command's `--force` overrides (mkdir has no `--force`). */
const OVERWRITABLE_OPS: ReadonlySet<ReplyOp> = new Set(["upload", "rename"]);

/**
 * The {@link RemoteError} for an error reply to `op`, with this client's
 * advice added: an `EXISTS` for an upload or a rename says how to
 * overwrite, unless the server's message already does.
 *
 * @example
 * ```ts
 * import { remoteErrorFor } from "./errors.ts";
 * const err = remoteErrorFor("rename", { code: "EXISTS", message: "\"b\" already exists" });
 * console.assert(err.message === "\"b\" already exists (use --force to overwrite)");
 * console.assert(remoteErrorFor("mkdir", { code: "EXISTS", message: "taken" }).message === "taken");
 * ```
 */
export function remoteErrorFor(op: ReplyOp, error: ReplyError): RemoteError {
  const { code, message } = error;
  const advised = code === "EXISTS" && OVERWRITABLE_OPS.has(op) && !message.includes("--force");
  return new RemoteError(code, advised ? `${message} ${OVERWRITE_ADVICE}` : message);
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

/**
 * Whether `err` is a connection lost in a way a new connection may mend:
 * reset, closed, silent past the reply deadline; not a refusal
 * ({@link RefusedError}) or a protocol broken ({@link OutOfStepError}),
 * which the same server would repeat.
 *
 * @example
 * ```ts
 * import { ConnectionError, mayReconnectAfter, RefusedError } from "./errors.ts";
 * console.assert(mayReconnectAfter(new ConnectionError("the server closed the connection")));
 * console.assert(!mayReconnectAfter(new RefusedError("the token was not accepted")));
 * ```
 */
export function mayReconnectAfter(err: unknown): boolean {
  return err instanceof ConnectionError && !(err instanceof RefusedError) &&
    !(err instanceof OutOfStepError);
}

/**
 * `err` with `hint` added to its message, of the same class (a
 * {@link ConnectionError} stays what kind it was).
 */
export function withHint(err: ConnectionError, hint: string): ConnectionError {
  const kind = err.constructor as typeof ConnectionError;
  return new kind(`${err.message}; ${hint}`, { cause: err });
}
