/**
 * Whether more input is already waiting on a connection, asked without
 * waiting for any: a group of received files is committed when none is
 * (./commit_group.ts), so a group never waits for the network to fill it.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import type { ByteSource } from "../protocol/frames.ts";

/**
 * Most bytes one look ahead reads: a few small requests and their data, so
 * the bytes it holds are handed on in a few copies at most.
 */
export const READ_AHEAD_BYTES = 64 * 1024;

/**
 * A byte source that can say whether bytes are waiting ({@link waiting}).
 * Deno cannot ask a socket how much it holds, so the question is a read:
 * started now, it completes within one turn of the event loop when the
 * kernel already holds bytes, and stays pending otherwise. A pending read
 * is kept, and the next {@link read} takes what it brings; bytes read ahead
 * are handed on in order before anything else is read. Reads that find
 * nothing held go straight to the source, without a copy.
 *
 * @example
 * ```ts
 * import { ReadAhead } from "./read_ahead.ts";
 * let sent = false;
 * const ahead = new ReadAhead({
 *   read(buffer) {
 *     if (sent) return new Promise(() => {}); // the peer says nothing more
 *     sent = true;
 *     buffer.set([1, 2, 3]);
 *     return Promise.resolve(3);
 *   },
 * });
 * console.assert(await ahead.waiting() === true);
 * const buffer = new Uint8Array(8);
 * console.assert(await ahead.read(buffer) === 3 && buffer[2] === 3);
 * console.assert(await ahead.waiting() === false); // without waiting for the peer
 * ```
 */
export class ReadAhead implements ByteSource {
  readonly #source: ByteSource;
  #buffer: Uint8Array | null = null;
  /** Bytes read ahead and not yet handed on. */
  #held: Uint8Array | null = null;
  /** The look-ahead read, while it has not completed. */
  #pending: Promise<void> | null = null;
  /** The look-ahead read found the end of the stream: the next read returns null. */
  #ended = false;
  /** The look-ahead read failed: the next read throws this. */
  #failure: { error: unknown } | null = null;

  /** Wraps `source`. */
  constructor(source: ByteSource) {
    this.#source = source;
  }

  /** Reads into `buffer`: first what was read ahead, then from the source. */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (this.#pending !== null) await this.#pending;
    if (this.#held !== null) {
      const count = Math.min(buffer.length, this.#held.length);
      buffer.set(this.#held.subarray(0, count));
      this.#held = count === this.#held.length ? null : this.#held.subarray(count);
      return count;
    }
    if (this.#failure !== null) {
      const { error } = this.#failure;
      this.#failure = null;
      throw error;
    }
    if (this.#ended) return null;
    return await this.#source.read(buffer);
  }

  /**
   * Whether bytes are waiting to be read now: held from an earlier look, or
   * arriving within one turn of the event loop. Never waits for the peer;
   * false at the end of the stream or after a failure (the next read says
   * which).
   */
  async waiting(): Promise<boolean> {
    if (this.#held !== null) return true;
    if (this.#ended || this.#failure !== null) return false;
    this.#pending ??= this.#lookAhead();
    await Promise.race([this.#pending, nextTurn()]);
    return this.#held !== null;
  }

  /** Starts the look-ahead read; whatever it brings is kept for {@link read}. */
  #lookAhead(): Promise<void> {
    const buffer = this.#buffer ??= new Uint8Array(READ_AHEAD_BYTES);
    return this.#source.read(buffer).then(
      (count) => {
        this.#pending = null;
        if (count === null) this.#ended = true;
        else if (count > 0) this.#held = buffer.subarray(0, count);
      },
      (error) => {
        this.#pending = null;
        this.#failure = { error };
      },
    );
  }
}

/** Resolves after one turn of the event loop, once I/O that was ready has been handled. */
function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
