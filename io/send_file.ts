/**
 * The sending half of a verified transfer (a server's download, a client's
 * upload): the whole file is read and hashed, and only the bytes the peer
 * does not hold yet go out, so a resumed transfer is still checked against
 * the digest of the whole file.
 *
 * @module
 */

import type { ByteSource } from "../protocol/frames.ts";
import type { Digest } from "../protocol/checksum.ts";
import { digestOf, type StreamingHash } from "./checksum.ts";
import { pumpExactly } from "./pump.ts";
import { fileSource } from "./small_file_io.ts";

/** Options for {@link sendFileFrom}. */
export interface SendFileOptions {
  /**
   * Called after each chunk is read and hashed (and, past the offset,
   * handed on), with the bytes read so far out of `size`, the skipped prefix included.
   */
  onProgress?(doneBytes: number, totalBytes: number): void;
  /**
   * Called once, just before the first byte past the offset goes to the sink
   * (never when the offset is the size): the moment the peer starts waiting
   * on data, e.g. to engage a rate floor.
   */
  onSendStart?(): void;
  /**
   * The error thrown when the source ends `missingBytes` before `size`.
   *
   * @default {(missing) => new Error(`file shrank by ${missing} bytes while being sent`)}
   */
  onShrink?(missingBytes: number): Error;
}

/** What {@link sendFileFrom} computed. */
export interface SentFile {
  /** The digest of all `size` bytes, offset or not. */
  digest: Digest;
}

/**
 * Reads exactly `size` bytes of `source`, hashes all of them into `hash` (a
 * fresh one), and hands `sink` only those past `offset`, in order. A `Deno.FsFile` of a few
 * kilobytes is read in place ({@link fileSource}). A chunk is only valid
 * until its `sink` call settles. Throws `onShrink` if the source ends early,
 * and whatever `sink` throws (the peer is then out of step: close it).
 *
 * @example
 * ```ts
 * import { createStreamingHash } from "./checksum.ts";
 * import { sendFileFrom } from "./send_file.ts";
 * const bytes = new TextEncoder().encode("abc");
 * let done = false;
 * const source = {
 *   read(buffer: Uint8Array) {
 *     if (done) return Promise.resolve(null);
 *     done = true;
 *     buffer.set(bytes);
 *     return Promise.resolve(bytes.length);
 *   },
 * };
 * const sent: number[] = [];
 * const hash = await createStreamingHash("sha256");
 * const { digest } = await sendFileFrom(source, 3, 1, (chunk) => {
 *   sent.push(...chunk);
 *   return Promise.resolve();
 * }, hash);
 * console.assert(sent.join() === "98,99"); // "bc": the peer already holds "a"
 * console.assert(digest.hex.startsWith("ba7816bf")); // SHA-256 of "abc"
 * ```
 */
export async function sendFileFrom(
  source: ByteSource | Deno.FsFile,
  size: number,
  offset: number,
  sink: (chunk: Uint8Array) => Promise<void>,
  hash: StreamingHash,
  options: SendFileOptions = {},
): Promise<SentFile> {
  if (!Number.isSafeInteger(offset) || offset < 0 || offset > size) {
    throw new RangeError(`offset ${offset} is outside a file of ${size} bytes`);
  }
  const { onProgress, onSendStart } = options;
  const onShrink = options.onShrink ??
    ((missing: number) => new Error(`file shrank by ${missing} bytes while being sent`));
  const input = source instanceof Deno.FsFile ? fileSource(source, size) : source;
  let position = 0;
  let sending = false;
  await pumpExactly(input, size, async (chunk) => {
    hash.update(chunk);
    if (position + chunk.length > offset) {
      if (!sending) {
        sending = true;
        onSendStart?.();
      }
      await sink(chunk.subarray(Math.max(0, offset - position)));
    }
    position += chunk.length;
    onProgress?.(position, size);
  }, onShrink);
  return { digest: digestOf(hash) };
}
