/**
 * The raw data that follows a control frame (an upload's file bytes, a
 * download's): exactly the announced number of bytes, whatever came in with
 * the frame first, then straight from the connection into data buffers.
 *
 * @module
 */

import { ProtocolError } from "../protocol/errors.ts";
import type { FrameReader } from "../protocol/frames.ts";
import { pumpExactly } from "./pump.ts";

/**
 * Reads exactly `size` raw bytes after the last frame `reader` returned,
 * handing them on in chunks as they arrive; a chunk is only valid until its
 * `onChunk` settles. Never asks the connection for more than remains, so the
 * next frame stays where `reader` will find it.
 *
 * @example
 * ```ts
 * import { FrameReader } from "../protocol/frames.ts";
 * import { readData } from "./read_data.ts";
 * const bytes = new Uint8Array([1, 2, 3]);
 * let offset = 0;
 * const reader = new FrameReader({
 *   read(buffer: Uint8Array) {
 *     if (offset === bytes.length) return Promise.resolve(null);
 *     buffer[0] = bytes[offset++]!;
 *     return Promise.resolve(1);
 *   },
 * });
 * let total = 0;
 * await readData(reader, 3, (chunk) => void (total += chunk.length));
 * console.assert(total === 3);
 * ```
 */
export async function readData(
  reader: FrameReader,
  size: number,
  onChunk: (chunk: Uint8Array) => void | Promise<void>,
): Promise<void> {
  if (!Number.isSafeInteger(size) || size < 0) {
    throw new ProtocolError(`a data length must be a non-negative integer, not ${size}`);
  }
  const buffered = reader.takeBuffered(size);
  if (buffered !== null) await onChunk(buffered);
  const remaining = size - (buffered?.length ?? 0);
  if (remaining === 0) return;
  await pumpExactly(
    reader.source,
    remaining,
    onChunk,
    (missing) => new ProtocolError(`connection closed with ${missing} bytes of data still due`),
  );
}
