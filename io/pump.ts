/**
 * Moves exactly N bytes from a source to a consumer, reading the next chunk
 * while the consumer handles the previous one: with two buffers, the disk or
 * the socket on one side never waits for the other side to finish. The
 * buffers come from a pool, so memory does not grow with the number of
 * transfers or the size of files.
 *
 * @module
 */

import type { ByteSource } from "../protocol/frames.ts";
import {
  DATA_CHUNK_BYTES,
  FALLBACK_CHUNK_BYTES,
  MIN_POOLED_FILE_BYTES,
  POOLED_BUFFER_PAIRS,
} from "../protocol/limits.ts";

/** Two buffers lent to one transfer, and how to give them back. */
export interface BufferPair {
  /** The two buffers: one is read into while the other is consumed. */
  buffers: [Uint8Array, Uint8Array];
  /** Gives the buffers back to the pool (once; later calls do nothing). */
  release(): void;
}

/**
 * Data buffers shared by every transfer in a process, so that memory stays
 * bounded however many transfers run at once: a transfer borrows a pair of
 * `bufferBytes` buffers while one is free, and never waits for one. When all
 * `maxPairs` are lent out, or the file is under `minPooledBytes`, it gets a
 * pair of its own, no larger than `fallbackBytes` (or the file). Pooled
 * buffers are in shared memory, so that a hash thread can read a chunk
 * where it is (io/hash_threads.ts).
 *
 * @example
 * ```ts
 * import { BufferPool } from "./pump.ts";
 * const pool = new BufferPool({
 *   maxPairs: 1,
 *   bufferBytes: 1024,
 *   fallbackBytes: 16,
 *   minPooledBytes: 4096,
 * });
 * const first = pool.borrow(10_000);
 * const second = pool.borrow(10_000);
 * console.assert(first.buffers[0].length === 1024 && second.buffers[0].length === 16);
 * first.release();
 * second.release();
 * ```
 */
export class BufferPool {
  readonly #maxPairs: number;
  readonly #bufferBytes: number;
  readonly #fallbackBytes: number;
  readonly #minPooledBytes: number;
  readonly #free: [Uint8Array, Uint8Array][] = [];
  #lent = 0;
  /**
   * Pairs allocated by this pool, or by every pool sharing the count
   * ({@link shareAllocations}); and whether a pool was refused one since a
   * pair was last given up.
   */
  #allocation: Int32Array<ArrayBufferLike> = new Int32Array(2);

  /**
   * A pool lending at most `maxPairs` pairs of `bufferBytes` buffers to
   * transfers of `minPooledBytes` or more; others get `fallbackBytes` of their own.
   */
  constructor(
    options: {
      maxPairs: number;
      bufferBytes: number;
      fallbackBytes: number;
      minPooledBytes: number;
    },
  ) {
    this.#maxPairs = options.maxPairs;
    this.#bufferBytes = options.bufferBytes;
    this.#fallbackBytes = options.fallbackBytes;
    this.#minPooledBytes = options.minPooledBytes;
  }

  /**
   * Counts the pairs allocated in `buffer` ({@link SHARED_ALLOCATION_BYTES},
   * zeros at first) with every pool, in any thread, that shares it: together
   * they allocate at most `maxPairs`. A pool refused a pair makes the next
   * pair given back anywhere be freed rather than kept, so that pairs idle
   * in one pool go where they are wanted. Call it before the first {@link borrow}.
   */
  shareAllocations(buffer: SharedArrayBuffer): void {
    this.#allocation = new Int32Array(buffer, 0, 2);
  }

  /** Buffers for moving `size` bytes. */
  borrow(size: number): BufferPair {
    const buffers = size >= this.#minPooledBytes && this.#lent < this.#maxPairs
      ? this.#free.pop() ?? this.#allocate()
      : null;
    if (buffers !== null) {
      this.#lent += 1;
      let returned = false;
      return {
        buffers,
        release: () => {
          if (returned) return;
          returned = true;
          this.#lent -= 1;
          if (Atomics.exchange(this.#allocation, 1, 0) === 0) this.#free.push(buffers);
          else Atomics.sub(this.#allocation, 0, 1); // Wanted elsewhere: freed.
        },
      };
    }
    const bytes = Math.max(1, Math.min(size, this.#fallbackBytes));
    return { buffers: [new Uint8Array(bytes), new Uint8Array(bytes)], release: () => {} };
  }

  /** A new pair of pooled buffers, or null when the pools sharing the count have allocated them all. */
  #allocate(): [Uint8Array, Uint8Array] | null {
    if (Atomics.add(this.#allocation, 0, 1) >= this.#maxPairs) {
      Atomics.sub(this.#allocation, 0, 1);
      Atomics.store(this.#allocation, 1, 1);
      return null;
    }
    return [sharedBytes(this.#bufferBytes), sharedBytes(this.#bufferBytes)];
  }
}

/** Bytes of the shared memory {@link BufferPool.shareAllocations} takes. */
export const SHARED_ALLOCATION_BYTES = 2 * Int32Array.BYTES_PER_ELEMENT;

/** `bytes` zeroed bytes in memory that other threads can be given. */
function sharedBytes(bytes: number): Uint8Array {
  return new Uint8Array(new SharedArrayBuffer(bytes));
}

/** The process's pool, sized by {@link DATA_CHUNK_BYTES}, {@link POOLED_BUFFER_PAIRS} and {@link FALLBACK_CHUNK_BYTES}. */
export const DATA_BUFFERS: BufferPool = new BufferPool({
  maxPairs: POOLED_BUFFER_PAIRS,
  bufferBytes: DATA_CHUNK_BYTES,
  fallbackBytes: FALLBACK_CHUNK_BYTES,
  minPooledBytes: MIN_POOLED_FILE_BYTES,
});

/**
 * Reads exactly `size` bytes from `source` and hands them to `onChunk` in
 * order; each chunk stays valid until its `onChunk` settles. Throws
 * `onShort(missingBytes)` if the source ends early.
 *
 * @example
 * ```ts
 * import { pumpExactly } from "./pump.ts";
 * let sent = false;
 * const source = {
 *   read(buffer: Uint8Array) {
 *     if (sent) return Promise.resolve(null);
 *     sent = true;
 *     buffer.set([1, 2, 3]);
 *     return Promise.resolve(3);
 *   },
 * };
 * let total = 0;
 * await pumpExactly(source, 3, (chunk) => {
 *   total += chunk.length;
 * }, (missing) => new Error(`${missing} missing`));
 * console.assert(total === 3);
 * ```
 */
export async function pumpExactly(
  source: ByteSource,
  size: number,
  onChunk: (chunk: Uint8Array) => void | Promise<void>,
  onShort: (missingBytes: number) => Error,
  pool: BufferPool = DATA_BUFFERS,
): Promise<void> {
  if (size === 0) return;
  const pair = pool.borrow(size);
  const [first, second] = pair.buffers;
  let remaining = size;
  const readInto = (buffer: Uint8Array) =>
    source.read(buffer.subarray(0, Math.min(remaining, buffer.length)));
  let reading: Promise<number | null> | null = readInto(first);
  let consuming: Promise<void> = Promise.resolve();
  try {
    for (let turn = 0; reading !== null; turn ^= 1) {
      const buffer = turn === 0 ? first : second;
      const n = await reading;
      reading = null;
      if (n === null) {
        await consuming;
        throw onShort(remaining);
      }
      remaining -= n;
      // The consumer is done with the other buffer: the next read goes there,
      // and runs while this chunk is consumed (hashing is synchronous work).
      await consuming;
      if (remaining > 0) reading = readInto(turn === 0 ? second : first);
      consuming = Promise.resolve(onChunk(buffer.subarray(0, n)));
      // It may fail while the next read is awaited: handled here, thrown where it is awaited.
      consuming.catch(() => {});
    }
    await consuming;
  } finally {
    // A failed consumer may still run, a read may still fill a buffer: wait
    // for both before lending the buffers again.
    await consuming.catch(() => {});
    await reading?.catch(() => {});
    pair.release();
  }
}
