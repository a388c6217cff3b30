/**
 * Moves exactly N bytes from a source to a consumer, reading the next chunk
 * while the consumer handles the previous one: with two buffers, the disk or
 * the socket on one side never waits for the other side to finish.
 *
 * @module
 */

import type { ByteSource } from "./frames.ts";
import { DATA_CHUNK_BYTES } from "./limits.ts";

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
  chunkBytes = DATA_CHUNK_BYTES,
): Promise<void> {
  if (size === 0) return;
  const bufferBytes = Math.min(size, chunkBytes);
  const buffers = [new Uint8Array(bufferBytes), new Uint8Array(bufferBytes)];
  let remaining = size;
  let consuming: Promise<void> = Promise.resolve();
  for (let turn = 0; remaining > 0; turn ^= 1) {
    const buffer = buffers[turn]!;
    // The consumer may still hold the other buffer; this one is free.
    const n = await source.read(buffer.subarray(0, Math.min(remaining, buffer.length)));
    if (n === null) {
      await consuming;
      throw onShort(remaining);
    }
    remaining -= n;
    await consuming;
    consuming = Promise.resolve(onChunk(buffer.subarray(0, n)));
  }
  await consuming;
}
