/**
 * Reads and writes of a few kilobytes, done in place: handing them to a
 * thread, as an async file call does, costs more than the call itself, and
 * many small files would each wait for a thread twice. Larger ones stay
 * async, so that a slow disk holds up one transfer, not the event loop.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../protocol/frames.ts";
import { FALLBACK_CHUNK_BYTES } from "../protocol/limits.ts";

/**
 * Reading `file`, of `size` bytes: at once for a small file, else through a thread.
 *
 * @example
 * ```ts
 * import { fileSource } from "./small_file_io.ts";
 * using file = await Deno.open(Deno.execPath());
 * console.assert(fileSource(file, 10) !== file && fileSource(file, 1 << 30) === file);
 * ```
 */
export function fileSource(file: Deno.FsFile, size: number): ByteSource {
  return size <= FALLBACK_CHUNK_BYTES
    ? { read: (buffer) => Promise.resolve(file.readSync(buffer)) }
    : file;
}

/** Writing chunks of `chunkBytes` to `file`: at once when they are small, else through a thread. */
export function fileSink(file: Deno.FsFile, chunkBytes: number): ByteSink {
  return chunkBytes <= FALLBACK_CHUNK_BYTES
    ? { write: (chunk) => Promise.resolve(file.writeSync(chunk)) }
    : file;
}
