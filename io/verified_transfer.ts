/**
 * Verified transfers, the stages both sides share, in one import. Every
 * transfer is checked end to end against the digest of the whole file, a
 * resumed one too, with the checksum the session negotiated
 * ({@link createStreamingHash}):
 *
 * - Sending (server download, client upload): {@link sendFileFrom} reads
 *   the whole file, hashes it, and sends only the bytes past the offset the
 *   peer holds; the digest goes in the reply or the trailer.
 * - Receiving (server upload, client download): {@link hashHeldPrefix}
 *   hashes the bytes held from before, {@link receiveData} hashes and
 *   writes the rest ({@link writeToFile}), reading on after a failed write
 *   so the stream stays in step; the digest is compared with the peer's.
 * - Publishing what was received: {@link publishFile} (fsync the file, take
 *   the name atomically, fsync the directory), or its steps
 *   {@link closeWritten} and {@link placeFile} for a caller with checks of
 *   its own between them, then {@link syncDirectory}.
 *
 * @example
 * ```ts
 * import { FrameReader } from "../protocol/frames.ts";
 * import {
 *   createStreamingHash,
 *   hashHeldPrefix,
 *   publishFile,
 *   receiveData,
 *   sendFileFrom,
 *   writeToFile,
 * } from "./verified_transfer.ts";
 *
 * // A resumed copy: the receiver holds the first 2 bytes of "abcd" already.
 * const dir = await Deno.makeTempDir();
 * const original = `${dir}/original`;
 * await Deno.writeTextFile(original, "abcd");
 * await Deno.writeTextFile(`${dir}/copy.tmp`, "ab");
 *
 * // The sender's side: the whole file hashed, bytes 2.. sent.
 * const wire: Uint8Array[] = [];
 * const source = await Deno.open(original);
 * const sent = await sendFileFrom(source, 4, 2, (chunk) => {
 *   wire.push(chunk.slice());
 *   return Promise.resolve();
 * }, await createStreamingHash("xxh3-128"));
 * source.close();
 *
 * // The receiver's side: held bytes hashed, the rest received, then published.
 * const incoming = wire.values();
 * const reader = new FrameReader({
 *   read(buffer: Uint8Array) {
 *     const next = incoming.next();
 *     if (next.done) return Promise.resolve(null);
 *     buffer.set(next.value);
 *     return Promise.resolve(next.value.length);
 *   },
 * });
 * const file = await Deno.open(`${dir}/copy.tmp`, { read: true, write: true });
 * const hash = await createStreamingHash("xxh3-128");
 * await hashHeldPrefix(file, 2, hash);
 * const { writeFailure } = await receiveData(reader, 2, writeToFile(file), hash);
 * console.assert(writeFailure === null && hash.hex() === sent.digest.hex);
 * await publishFile(file, `${dir}/copy.tmp`, `${dir}/copy`, { overwrite: false, durable: true });
 * console.assert(Deno.readTextFileSync(`${dir}/copy`) === "abcd");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export { syncDirectory } from "./sync_directory.ts";
export { sendFileFrom, type SendFileOptions, type SentFile } from "./send_file.ts";
export {
  hashHeldPrefix,
  type HashHeldPrefixOptions,
  receiveData,
  type ReceiveDataOptions,
  type ReceivedData,
  writeToFile,
} from "./receive_data.ts";
export {
  closeWritten,
  type CloseWrittenOptions,
  finishWritten,
  NameTakenError,
  placeFile,
  type PlaceFileOptions,
  publishFile,
  type PublishFileOptions,
} from "./publish.ts";
export { createStreamingHash, digestOf, type StreamingHash } from "./checksum.ts";
