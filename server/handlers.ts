/**
 * The handler table: one row per operation, named as in protocol/README.md.
 * Policy (who may run what) is checked by the dispatcher from each row's
 * flags, and so is the data a refused request carries; handlers only do
 * their operation and return their reply's fields.
 *
 * @module
 */

import { LIST_FRAME_BUDGET_BYTES, LIST_FRAME_ENVELOPE_BYTES } from "../protocol/limits.ts";
import type {
  ChecksumName,
  FileDigest,
  HeldPartial,
  Op,
  ReplyFields,
  Request,
  Role,
  ServerMessage,
} from "../protocol/messages.ts";
import { parseDirectoryName, parseName } from "../protocol/names.ts";
import { FtsError } from "../protocol/errors.ts";
import { createStreamingHash, hashHeldPrefix, sendFileFrom } from "../io/verified_transfer.ts";
import type { DataPhaseContext } from "./data_phase.ts";
import type { Store } from "./store.ts";
import { handleDownload, handleUpload } from "./transfer_handlers.ts";
import type { ByteSink } from "../protocol/frames.ts";
import type { CommitMember } from "../io/commit_group.ts";

/** What a handler works with: the connection's framing and the served root. */
export interface HandlerContext extends DataPhaseContext {
  /** Where raw file data is written: the connection, with the idle timeout applied. */
  readonly conn: ByteSink;
  /** The served root. */
  readonly storage: Store;
  /** The largest file the server accepts, as its hello announced. */
  readonly maxFileBytes: number;
  /** Sends a control message, within the peer's limit. */
  send(message: ServerMessage): Promise<void>;
  /** The largest control frame the peer reads (the smaller of its limit and ours). */
  peerMaxControlBytes: number;
  /** The checksum the session's transfers are verified with, as its hello negotiated. */
  checksum: ChecksumName;
}

/** The request for op `O`, written so that `O` and the request stay correlated in generic code. */
export type RequestFor<O extends Op> = { [P in O]: Extract<Request, { op: P }> }[O];

/** What a successful handler returns. */
export interface HandlerOutcome<O extends Op> {
  /** The fields of the final ok reply. */
  fields: ReplyFields[O];
  /** File bytes moved, for the log. */
  bytes?: number;
  /** What the session does after replying. */
  then?: "close" | "terminate";
  /**
   * A received file the reply waits for: the session commits it, with the
   * uploads that arrived back to back with it (io/commit_group.ts), before
   * it replies; a file that fails to commit is discarded and its error replied.
   */
  publish?: PendingPublish;
}

/** A file received and verified, to be made durable and take its name. */
export interface PendingPublish extends CommitMember {
  /**
   * Publishing it claims space for directories and makes them: its group
   * is committed before any later upload claims space.
   */
  readonly makesDirectories: boolean;
  /** Throws the file away after its commit failed. */
  discard(): Promise<void>;
}

/** One row of the table: the handler, and what the dispatcher needs to know of it. */
export interface Handler<O extends Op> {
  /** Does the operation; an operation error is thrown as an `FtsError` (or an OS error). */
  handle(request: RequestFor<O>, context: HandlerContext): Promise<HandlerOutcome<O>>;
  /** The least role that may run it. */
  role: Role;
  /** It changes the root: refused when the server is read-only. */
  mutates: boolean;
  /**
   * The raw bytes that follow the request without waiting to be asked, each
   * followed by a trailer (an eager upload's data); null when none do. A
   * refused request's data is read past by the dispatcher.
   */
  carriesData(request: RequestFor<O>): number | null;
}

/** The handler for every operation, with the policy the dispatcher applies to it. */
export const HANDLERS: { [O in Op]: Handler<O> } = {
  list: { handle: handleList, role: "read", mutates: false, carriesData: none },
  stat: { handle: handleStat, role: "read", mutates: false, carriesData: none },
  digests: { handle: handleDigests, role: "read", mutates: false, carriesData: none },
  upload: {
    handle: handleUpload,
    role: "write",
    mutates: true,
    carriesData: (request) => request.eager ? request.size : null,
  },
  download: { handle: handleDownload, role: "read", mutates: false, carriesData: none },
  delete: { handle: handleDelete, role: "write", mutates: true, carriesData: none },
  mkdir: { handle: handleMkdir, role: "write", mutates: true, carriesData: none },
  rename: { handle: handleRename, role: "write", mutates: true, carriesData: none },
  partial: { handle: handlePartial, role: "write", mutates: false, carriesData: none },
  partials: { handle: handlePartials, role: "write", mutates: false, carriesData: none },
  "drop-partial": {
    handle: handleDropPartial,
    role: "write",
    mutates: true,
    carriesData: none,
  },
  chmod: { handle: handleChmod, role: "write", mutates: true, carriesData: none },
  df: { handle: handleDf, role: "read", mutates: false, carriesData: none },
  ping: {
    handle: () => Promise.resolve({ fields: {} }),
    role: "read",
    mutates: false,
    carriesData: none,
  },
  terminate: {
    handle: () => Promise.resolve({ fields: {}, then: "terminate" }),
    role: "admin",
    mutates: false,
    carriesData: none,
  },
  logout: {
    handle: () => Promise.resolve({ fields: {}, then: "close" }),
    role: "read",
    mutates: false,
    carriesData: none,
  },
};

/**
 * The row of {@link HANDLERS} for `request`, typed for its op, so that
 * `handlerFor(request).handle(request, context)` type-checks for any request.
 *
 * @example
 * ```ts
 * import { handlerFor } from "./handlers.ts";
 * const row = handlerFor({ type: "request", id: 1, op: "delete", name: "a" });
 * console.assert(row.role === "write" && row.mutates);
 * ```
 */
export function handlerFor<O extends Op>(request: RequestFor<O>): Handler<O> {
  return HANDLERS[request.op];
}

function none(): null {
  return null;
}

const encoder = new TextEncoder();

async function handleList(
  request: RequestFor<"list">,
  context: HandlerContext,
): Promise<HandlerOutcome<"list">> {
  const entries = await context.storage.list(parseDirectoryName(request.name));
  for (const batch of frameBatches(entries, context)) {
    await context.send({ type: "entries", id: request.id, entries: batch });
  }
  return { fields: { count: entries.length } };
}

/** Lists the partials held for resumes, in `partials` frames like a listing's entries. */
async function handlePartials(
  request: RequestFor<"partials">,
  context: HandlerContext,
): Promise<HandlerOutcome<"partials">> {
  const listed: HeldPartial[] = (await context.storage.listPartials()).map((partial) => ({
    name: partial.segments.join("/"),
    size: partial.size,
    held: partial.held,
    mtime: partial.mtime,
  }));
  for (const batch of frameBatches(listed, context)) {
    await context.send({ type: "partials", id: request.id, partials: batch });
  }
  return { fields: { count: listed.length } };
}

async function handleDropPartial(
  request: RequestFor<"drop-partial">,
  context: HandlerContext,
): Promise<HandlerOutcome<"drop-partial">> {
  const dropped = await context.storage.dropPartials(
    parseName(request.name),
    request.size ?? null,
  );
  return { fields: dropped };
}

/**
 * The content digests of a directory's regular files, of the session's
 * checksum, in `digests` frames like a listing's entries: kept ones where the
 * file is unchanged since it was hashed (io/known_digests.ts), the others
 * read and hashed now. A frame goes out after each file hashed, so a
 * directory of large files keeps the client hearing from the server.
 */
async function handleDigests(
  request: RequestFor<"digests">,
  context: HandlerContext,
): Promise<HandlerOutcome<"digests">> {
  const dir = parseDirectoryName(request.name);
  const { storage, checksum } = context;
  if (dir.length > 0 && (await storage.stat(dir)).type !== "dir") {
    throw new FtsError("WRONG_TYPE", `${JSON.stringify(dir.join("/"))} is not a directory`);
  }
  const entries = await storage.list(dir);
  const known = await storage.directoryDigests(dir, checksum);
  const budget = frameBudget(context);
  let batch: FileDigest[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await context.send({ type: "digests", id: request.id, checksum, digests: batch });
    batch = [];
    batchBytes = 0;
  };
  const files = new Set<string>();
  for (const entry of entries) {
    if (entry.type !== "file") continue;
    const found = await known.digestOf([...dir, entry.name]);
    if (found === null) continue;
    const { hex, size, mtime, hashedNow } = found;
    files.add(entry.name);
    const digest = { name: entry.name, size, mtime, hex };
    const bytes = encoder.encode(JSON.stringify(digest)).length + 1;
    if (batch.length > 0 && batchBytes + bytes > budget) await flush();
    batch.push(digest);
    batchBytes += bytes;
    if (hashedNow) await flush();
  }
  await flush();
  known.keepOnly(files);
  await known.save();
  return { fields: { count: files.size } };
}

/** The bytes of items one listing frame may carry: well under the peer's control limit. */
function frameBudget(context: HandlerContext): number {
  return Math.min(LIST_FRAME_BUDGET_BYTES, context.peerMaxControlBytes - LIST_FRAME_ENVELOPE_BYTES);
}

/**
 * Splits `items` into batches whose JSON stays well under the peer's
 * control limit, one frame each.
 */
function* frameBatches<T>(items: T[], context: HandlerContext): Generator<T[]> {
  const budget = frameBudget(context);
  let batch: T[] = [];
  let batchBytes = 0;
  for (const item of items) {
    const itemBytes = encoder.encode(JSON.stringify(item)).length + 1;
    if (batch.length > 0 && batchBytes + itemBytes > budget) {
      yield batch;
      batch = [];
      batchBytes = 0;
    }
    batch.push(item);
    batchBytes += itemBytes;
  }
  if (batch.length > 0) yield batch;
}

/**
 * Describes one entry; for a file also its SHA-256, read from disk now
 * (whatever checksum the session's transfers use: the entry's field is
 * `sha256`, for those who compare it with `sha256sum`).
 */
async function handleStat(
  request: RequestFor<"stat">,
  context: HandlerContext,
): Promise<HandlerOutcome<"stat">> {
  const segments = parseName(request.name);
  const entry = await context.storage.stat(segments);
  if (entry.type !== "file") return { fields: { entry } };
  const { file, size, mtime, mode } = await context.storage.openForDownload(segments);
  try {
    const hash = await createStreamingHash("sha256");
    if (file instanceof Deno.FsFile) await hashHeldPrefix(file, size, hash);
    else await sendFileFrom(file, size, size, () => Promise.resolve(), hash);
    return { fields: { entry: { ...entry, size, mtime, mode, sha256: hash.hex() } } };
  } finally {
    file.close();
  }
}

async function handleDelete(
  request: RequestFor<"delete">,
  context: HandlerContext,
): Promise<HandlerOutcome<"delete">> {
  await context.storage.remove(parseName(request.name));
  return { fields: {} };
}

async function handleMkdir(
  request: RequestFor<"mkdir">,
  context: HandlerContext,
): Promise<HandlerOutcome<"mkdir">> {
  await context.storage.mkdir(parseName(request.name));
  return { fields: {} };
}

async function handleRename(
  request: RequestFor<"rename">,
  context: HandlerContext,
): Promise<HandlerOutcome<"rename">> {
  await context.storage.rename(parseName(request.name), parseName(request.to), request.overwrite);
  return { fields: {} };
}

async function handleChmod(
  request: RequestFor<"chmod">,
  context: HandlerContext,
): Promise<HandlerOutcome<"chmod">> {
  await context.storage.chmod(parseName(request.name), request.mode);
  return { fields: {} };
}

async function handleDf(
  _request: RequestFor<"df">,
  context: HandlerContext,
): Promise<HandlerOutcome<"df">> {
  return { fields: await context.storage.space.report() };
}

async function handlePartial(
  request: RequestFor<"partial">,
  context: HandlerContext,
): Promise<HandlerOutcome<"partial">> {
  const held = await context.storage.heldBytes(parseName(request.name), request.size);
  return { fields: { held } };
}
