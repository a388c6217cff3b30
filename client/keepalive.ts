/**
 * Keeps an idle session open: while the shell waits for the next command,
 * a `ping` goes to the server at a fraction of its idle timeout, so that
 * a session left at the prompt is still there when the user comes back.
 *
 * @module
 */

/** A ping goes out after this fraction of the server's idle timeout without a request. */
export const KEEPALIVE_FRACTION = 0.4;

/** The shortest wait between pings, in milliseconds, whatever the server's idle timeout. */
export const MIN_KEEPALIVE_MS = 200;

/**
 * Pings on a timer while resumed; {@link pause} stops it and waits for a
 * ping in flight, so that the command after it has the connection to itself.
 *
 * @example
 * ```ts
 * import { Keepalive } from "./keepalive.ts";
 * let pings = 0;
 * const keepalive = new Keepalive(1000, () => Promise.resolve(void pings++));
 * keepalive.resume();
 * await keepalive.pause();
 * console.assert(pings === 0); // Paused before the first was due.
 * ```
 */
export class Keepalive {
  readonly #intervalMs: number | null;
  readonly #ping: () => Promise<void>;
  #timer: ReturnType<typeof setInterval> | undefined;
  #inFlight: Promise<void> = Promise.resolve();

  /** `idleTimeoutMs`: the server's (null: it takes no pings, and this does nothing). */
  constructor(idleTimeoutMs: number | null, ping: () => Promise<void>) {
    this.#intervalMs = idleTimeoutMs === null || idleTimeoutMs <= 0
      ? null
      : Math.max(MIN_KEEPALIVE_MS, Math.floor(idleTimeoutMs * KEEPALIVE_FRACTION));
    this.#ping = ping;
  }

  /** Starts pinging (the session is at rest: no command is running). */
  resume(): void {
    if (this.#intervalMs === null || this.#timer !== undefined) return;
    this.#timer = setInterval(() => {
      // A failed ping is the next command's to find and report.
      this.#inFlight = this.#inFlight.then(() => this.#ping()).catch(() => {});
    }, this.#intervalMs);
    Deno.unrefTimer(this.#timer);
  }

  /** Stops pinging and waits for a ping in flight to be answered. */
  async pause(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }
}
