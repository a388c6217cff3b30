/**
 * The receiving half of a verified transfer (a server's upload, a client's
 * download): the bytes a resumed transfer already holds are hashed first,
 * then the announced data is hashed and written chunk by chunk as it
 * arrives. A failed write (a full disk) does not stop the reading: the rest
 * of the data is read and hashed, so the connection stays in step and the
 * failure becomes a reply instead of a broken session.
 *
 * @module
 */

import { type FrameReader, writeAll } from "../protocol/frames.ts";
import { pumpExactly } from "./pump.ts";
import { readData } from "./read_data.ts";
import type { StreamingHash } from "./checksum.ts";
import { fileSink, fileSource } from "./small_file_io.ts";

/** Options for {@link receiveData}. */
export interface ReceiveDataOptions {
  /**
   * Called as each chunk arrives, before it is written, with the bytes
   * received so far out of `bytes` (add a resumed transfer's held bytes to
   * report progress through the whole file).
   */
  onProgress?(receivedBytes: number, totalBytes: number): void;
}

/** How the writing went in {@link receiveData}: the reading always completed. */
export interface ReceivedData {
  /** The first error the sink threw (no later chunk was written), or null if every write succeeded. */
  writeFailure: unknown;
}

/**
 * Reads exactly `bytes` raw bytes after the last frame of `reader`
 * ({@link readData}), feeds each chunk to `hash`, and writes it to `sink`
 * unless an earlier write failed; after a failure it goes on reading and
 * hashing, and returns the failure for the caller to throw once the peer's
 * trailer or reply has been read. A `null` sink drops the bytes (hashing
 * them still): for a destination that could not be opened. A chunk is only
 * valid until its `sink` call settles. Throws only when the connection
 * fails (then it is out of step).
 *
 * @example
 * ```ts
 * import { FrameReader } from "../protocol/frames.ts";
 * import { createStreamingHash } from "./checksum.ts";
 * import { receiveData } from "./receive_data.ts";
 * const bytes = new TextEncoder().encode("abc");
 * let offset = 0;
 * const reader = new FrameReader({
 *   read(buffer: Uint8Array) {
 *     if (offset === bytes.length) return Promise.resolve(null);
 *     buffer[0] = bytes[offset++]!;
 *     return Promise.resolve(1);
 *   },
 * });
 * const hash = await createStreamingHash("sha256");
 * const { writeFailure } = await receiveData(reader, 3, () => {
 *   return Promise.reject(new Error("disk full"));
 * }, hash);
 * console.assert((writeFailure as Error).message === "disk full");
 * console.assert(hash.hex().startsWith("ba7816bf")); // all of "abc" was read and hashed
 * ```
 */
export async function receiveData(
  reader: FrameReader,
  bytes: number,
  sink: ((chunk: Uint8Array) => Promise<void>) | null,
  hash: StreamingHash,
  options: ReceiveDataOptions = {},
): Promise<ReceivedData> {
  const { onProgress } = options;
  let writeFailure: unknown = null;
  let failed = sink === null;
  let received = 0;
  await readData(reader, bytes, async (chunk) => {
    hash.update(chunk);
    received += chunk.length;
    onProgress?.(received, bytes);
    if (failed) return;
    try {
      await sink!(chunk);
    } catch (err) {
      failed = true;
      writeFailure = err;
    }
  });
  return { writeFailure };
}

/**
 * A sink for {@link receiveData} that writes each chunk whole to `file` at
 * its position: in place for a small chunk, else through a thread ({@link fileSink}).
 *
 * @example
 * ```ts
 * import { writeToFile } from "./receive_data.ts";
 * const path = await Deno.makeTempFile();
 * using file = await Deno.open(path, { write: true });
 * await writeToFile(file)(new Uint8Array([0, 1, 0]));
 * console.assert((await Deno.readFile(path)).join() === "0,1,0");
 * await Deno.remove(path);
 * ```
 */
export function writeToFile(file: Deno.FsFile): (chunk: Uint8Array) => Promise<void> {
  return (chunk) => writeAll(fileSink(file, chunk.length), chunk);
}

/** Options for {@link hashHeldPrefix}. */
export interface HashHeldPrefixOptions {
  /**
   * The error thrown when the file ends `missingBytes` before `bytes`.
   *
   * @default {(missing) => new Error(`held file shrank by ${missing} bytes while being read`)}
   */
  onShrink?(missingBytes: number): Error;
}

/**
 * Feeds the first `bytes` of a file to `hash`: the part a resumed transfer
 * already holds, which counts towards the whole file's digest before the
 * rest arrives. Given a path, it opens and closes the file itself; given an
 * open file, it reads from the file's current position and leaves the
 * position `bytes` further on. Throws `onShrink` if the file is shorter.
 *
 * @example
 * ```ts
 * import { createStreamingHash } from "./checksum.ts";
 * import { hashHeldPrefix } from "./receive_data.ts";
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abcdef");
 * const hash = await createStreamingHash("sha256");
 * await hashHeldPrefix(path, 3, hash);
 * console.assert(hash.hex().startsWith("ba7816bf")); // SHA-256 of "abc"
 * await Deno.remove(path);
 * ```
 */
export async function hashHeldPrefix(
  file: Deno.FsFile | string,
  bytes: number,
  hash: StreamingHash,
  options: HashHeldPrefixOptions = {},
): Promise<void> {
  if (bytes === 0) return;
  const onShrink = options.onShrink ??
    ((missing: number) => new Error(`held file shrank by ${missing} bytes while being read`));
  if (typeof file === "string") {
    using opened = await Deno.open(file, { read: true });
    return await hashHeldPrefix(opened, bytes, hash, options);
  }
  await pumpExactly(fileSource(file, bytes), bytes, (chunk) => hash.update(chunk), onShrink);
}
