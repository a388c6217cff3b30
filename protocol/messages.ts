/**
 * The control messages of the fts protocol, and their validation. Every
 * message is a JSON object with a `type`; unknown fields are ignored, so that
 * later versions can add fields (a token, an offset, mtime and mode) without a
 * version change. protocol/README.md is the specification.
 *
 * @module
 */

import { type ErrorCode, isErrorCode, ProtocolError } from "./errors.ts";
import type { Message } from "./frames.ts";
import { MAX_MTIME_MS, MIN_ANNOUNCED_CONTROL_BYTES } from "./limits.ts";

/** The operations a client can request. */
export const OPS = [
  "list",
  "stat",
  "upload",
  "download",
  "delete",
  "mkdir",
  "rename",
  "partial",
  "terminate",
  "logout",
] as const;

/** One of {@link OPS}. */
export type Op = typeof OPS[number];

/** Limits a side announces in its hello. */
export interface Limits {
  maxControlBytes: number;
  maxFileBytes: number;
  maxNameBytes: number;
}

/** What a client may do, each role including the ones before it. */
export const ROLES = ["read", "write", "admin"] as const;

/** One of {@link ROLES}. */
export type Role = typeof ROLES[number];

/** Reports whether `held` includes everything `needed` allows. */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** First message on a connection, from the server. */
export interface ServerHello {
  type: "hello";
  protocol: number;
  software: string;
  limits: Limits;
  /** "token" when the client must present a token in its hello, "none" otherwise. */
  auth: "token" | "none";
  /** Optional capabilities, by name; empty in protocol version 1 as released. */
  features: string[];
}

/** The client's answer to the server's hello. */
export interface ClientHello {
  type: "hello";
  protocol: number;
  software: string;
  /** The access token, when the server's hello says `auth: "token"`. */
  token?: string;
  /** The client's own limits: the server keeps the frames it sends within them. */
  limits?: Partial<Limits>;
}

/** A request for one operation. */
export type Request =
  | { type: "request"; id: number; op: "list"; name: string }
  | { type: "request"; id: number; op: "stat"; name: string }
  | UploadRequest
  | { type: "request"; id: number; op: "download"; name: string; offset: number }
  | { type: "request"; id: number; op: "delete"; name: string }
  | { type: "request"; id: number; op: "mkdir"; name: string }
  | { type: "request"; id: number; op: "rename"; name: string; to: string; overwrite: boolean }
  | { type: "request"; id: number; op: "partial"; name: string; size: number }
  | { type: "request"; id: number; op: "terminate" }
  | { type: "request"; id: number; op: "logout" };

/** An upload request. */
export interface UploadRequest {
  type: "request";
  id: number;
  op: "upload";
  name: string;
  size: number;
  overwrite: boolean;
  /** Modification time to give the file, ms since the epoch; the server's clock when absent. */
  mtime?: number;
  /** Keep what arrived if the connection breaks, so that a later upload can resume. */
  resumable: boolean;
  /** Continue from what a broken resumable upload of the same name and size left. */
  resume: boolean;
  /**
   * The data and trailer follow the request at once, without waiting for a
   * `continue` (the `eager-upload` feature); never together with `resume`.
   */
  eager: boolean;
}

/** Sent by the uploader right after the file data: the SHA-256 of what it sent. */
export interface Trailer {
  type: "trailer";
  id: number;
  sha256: string;
}

/** The server's go-ahead for an upload's data: send the file from byte `offset` on. */
export interface Continue {
  type: "continue";
  id: number;
  /** Bytes the server already holds from a resumed upload; 0 otherwise. */
  offset: number;
}

/** One directory entry in a listing. */
export interface Entry {
  name: string;
  type: "file" | "dir" | "link" | "other";
  size: number;
  /** Modification time, milliseconds since the Unix epoch. */
  mtime: number;
}

/** A batch of listing entries; any number precede a list's final reply. */
export interface Entries {
  type: "entries";
  id: number;
  entries: Entry[];
}

/** Announces a download's raw data, `size - offset` bytes, which follow it at once. */
export interface DataHeader {
  type: "data";
  id: number;
  /** The whole file's size. */
  size: number;
  /** Where the data starts: the download request's offset. */
  offset: number;
  mtime: number;
  mode: number;
}

/** The final reply to a request: success with its fields, or an error. */
export type Reply =
  | { type: "reply"; id: number; ok: true; [field: string]: unknown }
  | { type: "reply"; id: number; ok: false; error: { code: ErrorCode; message: string } };

/** A protocol violation; the sender closes the connection right after it. */
export interface Fatal {
  type: "fatal";
  code: ErrorCode;
  message: string;
}

/** A SHA-256 digest as the wire carries it: 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** Reads a required field of the given JSON type, or throws a protocol error. */
export function field<T extends "string" | "number" | "boolean" | "object">(
  message: Message,
  key: string,
  kind: T,
): T extends "string" ? string
  : T extends "number" ? number
  : T extends "boolean" ? boolean
  : Message {
  const value = message[key];
  if (typeof value !== kind || value === null) {
    throw new ProtocolError(`'${String(message.type)}' message needs ${kind} field '${key}'`);
  }
  // deno-lint-ignore no-explicit-any
  return value as any;
}

/** Reads a field that must be a non-negative safe integer. */
export function sizeField(message: Message, key: string): number {
  const value = field(message, key, "number");
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`field '${key}' must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** Reports whether a number is a modification time a `Date` can hold: whole ms, before or after 1970. */
export function isMtime(value: number): boolean {
  return Number.isInteger(value) && Math.abs(value) <= MAX_MTIME_MS;
}

/**
 * Reads a field that must be a modification time in ms since the epoch
 * (negative before 1970), within the range of a `Date`.
 */
export function mtimeField(message: Message, key: string): number {
  const value = field(message, key, "number");
  if (!isMtime(value)) throw new ProtocolError(mtimeRangeMessage(key, value));
  return value;
}

function mtimeRangeMessage(key: string, value: number): string {
  return `field '${key}' must be whole milliseconds within ${MAX_MTIME_MS} of the epoch, got ${value}`;
}

/**
 * Validates a client's request message. A malformed message (a field missing
 * or of the wrong type) throws a {@link ProtocolError}, which ends the
 * session; a well-formed request the server answers instead (an unknown op, a
 * field value out of range) throws an {@link UnknownOpError} or subclass
 * carrying the request's id.
 */
export function decodeRequest(message: Message): Request {
  if (message.type !== "request") {
    throw new ProtocolError(`expected a request, got '${String(message.type)}'`);
  }
  const id = sizeField(message, "id");
  const op = field(message, "op", "string");
  switch (op) {
    case "list":
    case "stat":
    case "delete":
    case "mkdir":
      return { type: "request", id, op, name: field(message, "name", "string") };
    case "download":
      return {
        type: "request",
        id,
        op,
        name: field(message, "name", "string"),
        offset: message.offset === undefined ? 0 : sizeField(message, "offset"),
      };
    case "rename":
      return {
        type: "request",
        id,
        op,
        name: field(message, "name", "string"),
        to: field(message, "to", "string"),
        overwrite: message.overwrite === true,
      };
    case "partial":
      return {
        type: "request",
        id,
        op,
        name: field(message, "name", "string"),
        size: sizeField(message, "size"),
      };
    case "upload": {
      const eager = message.eager === true;
      const resume = message.resume === true;
      // The sender of eager data cannot know the offset a resume would start from.
      if (eager && resume) throw new ProtocolError("an eager upload cannot resume");
      const mtime = message.mtime === undefined ? undefined : field(message, "mtime", "number");
      if (mtime !== undefined && !isMtime(mtime)) {
        // Eager data follows at once, and only the upload handler reads through it.
        if (eager) throw new ProtocolError(mtimeRangeMessage("mtime", mtime));
        throw new BadFieldError(id, mtimeRangeMessage("mtime", mtime));
      }
      return {
        type: "request",
        id,
        op,
        name: field(message, "name", "string"),
        size: sizeField(message, "size"),
        overwrite: message.overwrite === true,
        mtime,
        resumable: message.resumable === true,
        resume,
        eager,
      };
    }
    case "terminate":
    case "logout":
      return { type: "request", id, op };
    default:
      throw new UnknownOpError(id, op);
  }
}

/** A well-formed request for an operation this server does not know: answered, not fatal. */
export class UnknownOpError extends ProtocolError {
  readonly id: number;
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
  override readonly code: ErrorCode = "BAD_REQUEST";
  constructor(id: number, message: string) {
    super(id, "");
    this.message = message;
    this.name = "BadFieldError";
  }
}

/** Validates an upload trailer for request `id`. */
export function decodeTrailer(message: Message, id: number): Trailer {
  if (message.type !== "trailer" || message.id !== id) {
    throw new ProtocolError(`expected the trailer of request ${id}`);
  }
  const sha256 = field(message, "sha256", "string");
  if (!SHA256_HEX.test(sha256)) throw new ProtocolError("trailer sha256 is not 64 hex digits");
  return { type: "trailer", id, sha256 };
}

/** Validates a hello (either side's): its protocol version, software, and the client's token if any. */
export function decodeHello(
  message: Message,
): { protocol: number; software: string; token?: string; maxControlBytes?: number } {
  if (message.type !== "hello") {
    throw new ProtocolError(`expected hello, got '${String(message.type)}'`);
  }
  const hello: { protocol: number; software: string; token?: string; maxControlBytes?: number } = {
    protocol: field(message, "protocol", "number"),
    software: field(message, "software", "string").slice(0, 100),
  };
  // A token of any length (the frame limit bounds it) is passed on: one over
  // MAX_TOKEN_CHARS matches no configured token, so it is refused like any
  // wrong token (DENIED, after the throttle's wait), not as a malformed hello.
  if (message.token !== undefined) hello.token = field(message, "token", "string");
  // The peer's own limit on the control frames it reads; never below the protocol's floor.
  const limits = message.limits;
  if (typeof limits === "object" && limits !== null && !Array.isArray(limits)) {
    const announced = (limits as Message).maxControlBytes;
    if (Number.isSafeInteger(announced)) {
      hello.maxControlBytes = Math.max(MIN_ANNOUNCED_CONTROL_BYTES, announced as number);
    }
  }
  return hello;
}

/** Builds an error reply. */
export function errorReply(id: number, code: ErrorCode, message: string): Reply {
  return { type: "reply", id, ok: false, error: { code, message } };
}

/** Reads the error out of an error reply or a fatal message, tolerating unknown codes. */
export function decodeError(message: Message): { code: ErrorCode; message: string } {
  const body = message.type === "fatal" ? message : message.error;
  if (typeof body !== "object" || body === null) {
    throw new ProtocolError("error reply has no error");
  }
  const { code, message: text } = body as Record<string, unknown>;
  return {
    code: isErrorCode(code) ? code : "INTERNAL",
    message: typeof text === "string" ? text : "unknown error",
  };
}
