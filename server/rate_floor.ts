/**
 * A minimum transfer rate for one connection's data phases. The idle timeout
 * restarts on every byte, so a peer that moves one byte every few seconds
 * would hold its connection slot for ever; the floor closes a transfer whose
 * bytes over the last full window fall below the rate.
 *
 * @module
 */

/** Options for {@link RateFloor}. */
export interface RateFloorOptions {
  /** The least bytes per second a data phase must move; 0 turns the floor off. */
  minBytesPerSecond: number;
  /** The window the rate is measured over, in milliseconds. */
  windowMs: number;
  /** Called once, with the rate measured over the window, when a window falls short. */
  onSlow(bytesPerSecond: number): void;
}

/**
 * Counts the bytes a connection moves and, while engaged, checks them once
 * per window. A read or write costs one addition ({@link RateFloor.count});
 * the only timer is one per window, and only during a data phase.
 *
 * @example
 * ```ts
 * import { RateFloor } from "./rate_floor.ts";
 * const floor = new RateFloor({
 *   minBytesPerSecond: 1024,
 *   windowMs: 30_000,
 *   onSlow: (rate) => console.log(`slow: ${rate} B/s`),
 * });
 * floor.engage();
 * floor.count(4096); // From the connection's reads and writes.
 * floor.disengage();
 * ```
 */
export class RateFloor {
  readonly #minBytesPerWindow: number;
  readonly #windowMs: number;
  readonly #onSlow: (bytesPerSecond: number) => void;
  #bytes = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Engage at the next byte counted: a control frame is measured from its first byte. */
  #armed = false;

  /** A floor, disengaged until {@link RateFloor.engage} or {@link RateFloor.engageAtNextByte}. */
  constructor(options: RateFloorOptions) {
    this.#minBytesPerWindow = options.minBytesPerSecond * options.windowMs / 1000;
    this.#windowMs = options.windowMs;
    this.#onSlow = options.onSlow;
  }

  /** Adds bytes moved on the connection; counted whether engaged or not, checked only when engaged. */
  count(bytes: number): void {
    this.#bytes += bytes;
    if (this.#armed && bytes > 0) {
      this.#armed = false;
      this.engage();
      this.#bytes = bytes;
    }
  }

  /**
   * Engages at the next byte counted, not now: used while waiting for a
   * request, so that a peer silent between requests is left to the idle
   * timeout, while one that trickles the bytes of a request is measured
   * from the first of them.
   */
  engageAtNextByte(): void {
    if (this.#minBytesPerWindow === 0 || this.#timer !== undefined) return;
    this.#armed = true;
  }

  /** Starts measuring: a data phase begins. The first window starts now. */
  engage(): void {
    if (this.#minBytesPerWindow === 0 || this.#timer !== undefined) return;
    this.#bytes = 0;
    this.#timer = setInterval(() => this.#checkWindow(), this.#windowMs);
  }

  /** Stops measuring: the data phase is over (or failed). Safe to call when not engaged. */
  disengage(): void {
    this.#armed = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #checkWindow(): void {
    const bytes = this.#bytes;
    this.#bytes = 0;
    if (bytes >= this.#minBytesPerWindow) return;
    this.disengage();
    this.#onSlow(Math.floor(bytes * 1000 / this.#windowMs));
  }
}
