/**
 * The two handlers that move file bytes, the server's paths of the bytes:
 * `upload` (received, verified, published) and `download` (read, hashed,
 * sent). Both are built from io/verified_transfer.ts, the stages the client
 * uses too.
 *
 * @module
 */

import { FtsError } from "../protocol/errors.ts";
import { writeAll } from "../protocol/frames.ts";
import { CHECKSUM_TITLES, type Digest, type Trailer } from "../protocol/messages.ts";
import { parseName } from "../protocol/names.ts";
import { receiveData, sendFileFrom } from "../io/verified_transfer.ts";
import { createTransferHash } from "../io/hash_threads.ts";
import { atMinRate, DataStreamBrokenError, drainCarriedData, readTrailer } from "./data_phase.ts";
import type { HandlerContext, HandlerOutcome, RequestFor } from "./handlers.ts";
import type { StoreUpload } from "./store.ts";
import type { ByteSource } from "../protocol/frames.ts";

/**
 * name → temporary file (a resumed upload's held bytes hashed first) →
 * exactly `size - offset` bytes through the session's checksum → trailer →
 * compare → the file to publish, which the session commits (fsync, rename,
 * fsync the directory) with the uploads that arrived back to back with it →
 * reply.
 */
export async function handleUpload(
  request: RequestFor<"upload">,
  context: HandlerContext,
): Promise<HandlerOutcome<"upload">> {
  const pending = await beginUpload(request, context);
  const { digest, trailer, writeFailure } = await receiveUpload(pending, request, context);
  try {
    if (writeFailure !== null) throw writeFailure;
    assertSameDigest(digest, trailer, pending.offset);
    pending.received?.(digest);
  } catch (err) {
    await pending.discard();
    throw err;
  }
  return {
    fields: { size: request.size, digest },
    bytes: request.size - pending.offset,
    publish: pending,
  };
}

/** Starts the upload; a refused eager upload's data and trailer are read past first. */
async function beginUpload(
  request: RequestFor<"upload">,
  context: HandlerContext,
): Promise<StoreUpload> {
  try {
    // (An eager upload over the limit never gets here: the dispatcher ends the session for it.)
    if (request.size > context.maxFileBytes) {
      throw new FtsError(
        "TOO_LARGE",
        `file of ${request.size} bytes exceeds the server's limit of ${context.maxFileBytes}`,
      );
    }
    return await context.storage.beginUpload(parseName(request.name), request);
  } catch (err) {
    if (request.eager) await drainCarriedData(context, request.id, request.size);
    throw err;
  }
}

/**
 * Receives an upload's data and trailer into `pending`: a write failure (a
 * full disk) still reads the rest, so the stream stays in step, and is
 * returned. Cut off before the trailer arrives, the upload keeps what
 * arrived (all of it, too) for a resume, if resumable.
 */
async function receiveUpload(
  pending: StoreUpload,
  request: RequestFor<"upload">,
  context: HandlerContext,
): Promise<{ digest: Digest; trailer: Trailer; writeFailure: unknown }> {
  try {
    if (!request.eager) {
      await context.send({ type: "continue", id: request.id, offset: pending.offset });
    }
    using hash = await createTransferHash(context.checksum, request.size);
    await pending.hashHeld(hash);
    return await atMinRate(context.rateFloor, async () => {
      const remaining = request.size - pending.offset;
      const { writeFailure } = await receiveData(context.reader, remaining, pending.write, hash);
      const trailer = await readTrailer(context, request.id);
      return { digest: await hash.digest(), trailer, writeFailure };
    });
  } catch (err) {
    await pending.interrupted();
    throw err;
  }
}

/**
 * Throws INTEGRITY unless the received data's digest is the sender's (both
 * of the session's checksum: the trailer's decoding saw to that). A resume
 * that fails it says that the `heldBytes` it started from are gone with it
 * (torn by a crash, say, or of another file): another resume starts from 0.
 */
function assertSameDigest(digest: Digest, trailer: Trailer, heldBytes: number): void {
  if (digest.hex === trailer.digest.hex) return;
  const held = heldBytes === 0 ? "" : `; the ${heldBytes} bytes held from an interrupted upload, ` +
    `which it continued, did not match and were discarded: upload the file again`;
  throw new FtsError(
    "INTEGRITY",
    `${CHECKSUM_TITLES[digest.algorithm]} of the received data (${digest.hex}) differs from ` +
      `the sender's (${trailer.digest.hex}); nothing was saved${held}`,
  );
}

/**
 * name → open (one handle: a concurrent upload publishes by rename and a
 * delete unlinks, so this file's bytes stay whole to the end) → data header
 * → the whole file read through the session's checksum, the bytes past
 * `offset` sent → reply.
 */
export async function handleDownload(
  request: RequestFor<"download">,
  context: HandlerContext,
): Promise<HandlerOutcome<"download">> {
  const { file, size, mtime, mode } = await context.storage.openForDownload(
    parseName(request.name),
  );
  try {
    const offset = Math.min(request.offset, size);
    await context.send({ type: "data", id: request.id, size, offset, mtime, mode });
    const { digest } = await sendData(file, size, offset, context);
    return { fields: { size, digest }, bytes: size - offset };
  } finally {
    file.close();
  }
}

/**
 * Sends a download's data, after its header: the peer is now counting bytes,
 * so any failure is a {@link DataStreamBrokenError}. The rate floor is
 * engaged from the first byte sent: reading and hashing the bytes before
 * `offset` is the server's time, not the peer's.
 */
async function sendData(
  file: ByteSource | Deno.FsFile,
  size: number,
  offset: number,
  context: HandlerContext,
): Promise<{ digest: Digest }> {
  try {
    using hash = await createTransferHash(context.checksum, size);
    return await sendFileFrom(file, size, offset, (chunk) => writeAll(context.conn, chunk), hash, {
      onSendStart: () => context.rateFloor.engage(),
    });
  } catch (err) {
    throw new DataStreamBrokenError(err);
  } finally {
    context.rateFloor.disengage();
  }
}
