/**
 * What a client may send: its hello, a request (one variant per op), and an
 * upload's trailer; and the one decoder the server reads them with.
 * protocol/README.md, "Requests and replies", is the specification.
 *
 * @module
 */

import { type ChecksumName, type Digest, digestField, UNNEGOTIATED_CHECKSUM } from "./checksum.ts";
import { type ErrorCode, ProtocolError } from "./errors.ts";
import {
  describeType,
  field,
  isMtime,
  mtimeField,
  mtimeRangeMessage,
  optionalSizeField,
  sizeField,
} from "./fields.ts";
import { MAX_PERMISSION_BITS } from "./limits.ts";
import type { Message } from "./frames.ts";
import { type ClientHello, decodeClientHello } from "./hello.ts";
import type { Op } from "./ops.ts";

/** What every request carries: its type, the id the client chose, and the op. */
export type RequestEnvelope<O extends Op> = {
  /** The message type. */
  type: "request";
  /** Chosen by the client; echoed in everything the server sends about the request. */
  id: number;
  /** The operation. */
  op: O;
};

/** A request for `list`: the entries of a directory ("" = the top), or of one file. */
export type ListRequest = RequestEnvelope<"list"> & {
  /** The directory or file to list; "" is the top. */
  name: string;
};

/** A request for `stat`: one entry, for a file with its mode and SHA-256. */
export type StatRequest = RequestEnvelope<"stat"> & {
  /** The file or directory to describe. */
  name: string;
};

/** A request for `digests`: the content digests of a directory's regular files. */
export type DigestsRequest = RequestEnvelope<"digests"> & {
  /** The directory; "" is the top. */
  name: string;
};

/**
 * A version of a file, as a listing describes it: what an upload's
 * `ifUnchanged` expects to replace.
 */
export type FileVersion = {
  /** Size in bytes. */
  size: number;
  /** Modification time, whole ms since the epoch, as the server lists it. */
  mtime: number;
};

/** A request for `upload`: `continue` (unless eager), raw data, trailer, reply. */
export type UploadRequest = RequestEnvelope<"upload"> & {
  /** Where the file goes. */
  name: string;
  /** The whole file's size in bytes. */
  size: number;
  /** Replace a file already there. Absent on the wire means false. */
  overwrite: boolean;
  /** Modification time to give the file, ms since the epoch; the server's clock when absent. */
  mtime?: number;
  /** Permission bits to give the file (0 to 0o777, as `put -p` keeps them); 0o644 when absent. */
  mode?: number;
  /** Keep what arrived if the connection breaks, so that a later upload can resume. */
  resumable: boolean;
  /** Continue from what a broken resumable upload of the same name and size left. */
  resume: boolean;
  /**
   * The data and trailer follow the request at once, without waiting for a
   * `continue` (the `eager-upload` feature); never together with `resume`.
   * Decoding always sets it; a sender leaves it out unless true.
   */
  eager?: boolean;
  /**
   * Replace the file only if it is still this version (its size and mtime as
   * the server lists them), checked as the upload is published, in one step
   * with the rename; otherwise `CHANGED` and the file is left as it is. Needs
   * `overwrite` (a file that must not exist is `overwrite: false`) and the
   * `if-unchanged` feature. Absent: no check.
   */
  ifUnchanged?: FileVersion;
};

/** A request for `download`: `data`, raw data, reply. */
export type DownloadRequest = RequestEnvelope<"download"> & {
  /** The file to send. */
  name: string;
  /** Bytes the client already holds: the data starts there. Absent on the wire means 0. */
  offset: number;
};

/** A request for `delete`: a file, a link or an empty directory. */
export type DeleteRequest = RequestEnvelope<"delete"> & {
  /** What to remove. */
  name: string;
};

/** A request for `mkdir`: a directory and any missing parents. */
export type MkdirRequest = RequestEnvelope<"mkdir"> & {
  /** The directory to create. */
  name: string;
};

/** A request for `rename`, within the root. */
export type RenameRequest = RequestEnvelope<"rename"> & {
  /** What to rename. */
  name: string;
  /** Its new name. */
  to: string;
  /** Replace what `to` names already. Absent on the wire means false. */
  overwrite: boolean;
};

/** A request for `partial`: how much of a broken upload the server keeps. */
export type PartialRequest = RequestEnvelope<"partial"> & {
  /** The upload's name. */
  name: string;
  /** The upload's whole size in bytes. */
  size: number;
};

/** A request for `partials`: the broken uploads the server keeps data of. */
export type PartialsRequest = RequestEnvelope<"partials">;

/** A request for `drop-partial`: throw away what a broken upload left. */
export type DropPartialRequest = RequestEnvelope<"drop-partial"> & {
  /** The upload's name. */
  name: string;
  /** The upload's whole size in bytes; absent: the partials of every size held for `name`. */
  size?: number;
};

/** A request for `chmod`: the permission bits of a file or directory. */
export type ChmodRequest = RequestEnvelope<"chmod"> & {
  /** The file or directory. */
  name: string;
  /** Its new permission bits, 0 to 0o777 ({@link MAX_PERMISSION_BITS}). */
  mode: number;
};

/** A request for `df`: the served directory's free space and quota. */
export type DfRequest = RequestEnvelope<"df">;

/** A request for `ping`: nothing but a reply, which keeps an idle session open. */
export type PingRequest = RequestEnvelope<"ping">;

/** A request for `terminate`: the server stops after the requests in flight. */
export type TerminateRequest = RequestEnvelope<"terminate">;

/** A request for `logout`: the server replies, then closes the connection. */
export type LogoutRequest = RequestEnvelope<"logout">;

/** A request for one operation. */
export type Request =
  | ListRequest
  | StatRequest
  | DigestsRequest
  | UploadRequest
  | DownloadRequest
  | DeleteRequest
  | MkdirRequest
  | RenameRequest
  | PartialRequest
  | PartialsRequest
  | DropPartialRequest
  | ChmodRequest
  | DfRequest
  | PingRequest
  | TerminateRequest
  | LogoutRequest;

/** A request without its `type` and `id`: what a client fills in before it numbers it. */
export type RequestBody = Request extends infer R
  ? R extends Request ? Omit<R, "type" | "id"> : never
  : never;

/**
 * Sent by the uploader right after the file data: the digest of the whole
 * file, with the session's checksum (on the wire, a field named after it).
 */
export type Trailer = {
  /** The message type. */
  type: "trailer";
  /** The upload request's id. */
  id: number;
  /** The whole file's digest. */
  digest: Digest;
};

/** Everything a client may send. */
export type ClientMessage = ClientHello | Request | Trailer;

/** One of the message types a client may send. */
export type ClientMessageType = ClientMessage["type"];

/** A well-formed request for an operation this server does not know: answered, not fatal. */
export class UnknownOpError extends ProtocolError {
  /** The request's id, which the error reply carries. */
  readonly id: number;
  /** An error for request `id`, which asked for `op`. */
  constructor(id: number, op: string) {
    super(`unknown operation '${op.slice(0, 40)}'`, "UNSUPPORTED");
    this.id = id;
  }
}

/**
 * A well-formed request with a field value out of range (an mtime past the
 * `Date` range): answered with `BAD_REQUEST`, not fatal. It extends
 * {@link UnknownOpError} because that is what the session answers instead of
 * closing.
 */
export class BadFieldError extends UnknownOpError {
  /** Always `BAD_REQUEST`. */
  override readonly code: ErrorCode = "BAD_REQUEST";
  /** An error for request `id`, saying which field is out of range. */
  constructor(id: number, message: string) {
    super(id, "");
    this.message = message;
    this.name = "BadFieldError";
  }
}

/**
 * Checks a message from a client. A malformed message (an unknown type, a
 * field missing or of the wrong type, an id that is not a non-negative
 * integer) throws a {@link ProtocolError}, which ends the session; a
 * well-formed request the server answers instead (an unknown op, a field
 * value out of range) throws an {@link UnknownOpError} (or its subclass
 * {@link BadFieldError}) carrying the request's id. With `expected`, a
 * message of another type is a ProtocolError before its fields are read.
 * Fields the message does not define are dropped; absent booleans are false,
 * and a boolean field present with another type is malformed. A trailer's
 * digest must be of `checksum`, the session's (see {@link digestField}).
 *
 * @example
 * ```ts
 * import { decodeClientMessage } from "./client_messages.ts";
 * const request = decodeClientMessage({ type: "request", id: 7, op: "list", name: "" }, "request");
 * console.assert(request.op === "list" && request.id === 7);
 * ```
 */
export function decodeClientMessage(raw: Message): ClientMessage;
/**
 * Checks a message from a client that must be of the `expected` type, in a
 * session whose checksum is `checksum` (sha256 until one is negotiated).
 */
export function decodeClientMessage<T extends ClientMessageType>(
  raw: Message,
  expected: T,
  checksum?: ChecksumName,
): Extract<ClientMessage, { type: T }>;
export function decodeClientMessage(
  raw: Message,
  expected?: ClientMessageType,
  checksum: ChecksumName = UNNEGOTIATED_CHECKSUM,
): ClientMessage {
  if (expected !== undefined && raw.type !== expected) {
    throw new ProtocolError(`expected a ${expected} message, got '${describeType(raw.type)}'`);
  }
  const type = raw.type as ClientMessageType;
  switch (type) {
    case "hello":
      return decodeClientHello(raw);
    case "request":
      return decodeRequestMessage(raw);
    case "trailer":
      return { type, id: sizeField(raw, "id"), digest: digestField(raw, checksum) };
    default: {
      const unknown: never = type;
      throw new ProtocolError(`unexpected '${describeType(unknown)}' message from the client`);
    }
  }
}

/** Checks a request, one case per op. */
function decodeRequestMessage(raw: Message): Request {
  const type = "request";
  const id = sizeField(raw, "id");
  const op = field(raw, "op", "string");
  switch (op) {
    case "list":
    case "stat":
    case "digests":
    case "delete":
    case "mkdir":
      return { type, id, op, name: field(raw, "name", "string") };
    case "upload":
      return decodeUpload(raw, id);
    case "download":
      return {
        type,
        id,
        op,
        name: field(raw, "name", "string"),
        offset: optionalSizeField(raw, "offset", 0),
      };
    case "rename":
      return {
        type,
        id,
        op,
        name: field(raw, "name", "string"),
        to: field(raw, "to", "string"),
        overwrite: flag(raw, "overwrite"),
      };
    case "partial":
      return { type, id, op, name: field(raw, "name", "string"), size: sizeField(raw, "size") };
    case "drop-partial":
      return {
        type,
        id,
        op,
        name: field(raw, "name", "string"),
        ...(raw.size === undefined ? {} : { size: sizeField(raw, "size") }),
      };
    case "chmod":
      return { type, id, op, name: field(raw, "name", "string"), mode: modeField(raw, id, false) };
    case "partials":
    case "df":
    case "ping":
    case "terminate":
    case "logout":
      return { type, id, op };
    default:
      throw new UnknownOpError(id, op);
  }
}

/**
 * A boolean field that may be left out (false); present, it must be a
 * boolean: `"overwrite": "yes"` is malformed, never quietly false.
 */
function flag(raw: Message, key: string): boolean {
  return raw[key] === undefined ? false : field(raw, key, "boolean");
}

/**
 * A mode within {@link MAX_PERMISSION_BITS}: out of range it is a bad field
 * (an eager upload's, a protocol error: its data follows at once).
 */
function modeField(raw: Message, id: number, eager: boolean): number {
  const mode = field(raw, "mode", "number");
  if (!Number.isInteger(mode) || mode < 0 || mode > MAX_PERMISSION_BITS) {
    const message = `mode ${mode} is not permission bits (0 to 0o777)`;
    if (eager) throw new ProtocolError(message);
    throw new BadFieldError(id, message);
  }
  return mode;
}

function decodeUpload(raw: Message, id: number): UploadRequest {
  const eager = flag(raw, "eager");
  const resume = flag(raw, "resume");
  // The sender of eager data cannot know the offset a resume would start from.
  if (eager && resume) throw new ProtocolError("an eager upload cannot resume");
  const mtime = raw.mtime === undefined ? undefined : field(raw, "mtime", "number");
  if (mtime !== undefined && !isMtime(mtime)) {
    // Eager data follows at once, and only the upload handler reads through it.
    if (eager) throw new ProtocolError(mtimeRangeMessage("mtime", mtime));
    throw new BadFieldError(id, mtimeRangeMessage("mtime", mtime));
  }
  const overwrite = flag(raw, "overwrite");
  const ifUnchanged = raw.ifUnchanged === undefined ? undefined : versionField(raw, "ifUnchanged");
  if (ifUnchanged !== undefined && !overwrite) {
    // Without overwrite the name must be free: there is no version to expect.
    const message = "an upload with 'ifUnchanged' replaces a file: it needs 'overwrite'";
    if (eager) throw new ProtocolError(message);
    throw new BadFieldError(id, message);
  }
  return {
    type: "request",
    id,
    op: "upload",
    name: field(raw, "name", "string"),
    size: sizeField(raw, "size"),
    overwrite,
    mtime,
    resumable: flag(raw, "resumable"),
    resume,
    eager,
    ...(raw.mode === undefined ? {} : { mode: modeField(raw, id, eager) }),
    ...(ifUnchanged === undefined ? {} : { ifUnchanged }),
  };
}

/** A {@link FileVersion}: an object with a size and an mtime (malformed otherwise). */
function versionField(raw: Message, key: string): FileVersion {
  const version = field(raw, key, "object");
  return { size: sizeField(version, "size"), mtime: mtimeField(version, "mtime") };
}
