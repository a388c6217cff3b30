/**
 * The client's deadline on a silent server: a connection whose reads and
 * writes fail once nothing has moved for a while as the client waits on the
 * server. The clock restarts whenever a byte arrives or is taken, so a long
 * transfer never times out while its data flows.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../protocol/frames.ts";

/**
 * How long the client waits without a byte moving before it gives up on the
 * server: twice the server's default idle timeout (5 minutes), because an
 * honest server may go quiet for minutes while it hashes a large file for
 * `stat` or checks a resumed upload; `--reply-timeout` changes it.
 */
export const REPLY_TIMEOUT_MS = 10 * 60 * 1000;

/** Wraps a connection so that waiting on it is bounded by a deadline reset by progress. */
export class ReplyDeadline implements ByteSource, ByteSink {
  readonly #conn: Pick<Deno.Conn, "read" | "write" | "close">;
  readonly #timeoutMs: number;
  /** Reads and writes now waiting on the server. */
  #waiting = 0;
  /** When a byte last moved, or a wait began with nothing waiting before it. */
  #lastProgressMs = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #expired: "read" | "write" | null = null;
  #lastWait: "read" | "write" = "read";

  /** Wraps `conn`; `timeoutMs` is how long nothing may move, in milliseconds. */
  constructor(
    conn: Pick<Deno.Conn, "read" | "write" | "close">,
    timeoutMs: number = REPLY_TIMEOUT_MS,
  ) {
    this.#conn = conn;
    this.#timeoutMs = timeoutMs;
  }

  /** The deadline passed and the connection was closed for it. */
  get expired(): boolean {
    return this.#expired !== null;
  }

  /** Why the connection was closed, for an error message; null while the deadline holds. */
  get expiredMessage(): string | null {
    if (this.#expired === null) return null;
    const seconds = this.#timeoutMs / 1000;
    return this.#expired === "read"
      ? `the server sent nothing for ${seconds} s (--reply-timeout); the session was closed`
      : `the server took nothing for ${seconds} s (--reply-timeout); the session was closed`;
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    this.#begin("read");
    try {
      const n = await this.#conn.read(buffer);
      if (n !== null && n > 0) this.#lastProgressMs = performance.now();
      return n;
    } finally {
      this.#waiting -= 1;
    }
  }

  async write(bytes: Uint8Array): Promise<number> {
    this.#begin("write");
    try {
      const n = await this.#conn.write(bytes);
      if (n > 0) this.#lastProgressMs = performance.now();
      return n;
    } finally {
      this.#waiting -= 1;
    }
  }

  /** Stops the clock for good (the connection is being closed). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #begin(kind: "read" | "write"): void {
    // Time spent on our own side (writing a file, waiting for the user) is not the server's.
    if (this.#waiting === 0) this.#lastProgressMs = performance.now();
    this.#waiting += 1;
    this.#lastWait = kind;
    this.#arm(this.#timeoutMs);
  }

  /** One timer at most, re-armed when it fires early; it never keeps the process alive. */
  #arm(delayMs: number): void {
    if (this.#timer !== undefined || this.#expired !== null) return;
    const timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#waiting === 0) return;
      const quietMs = performance.now() - this.#lastProgressMs;
      if (quietMs < this.#timeoutMs) {
        this.#arm(this.#timeoutMs - quietMs);
        return;
      }
      this.#expired = this.#lastWait;
      try {
        this.#conn.close();
      } catch {
        // Already closed.
      }
    }, Math.max(0, delayMs));
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }
}
