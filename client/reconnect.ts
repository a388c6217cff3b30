/**
 * Getting a session back after its connection dropped: new connections to
 * the same server with the same token and TLS trust (the context's
 * `reopen`), tried with back-off, then the remote directory checked on the
 * new one, so that the session goes on where it was.
 *
 * @module
 */

import type { FtsConnection } from "./connection.ts";
import type { CommandContext } from "./context.ts";
import { ConnectionError, RefusedError, RemoteError } from "./errors.ts";
import { InterruptedError } from "./interruption.ts";
import { shownRemote } from "./remote_path.ts";

/** Connections tried before giving up: enough to ride out a server restart. */
export const RECONNECT_ATTEMPTS = 8;

/** The wait before the first attempt: a server that closed a connection keeps what it held by then. */
export const RECONNECT_FIRST_WAIT_MS = 250;

/** The longest wait between attempts: the wait doubles from the first up to this. */
export const RECONNECT_MAX_WAIT_MS = 5_000;

/**
 * All attempts, waits included, fit in this window: a session whose server
 * is gone for longer says so rather than leave the user waiting.
 * (0.25 + 0.5 + 1 + 2 + 4 + 5 + 5 + 5 s of waits leave each attempt time.)
 */
export const RECONNECT_WINDOW_MS = 30_000;

/** What {@link reconnect} brought back. */
export interface Reconnected {
  /** Connections tried, the one that worked included. */
  attempts: number;
  /**
   * The remote directory the session was in, when it is gone or no longer
   * a directory: the session is then at the top. Null when it was restored.
   */
  lostDir: string | null;
}

/**
 * Ctrl-C while the session waited to reconnect: the session is over, and
 * the message says how to continue what the command was doing.
 *
 * @example
 * ```ts
 * import { ReconnectStoppedError } from "./reconnect.ts";
 * const err = new ReconnectStoppedError("get --resume a a");
 * console.assert(err.message === "Interrupt: stopped reconnecting; to continue where it stopped: get --resume a a");
 * console.assert(err.code === "INTERRUPTED");
 * ```
 */
export class ReconnectStoppedError extends InterruptedError {
  /** `resumeCommand` continues the transfer the drop broke off; null when there was none. */
  constructor(resumeCommand: string | null, options?: ErrorOptions) {
    super(resumeCommand, "stopped reconnecting", options);
    this.name = "ReconnectStoppedError";
  }
}

/**
 * The wait before attempt `attempt` (1 is the first): doubling, capped.
 *
 * @example
 * ```ts
 * import { reconnectWaitMs } from "./reconnect.ts";
 * console.assert(reconnectWaitMs(1) === 250 && reconnectWaitMs(2) === 500);
 * console.assert(reconnectWaitMs(8) === 5000);
 * ```
 */
export function reconnectWaitMs(attempt: number): number {
  return Math.min(RECONNECT_MAX_WAIT_MS, RECONNECT_FIRST_WAIT_MS * 2 ** (attempt - 1));
}

/**
 * Replaces `context.connection`, which dropped (`lost` says how), with a new one and checks
 * that the remote directory is still there. Tries up to
 * {@link RECONNECT_ATTEMPTS} times within {@link RECONNECT_WINDOW_MS},
 * waiting {@link reconnectWaitMs} before each; a refusal
 * ({@link RefusedError}: the token revoked, the certificate changed) ends
 * it at once. Throws a {@link ConnectionError} saying how the connection was
 * lost and that reconnecting failed, or, when
 * `signal` is aborted (Ctrl-C), a {@link ReconnectStoppedError}.
 * `onRetrying` is called once, when the first attempt has failed.
 */
export async function reconnect(
  context: CommandContext,
  lost: ConnectionError,
  signal: AbortSignal,
  resumeCommand: string | null,
  onRetrying: () => void = () => {},
): Promise<Reconnected> {
  const reopen = context.reopen;
  if (reopen === undefined) throw lost;
  context.connection.close();
  const started = performance.now();
  let last: unknown = null;
  let attempts = 0;
  try {
    while (attempts < RECONNECT_ATTEMPTS) {
      const wait = reconnectWaitMs(attempts + 1);
      const left = RECONNECT_WINDOW_MS - (performance.now() - started) - wait;
      if (left <= 0) break;
      await pause(wait, signal);
      attempts += 1;
      let connection: FtsConnection;
      try {
        connection = await withinTime(reopen(), left, signal);
      } catch (err) {
        if (signal.aborted) throw err;
        if (err instanceof RefusedError) {
          throw new RefusedError(`${lost.message}; reconnecting was refused: ${err.message}`, {
            cause: err,
          });
        }
        last = err;
        // The first attempt is quick; beyond it the wait can be long, so it is not silent.
        if (attempts === 1) onRetrying();
        continue;
      }
      try {
        const lostDir = await restoreDirectory(connection, context.remoteDir);
        context.connection = connection;
        if (lostDir !== null) context.remoteDir = "";
        return { attempts, lostDir };
      } catch (err) {
        connection.close();
        if (signal.aborted) throw err;
        last = err;
      }
    }
  } catch (err) {
    if (signal.aborted) throw new ReconnectStoppedError(resumeCommand, { cause: err });
    throw err;
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const why = last instanceof Error ? `: ${last.message}` : "";
  throw new ConnectionError(
    `${lost.message}; could not reconnect (${attempts} attempts in ${seconds} s)${why}`,
    { cause: last },
  );
}

/**
 * Null when `dir` ("" is the top) is a directory on `connection`; `dir`
 * when it is gone or not a directory. A failure of the connection is thrown.
 */
async function restoreDirectory(connection: FtsConnection, dir: string): Promise<string | null> {
  if (dir === "") return null;
  try {
    return (await connection.stat(dir)).type === "dir" ? null : shownRemote(dir);
  } catch (err) {
    if (err instanceof RemoteError) return shownRemote(dir);
    throw err;
  }
}

/** Waits `ms`; rejects at once when `signal` is aborted. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * What `opening` resolves with, unless `ms` pass first or `signal` is
 * aborted: then it rejects, and a connection that opens afterwards is closed.
 */
async function withinTime(
  opening: Promise<FtsConnection>,
  ms: number,
  signal: AbortSignal,
): Promise<FtsConnection> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort = () => {};
  const stopped = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new ConnectionError(`no connection within ${(ms / 1000).toFixed(1)} s`)),
      ms,
    );
    onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  try {
    return await Promise.race([opening, stopped]);
  } catch (err) {
    opening.then((connection) => connection.close(), () => {});
    throw err;
  } finally {
    clearTimeout(timer);
    signal.removeEventListener("abort", onAbort);
  }
}
