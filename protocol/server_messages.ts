/**
 * What a server may send: its hello, an upload's `continue`, a listing's
 * `entries`, a `partials` listing's batches, a download's `data` header, the final reply to each request
 * (with its fields per op), and `fatal`; and the decoders a client reads
 * them with. protocol/README.md is the specification.
 *
 * @module
 */

import {
  type ChecksumName,
  CHECKSUMS,
  type Digest,
  digestField,
  isChecksumName,
  isDigestHex,
  UNNEGOTIATED_CHECKSUM,
} from "./checksum.ts";
import { type ErrorCode, isErrorCode, ProtocolError } from "./errors.ts";
import { decodeEntry, decodeStatEntry, type Entry, type StatEntry } from "./entry.ts";
import { decodeFileDigest, type FileDigest } from "./file_digest.ts";
import { decodeHeldPartial, type HeldPartial } from "./held_partial.ts";
import { describeType, field, mtimeField, optionalSizeField, sizeField } from "./fields.ts";
import type { Message } from "./frames.ts";
import { decodeServerHello, type ServerHello } from "./hello.ts";
import { isRole, type Op, type Role } from "./ops.ts";

/** The server's go-ahead for an upload's data: send the file from byte `offset` on. */
export type Continue = {
  /** The message type. */
  type: "continue";
  /** The upload request's id. */
  id: number;
  /** Bytes the server already holds from a resumed upload; 0 otherwise (and when absent). */
  offset: number;
};

/** A batch of listing entries; any number precede a list's final reply. */
export type Entries = {
  /** The message type. */
  type: "entries";
  /** The list request's id. */
  id: number;
  /** The entries, each checked by {@link decodeEntry} on arrival. */
  entries: Entry[];
};

/** A batch of file digests; any number precede a `digests` request's final reply. */
export type Digests = {
  /** The message type. */
  type: "digests";
  /** The digests request's id. */
  id: number;
  /** The checksum every digest of the batch is of: the session's. */
  checksum: ChecksumName;
  /** The files, each checked by {@link decodeFileDigest} on arrival. */
  digests: FileDigest[];
};

/** A batch of held partials; any number precede a `partials` request's final reply. */
export type Partials = {
  /** The message type. */
  type: "partials";
  /** The partials request's id. */
  id: number;
  /** The partials, each checked by {@link decodeHeldPartial} on arrival. */
  partials: HeldPartial[];
};

/** Announces a download's raw data, `size - offset` bytes, which follow it at once. */
export type DataHeader = {
  /** The message type. */
  type: "data";
  /** The download request's id. */
  id: number;
  /** The whole file's size. */
  size: number;
  /** Where the data starts: the download request's offset, at most `size`; 0 when absent. */
  offset: number;
  /** The file's modification time, ms since the epoch; fts always sends it. */
  mtime?: number;
  /** The file's permission bits; fts always sends it. */
  mode?: number;
};

/** The fields of a reply whose op defines none: success is all it says. */
export type NoReplyFields = Record<never, never>;

/**
 * The fields of a success reply, per op; `hello` is the handshake's reply
 * (request id 0).
 */
export interface ReplyFields {
  /** The handshake: the role the session has. */
  hello: { role: Role };
  /** How many entries the `entries` frames before carried. */
  list: { count: number };
  /** The entry described. */
  stat: { entry: StatEntry };
  /** How many file digests the `digests` frames before carried. */
  digests: { count: number };
  /** What the server stored: the whole file's size and digest (the session's checksum). */
  upload: { size: number; digest: Digest };
  /** What the server sent: the whole file's size and digest, as it read it. */
  download: { size: number; digest: Digest };
  /** Nothing beyond success. */
  delete: NoReplyFields;
  /** Nothing beyond success. */
  mkdir: NoReplyFields;
  /** Nothing beyond success. */
  rename: NoReplyFields;
  /** Bytes the server keeps from a broken upload of that name and size (0 if none). */
  partial: { held: number };
  /** How many held partials the `partials` frames before carried. */
  partials: { count: number };
  /** How many partials were dropped, and the bytes they held. */
  "drop-partial": { count: number; bytes: number };
  /** Nothing beyond success. */
  chmod: NoReplyFields;
  /** The served directory's space. */
  df: DfFields;
  /** Nothing beyond success: the session was kept open. */
  ping: NoReplyFields;
  /** Nothing beyond success; the server then stops. */
  terminate: NoReplyFields;
  /** Nothing beyond success; the server then closes the connection. */
  logout: NoReplyFields;
}

/** The reply to `df`: the served directory's free space and quota, in bytes. */
export type DfFields = {
  /** Free bytes on the served directory's file system, as uploads may use them. */
  freeBytes: number;
  /** Free bytes every upload must leave (`--reserve`). */
  reserveBytes: number;
  /** The quota (`--quota`), or null without one. */
  quotaBytes: number | null;
  /** What the root's entries and held partials use against the quota (0 without one). */
  usedBytes: number;
};

/** What a reply can answer: an op, or the handshake (`hello`, request id 0). */
export type ReplyOp = Op | "hello";

/** A success reply to `O`, with its fields. Without `O`, a success reply to any op. */
export type OkReply<O extends ReplyOp = ReplyOp> = O extends ReplyOp
  ? { type: "reply"; id: number; ok: true } & ReplyFields[O]
  : never;

/** The error an error reply carries. */
export type ReplyError = {
  /** The stable code; an unknown one is read as `INTERNAL`. */
  code: ErrorCode;
  /** For people; never branched on. */
  message: string;
};

/** An error reply: the request failed, the session goes on. */
export type ErrorReply = {
  /** The message type. */
  type: "reply";
  /** The request's id (0 in the handshake). */
  id: number;
  /** Failure. */
  ok: false;
  /** What went wrong. */
  error: ReplyError;
};

/** The final reply to a request: success with its fields, or an error. */
export type Reply = OkReply | ErrorReply;

/** A protocol violation; the sender closes the connection right after it. */
export type Fatal = {
  /** The message type. */
  type: "fatal";
  /** The stable code; an unknown one is read as `INTERNAL`. */
  code: ErrorCode;
  /** For people; never branched on. */
  message: string;
};

/** Everything a server may send. */
export type ServerMessage =
  | ServerHello
  | Continue
  | Entries
  | Digests
  | Partials
  | DataHeader
  | Reply
  | Fatal;

/** One of the message types a server may send. */
export type ServerMessageType = ServerMessage["type"];

/**
 * A success reply as {@link decodeServerMessage} returns it: its envelope is
 * checked; the fields of its op are read by {@link decodeReplyFields} once
 * the receiver knows which op it answers.
 */
export type UncheckedOkReply = {
  /** The message type. */
  type: "reply";
  /** The request's id. */
  id: number;
  /** Success. */
  ok: true;
  /** The op's fields, as they came. */
  [field: string]: unknown;
};

/** A server message as {@link decodeServerMessage} returns it. */
export type DecodedServerMessage = Exclude<ServerMessage, { ok: true }> | UncheckedOkReply;

/**
 * Checks a message from a server in full: every id, size and offset a
 * non-negative integer, every entry by {@link decodeEntry}, every mtime one a
 * `Date` holds, every digest a reply carries (a field named after a
 * checksum) with that checksum's number of hex digits, a reply's error an
 * object. Anything else (an unknown type included) throws a
 * {@link ProtocolError}. An unknown error code reads as `INTERNAL`. With
 * `expected`, a message of another type is a ProtocolError at once.
 *
 * @example
 * ```ts
 * import { decodeServerMessage } from "./server_messages.ts";
 * const go = decodeServerMessage({ type: "continue", id: 3 });
 * console.assert(go.type === "continue" && go.offset === 0);
 * ```
 */
export function decodeServerMessage(raw: Message): DecodedServerMessage;
/** Checks a message from a server that must be of the `expected` type. */
export function decodeServerMessage<T extends ServerMessageType>(
  raw: Message,
  expected: T,
): Extract<DecodedServerMessage, { type: T }>;
export function decodeServerMessage(
  raw: Message,
  expected?: ServerMessageType,
): DecodedServerMessage {
  if (expected !== undefined && raw.type !== expected) {
    throw new ProtocolError(`expected a ${expected} message, got '${describeType(raw.type)}'`);
  }
  const type = raw.type as ServerMessageType;
  switch (type) {
    case "hello":
      return decodeServerHello(raw);
    case "continue":
      return { type, id: sizeField(raw, "id"), offset: optionalSizeField(raw, "offset", 0) };
    case "entries":
      return decodeEntries(raw);
    case "digests":
      return decodeDigests(raw);
    case "partials":
      return decodePartials(raw);
    case "data":
      return decodeDataHeader(raw);
    case "reply":
      return decodeReply(raw);
    case "fatal":
      return { type, ...decodeReplyError(raw) };
    default: {
      const unknown: never = type;
      throw new ProtocolError(`unexpected '${describeType(unknown)}' message from the server`);
    }
  }
}

function decodeEntries(raw: Message): Entries {
  const id = sizeField(raw, "id");
  if (!Array.isArray(raw.entries)) throw new ProtocolError("entries message without entries");
  return { type: "entries", id, entries: raw.entries.map(decodeEntry) };
}

function decodeDigests(raw: Message): Digests {
  const id = sizeField(raw, "id");
  const checksum = field(raw, "checksum", "string");
  if (!isChecksumName(checksum)) {
    throw new ProtocolError(`digests message of an unknown checksum ${JSON.stringify(checksum)}`);
  }
  if (!Array.isArray(raw.digests)) throw new ProtocolError("digests message without digests");
  return {
    type: "digests",
    id,
    checksum,
    digests: raw.digests.map((value) => decodeFileDigest(value, checksum)),
  };
}

function decodePartials(raw: Message): Partials {
  const id = sizeField(raw, "id");
  if (!Array.isArray(raw.partials)) throw new ProtocolError("partials message without partials");
  return { type: "partials", id, partials: raw.partials.map(decodeHeldPartial) };
}

function decodeDataHeader(raw: Message): DataHeader {
  const header: DataHeader = {
    type: "data",
    id: sizeField(raw, "id"),
    size: sizeField(raw, "size"),
    offset: optionalSizeField(raw, "offset", 0),
  };
  if (header.offset > header.size) {
    throw new ProtocolError(`data offset ${header.offset} is past the file's ${header.size} bytes`);
  }
  if (raw.mtime !== undefined) header.mtime = mtimeField(raw, "mtime");
  if (raw.mode !== undefined) header.mode = sizeField(raw, "mode");
  return header;
}

function decodeReply(raw: Message): UncheckedOkReply | ErrorReply {
  const id = sizeField(raw, "id");
  if (raw.ok !== true) {
    if (typeof raw.error !== "object" || raw.error === null) {
      throw new ProtocolError("error reply has no error");
    }
    return { type: "reply", id, ok: false, error: decodeReplyError(raw.error as Message) };
  }
  // Whatever op it answers, a digest is a digest.
  for (const algorithm of CHECKSUMS) {
    if (algorithm in raw && !isDigestHex(algorithm, raw[algorithm])) {
      throw new ProtocolError(`reply carries a malformed ${algorithm} digest`);
    }
  }
  return { ...raw, type: "reply", id, ok: true };
}

/**
 * Reads the code and message of an error reply's `error` or of a `fatal`,
 * tolerating what a later server may send: an unknown code is `INTERNAL`,
 * a missing message "unknown error".
 */
export function decodeReplyError(body: Message): ReplyError {
  const { code, message } = body;
  return {
    code: isErrorCode(code) ? code : "INTERNAL",
    message: typeof message === "string" ? message : "unknown error",
  };
}

/** How each op's reply fields are read (a digest of the session's checksum): one row per {@link ReplyOp}. */
const REPLY_FIELD_DECODERS: {
  [O in ReplyOp]: (reply: Message, checksum: ChecksumName) => ReplyFields[O];
} = {
  hello: (reply) => {
    const role = field(reply, "role", "string");
    if (!isRole(role)) throw new ProtocolError(`the handshake's reply names no known role`);
    return { role };
  },
  list: (reply) => ({ count: sizeField(reply, "count") }),
  stat: (reply) => ({ entry: decodeStatEntry(field(reply, "entry", "object")) }),
  digests: (reply) => ({ count: sizeField(reply, "count") }),
  upload: transferFields,
  download: transferFields,
  delete: noFields,
  mkdir: noFields,
  rename: noFields,
  partial: (reply) => ({ held: sizeField(reply, "held") }),
  partials: (reply) => ({ count: sizeField(reply, "count") }),
  "drop-partial": (reply) => ({
    count: sizeField(reply, "count"),
    bytes: sizeField(reply, "bytes"),
  }),
  chmod: noFields,
  df: (reply) => ({
    freeBytes: sizeField(reply, "freeBytes"),
    reserveBytes: sizeField(reply, "reserveBytes"),
    quotaBytes: reply.quotaBytes === null ? null : sizeField(reply, "quotaBytes"),
    usedBytes: sizeField(reply, "usedBytes"),
  }),
  ping: noFields,
  terminate: noFields,
  logout: noFields,
};

function transferFields(reply: Message, checksum: ChecksumName): { size: number; digest: Digest } {
  return { size: sizeField(reply, "size"), digest: digestField(reply, checksum) };
}

function noFields(): NoReplyFields {
  return {};
}

/**
 * Reads the fields a success reply carries for `op`, which the receiver
 * knows from the request the reply answers, in a session whose checksum is
 * `checksum` (sha256 unless one was negotiated); a field missing or out of
 * range throws a {@link ProtocolError}. Fields the op does not define are
 * dropped.
 *
 * @example
 * ```ts
 * import { decodeReplyFields, decodeServerMessage } from "./server_messages.ts";
 * const reply = decodeServerMessage({ type: "reply", id: 5, ok: true, held: 10 }, "reply");
 * if (reply.ok) console.assert(decodeReplyFields("partial", reply).held === 10);
 * ```
 */
export function decodeReplyFields<O extends ReplyOp>(
  op: O,
  reply: UncheckedOkReply,
  checksum: ChecksumName = UNNEGOTIATED_CHECKSUM,
): ReplyFields[O] {
  return REPLY_FIELD_DECODERS[op](reply, checksum);
}
