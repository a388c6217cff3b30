/**
 * The handler table: one row per operation, named as in protocol/README.md.
 * Policy (who may run what) is checked by the dispatcher from each row's
 * flags; handlers only do their operation.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { fileSource } from "../io/small_file_io.ts";
import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { type ByteSink, type FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import { LIST_FRAME_BUDGET_BYTES, LIST_FRAME_ENVELOPE_BYTES } from "../protocol/limits.ts";
import { pumpExactly } from "../io/pump.ts";
import {
  decodeTrailer,
  type Entry,
  type Op,
  type Request,
  type Role,
  type Trailer,
} from "../protocol/messages.ts";
import { parseDirectoryName, parseName } from "../protocol/names.ts";
import type { RateFloor } from "./rate_floor.ts";
import type { PendingUpload, Storage } from "./storage.ts";
import { readData } from "../io/read_data.ts";

/** What a handler works with: the connection's framing and the served root. */
export interface HandlerContext {
  readonly reader: FrameReader;
  /** Where raw file data is written: the connection, with the idle timeout applied. */
  readonly conn: ByteSink;
  /** Engaged while file data flows (see {@link atMinRate}); counts the bytes {@link conn} moves. */
  readonly rateFloor: Pick<RateFloor, "engage" | "disengage">;
  readonly storage: Storage;
  readonly maxFileBytes: number;
  /** Sends a control message, within the peer's limit. */
  send(message: Message): Promise<void>;
  /** The largest control frame the peer reads (the smaller of its limit and ours). */
  peerMaxControlBytes: number;
  /**
   * Set once raw data has started to flow to the peer: an error after that
   * point cannot be a reply (the peer is counting bytes), so it closes the connection.
   */
  midStream: boolean;
}

/** What a successful handler returns. */
export interface HandlerResult {
  /** Fields for the final ok reply. */
  fields?: Record<string, unknown>;
  /** File bytes moved, for the log. */
  bytes?: number;
  /** What the session does after replying. */
  then?: "close" | "terminate";
}

/** One row of the table. */
export interface Handler<O extends Op> {
  handle(request: Extract<Request, { op: O }>, context: HandlerContext): Promise<HandlerResult>;
  /** The least role that may run it. */
  role: Role;
  /** It changes the root: refused when the server is read-only. */
  mutates: boolean;
}

/** The handler for every operation, with the policy the dispatcher applies to it. */
export const HANDLERS: { [O in Op]: Handler<O> } = {
  list: { handle: handleList, role: "read", mutates: false },
  stat: { handle: handleStat, role: "read", mutates: false },
  upload: { handle: handleUpload, role: "write", mutates: true },
  download: { handle: handleDownload, role: "read", mutates: false },
  delete: { handle: handleDelete, role: "write", mutates: true },
  mkdir: { handle: handleMkdir, role: "write", mutates: true },
  rename: { handle: handleRename, role: "write", mutates: true },
  partial: { handle: handlePartial, role: "write", mutates: false },
  terminate: {
    handle: () => Promise.resolve({ then: "terminate" }),
    role: "admin",
    mutates: false,
  },
  logout: { handle: () => Promise.resolve({ then: "close" }), role: "read", mutates: false },
};

const encoder = new TextEncoder();

async function handleList(
  request: Extract<Request, { op: "list" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  const entries = await context.storage.list(parseDirectoryName(request.name));
  // Batch entries so that every frame stays well under the peer's control limit.
  const budget = Math.min(
    LIST_FRAME_BUDGET_BYTES,
    context.peerMaxControlBytes - LIST_FRAME_ENVELOPE_BYTES,
  );
  let batch: Entry[] = [];
  let batchBytes = 0;
  for (const entry of entries) {
    const entryBytes = encoder.encode(JSON.stringify(entry)).length + 1;
    if (batch.length > 0 && batchBytes + entryBytes > budget) {
      await context.send({ type: "entries", id: request.id, entries: batch });
      batch = [];
      batchBytes = 0;
    }
    batch.push(entry);
    batchBytes += entryBytes;
  }
  if (batch.length > 0) await context.send({ type: "entries", id: request.id, entries: batch });
  return { fields: { count: entries.length } };
}

/** Describes one entry; for a file also its SHA-256, read from disk now. */
async function handleStat(
  request: Extract<Request, { op: "stat" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  const segments = parseName(request.name);
  const entry = await context.storage.stat(segments);
  if (entry.type !== "file") return { fields: { entry } };
  const { file, size, mtime, mode } = await context.storage.openForDownload(segments);
  try {
    const hash = createHash("sha256");
    for await (const chunk of file.readable) hash.update(chunk);
    return { fields: { entry: { ...entry, size, mtime, mode, sha256: hash.digest("hex") } } };
  } finally {
    try {
      file.close();
    } catch {
      // The readable stream closed it.
    }
  }
}

async function handleUpload(
  request: Extract<Request, { op: "upload" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  // (An eager upload over the limit never gets here: the dispatcher ends the session for it.)
  if (request.size > context.maxFileBytes) {
    throw new FtsError(
      "TOO_LARGE",
      `file of ${request.size} bytes exceeds the server's limit of ${context.maxFileBytes}`,
    );
  }
  let pending: PendingUpload;
  try {
    pending = await context.storage.beginUpload(parseName(request.name), request);
  } catch (err) {
    if (request.eager) await skipEagerUpload(request, context);
    throw err;
  }
  let dataComplete = false;
  try {
    const offset = pending.offset;
    if (!request.eager) await context.send({ type: "continue", id: request.id, offset });
    // name → temp file → exactly `size - offset` bytes through SHA-256 →
    // trailer → compare → fsync → rename → reply. The hash covers the whole
    // file, a resumed upload's held bytes first. A write failure (a full
    // disk) still reads the rest of the data, so that the stream stays in step.
    const hash = createHash("sha256");
    await pending.readHeld((chunk) => hash.update(chunk));
    let writeFailure: unknown = null;
    const trailer = await atMinRate(context, async () => {
      await readData(context.reader, request.size - offset, async (chunk) => {
        hash.update(chunk);
        if (writeFailure !== null) return;
        try {
          await pending.write(chunk);
        } catch (err) {
          writeFailure = err;
        }
      });
      dataComplete = true;
      return await readTrailer(request, context);
    });
    if (writeFailure !== null) throw writeFailure;
    const sha256 = hash.digest("hex");
    if (sha256 !== trailer.sha256) {
      throw new FtsError(
        "INTEGRITY",
        `SHA-256 of the received data (${sha256}) differs from the sender's (${trailer.sha256}); nothing was saved`,
      );
    }
    await pending.publish();
    return { fields: { size: request.size, sha256 }, bytes: request.size - offset };
  } catch (err) {
    // Data cut off part-way is kept for a resume; anything else is thrown away.
    if (dataComplete) await pending.discard();
    else await pending.interrupted();
    throw err;
  }
}

/**
 * Reads past the data and trailer of an eager upload that is refused, so
 * that the stream stays in step and the session goes on with the next request.
 */
export async function skipEagerUpload(
  request: Extract<Request, { op: "upload" }>,
  context: HandlerContext,
): Promise<void> {
  await atMinRate(context, async () => {
    await readData(context.reader, request.size, () => {});
    await readTrailer(request, context);
  });
}

/**
 * Runs an upload's data and trailer with the connection's rate floor
 * engaged: only there, so that the hashing of held bytes, the fsyncs and the
 * time between requests never count as a slow peer.
 */
async function atMinRate<T>(context: HandlerContext, phase: () => Promise<T>): Promise<T> {
  context.rateFloor.engage();
  try {
    return await phase();
  } finally {
    context.rateFloor.disengage();
  }
}

/** Reads the trailer that follows an upload's data. */
async function readTrailer(
  request: Extract<Request, { op: "upload" }>,
  context: HandlerContext,
): Promise<Trailer> {
  const message = await context.reader.readMessage();
  if (message === null) throw new ProtocolError("connection closed before the trailer");
  return decodeTrailer(message, request.id);
}

async function handleDownload(
  request: Extract<Request, { op: "download" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  const { file, size, mtime, mode } = await context.storage.openForDownload(
    parseName(request.name),
  );
  try {
    const offset = Math.min(request.offset, size);
    await context.send({ type: "data", id: request.id, size, offset, mtime, mode });
    context.midStream = true;
    // The open handle is a snapshot: a concurrent upload publishes by rename
    // and a delete unlinks, so this file's bytes stay whole to the end. The
    // hash covers the whole file; bytes before `offset` are hashed, not sent.
    const hash = createHash("sha256");
    let position = 0;
    // The rate floor is engaged from the first byte sent: reading and
    // hashing the bytes before `offset` is the server's time, not the peer's.
    let sending = false;
    try {
      await pumpExactly(fileSource(file, size), size, async (chunk) => {
        hash.update(chunk);
        if (position + chunk.length > offset) {
          if (!sending) {
            sending = true;
            context.rateFloor.engage();
          }
          await writeAll(context.conn, chunk.subarray(Math.max(0, offset - position)));
        }
        position += chunk.length;
      }, (missing) => new Error(`file shrank by ${missing} bytes while being sent`));
    } finally {
      context.rateFloor.disengage();
    }
    context.midStream = false;
    return { fields: { size, sha256: hash.digest("hex") }, bytes: size - offset };
  } finally {
    file.close();
  }
}

async function handleDelete(
  request: Extract<Request, { op: "delete" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  await context.storage.remove(parseName(request.name));
  return {};
}

async function handleMkdir(
  request: Extract<Request, { op: "mkdir" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  await context.storage.mkdir(parseName(request.name));
  return {};
}

async function handleRename(
  request: Extract<Request, { op: "rename" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  await context.storage.rename(parseName(request.name), parseName(request.to), request.overwrite);
  return {};
}

function handlePartial(
  request: Extract<Request, { op: "partial" }>,
  context: HandlerContext,
): Promise<HandlerResult> {
  const held = context.storage.heldBytes(parseName(request.name), request.size);
  return Promise.resolve({ fields: { held } });
}
