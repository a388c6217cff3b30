/**
 * The protocol as a contract: every message either side may send survives
 * encode → FrameReader → decode unchanged; the decoders refuse each malformed
 * field with the right error class; and the send functions' types refuse a
 * message the protocol does not define (checked by `deno check`, below).
 */

import { strict as assert } from "node:assert";
import { ProtocolError } from "../protocol/errors.ts";
import {
  type ByteSource,
  encodeClientMessage,
  encodeServerMessage,
  FrameReader,
  type Message,
} from "../protocol/frames.ts";
import { MAX_MTIME_MS } from "../protocol/limits.ts";
import {
  BadFieldError,
  type ChecksumName,
  type ClientMessage,
  decodeClientMessage,
  decodeReplyFields,
  decodeServerMessage,
  type OkReply,
  type ReplyFields,
  type ReplyOp,
  type ServerMessage,
  type UncheckedOkReply,
  UnknownOpError,
} from "../protocol/messages.ts";

const HEX = "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03";
/** An XXH3-128 digest as the wire writes it: 32 lowercase hex digits. */
const XXH = "99aa06d3014798d86001c324468d497f";

/** Reads one message back from `frame`, handed over a few bytes at a time. */
async function readBack(frame: Uint8Array): Promise<Message> {
  let position = 0;
  const source: ByteSource = {
    read(buffer) {
      if (position >= frame.length) return Promise.resolve(null);
      const count = Math.min(buffer.length, 3, frame.length - position);
      buffer.set(frame.subarray(position, position + count));
      position += count;
      return Promise.resolve(count);
    },
  };
  const reader = new FrameReader(source);
  const message = await reader.readMessage();
  assert.ok(message !== null);
  assert.equal(await reader.readMessage(), null, "one frame, one message");
  return message;
}

/** Runs `decode` and asserts it throws exactly `kind` (not a subclass), returning the error. */
function assertRefused<E extends Error>(
  decode: () => unknown,
  kind: new (...args: never[]) => E,
  what: string,
): E {
  try {
    decode();
  } catch (err) {
    assert.equal((err as Error).constructor, kind, `${what}: ${String(err)}`);
    return err as E;
  }
  assert.fail(`${what}: accepted`);
}

const CLIENT_MESSAGES: ClientMessage[] = [
  { type: "hello", protocol: 1, software: "fts/0.1.0" },
  {
    type: "hello",
    protocol: 1,
    software: "fts/0.1.0",
    token: "7Jc2pX0vQm4sLr9TzWn1yHk8FbEd3GaU",
    limits: { maxControlBytes: 65536, maxNameBytes: 4096 },
    checksum: "xxh3-128",
  },
  { type: "request", id: 1, op: "list", name: "" },
  { type: "request", id: 2, op: "stat", name: "a/b.txt" },
  {
    type: "request",
    id: 3,
    op: "upload",
    name: "ü/\u00e9.bin",
    size: 1048576,
    overwrite: false,
    mtime: -MAX_MTIME_MS,
    resumable: true,
    resume: false,
    eager: false,
  },
  {
    type: "request",
    id: 4,
    op: "upload",
    name: "small",
    size: 0,
    overwrite: true,
    mtime: undefined,
    resumable: false,
    resume: false,
    eager: true,
  },
  { type: "request", id: 5, op: "download", name: "a.bin", offset: 10 },
  { type: "request", id: 6, op: "delete", name: "old" },
  { type: "request", id: 7, op: "mkdir", name: "new/dir" },
  { type: "request", id: 8, op: "rename", name: "a", to: "b", overwrite: true },
  { type: "request", id: 9, op: "partial", name: "big", size: Number.MAX_SAFE_INTEGER },
  { type: "request", id: 11, op: "chmod", name: "run.sh", mode: 0o755 },
  { type: "request", id: 12, op: "df" },
  { type: "request", id: 14, op: "partials" },
  { type: "request", id: 17, op: "digests", name: "" },
  { type: "request", id: 18, op: "digests", name: "docs/2026" },
  { type: "request", id: 15, op: "drop-partial", name: "a/big.bin" },
  { type: "request", id: 16, op: "drop-partial", name: "big", size: 5 << 20 },
  {
    type: "request",
    id: 13,
    op: "upload",
    name: "run.sh",
    size: 10,
    overwrite: false,
    mtime: undefined,
    resumable: true,
    resume: false,
    eager: false,
    mode: 0o700,
  },
  { type: "request", id: 10, op: "terminate" },
  { type: "request", id: 0, op: "logout" },
  { type: "trailer", id: 3, digest: { algorithm: "sha256", hex: HEX } },
  { type: "trailer", id: 3, digest: { algorithm: "xxh3-128", hex: XXH } },
];

Deno.test("decodeClientMessage() returns every client message as encodeClientMessage() sent it", async () => {
  for (const message of CLIENT_MESSAGES) {
    // A trailer is read in a session of its digest's checksum.
    const checksum = message.type === "trailer" ? message.digest.algorithm : undefined;
    const raw = await readBack(encodeClientMessage(message));
    const decoded = decodeClientMessage(raw, message.type, checksum);
    // JSON leaves an undefined field out; the decoder sets it back.
    assert.deepEqual(decoded, message, JSON.stringify(message));
  }
});

Deno.test("a digest travels as a field named after its checksum, sha256 exactly as before negotiation", async () => {
  const sha256 = { type: "trailer", id: 3, digest: { algorithm: "sha256", hex: HEX } } as const;
  assert.deepEqual(await readBack(encodeClientMessage(sha256)), {
    type: "trailer",
    id: 3,
    sha256: HEX,
  });
  const xxh3 = { type: "trailer", id: 3, digest: { algorithm: "xxh3-128", hex: XXH } } as const;
  assert.deepEqual(await readBack(encodeClientMessage(xxh3)), {
    type: "trailer",
    id: 3,
    "xxh3-128": XXH,
  });
  const reply = {
    type: "reply",
    id: 4,
    ok: true,
    size: 0,
    digest: { algorithm: "xxh3-128", hex: XXH },
  } as const;
  assert.deepEqual(await readBack(encodeServerMessage(reply)), {
    type: "reply",
    id: 4,
    ok: true,
    size: 0,
    "xxh3-128": XXH,
  });
});

Deno.test("a trailer is decoded with the session's checksum: another's digest is malformed", () => {
  const cases: [string, ChecksumName, Message][] = [
    ["sha256 in an xxh3-128 session", "xxh3-128", { type: "trailer", id: 1, sha256: HEX }],
    ["xxh3-128 in a sha256 session", "sha256", { type: "trailer", id: 1, "xxh3-128": XXH }],
    ["both digests", "xxh3-128", { type: "trailer", id: 1, "xxh3-128": XXH, sha256: HEX }],
    ["xxh3-128 of 64 digits", "xxh3-128", { type: "trailer", id: 1, "xxh3-128": HEX }],
    ["xxh3-128 of 31 digits", "xxh3-128", { type: "trailer", id: 1, "xxh3-128": XXH.slice(1) }],
    ["xxh3-128 upper case", "xxh3-128", {
      type: "trailer",
      id: 1,
      "xxh3-128": XXH.toUpperCase(),
    }],
    ["xxh3-128 a number", "xxh3-128", { type: "trailer", id: 1, "xxh3-128": 5 }],
  ];
  for (const [what, checksum, raw] of cases) {
    assertRefused(() => decodeClientMessage(raw, "trailer", checksum), ProtocolError, what);
  }
});

Deno.test("decodeClientMessage() fills in what a request may leave out, and drops unknown fields", () => {
  assert.deepEqual(
    decodeClientMessage({ type: "request", id: 1, op: "upload", name: "a", size: 2, extra: 1 }),
    {
      type: "request",
      id: 1,
      op: "upload",
      name: "a",
      size: 2,
      overwrite: false,
      mtime: undefined,
      resumable: false,
      resume: false,
      eager: false,
    },
  );
  assert.deepEqual(
    decodeClientMessage({ type: "request", id: 1, op: "download", name: "a" }, "request"),
    { type: "request", id: 1, op: "download", name: "a", offset: 0 },
  );
  assert.deepEqual(
    decodeClientMessage({ type: "request", id: 1, op: "rename", name: "a", to: "b" }),
    { type: "request", id: 1, op: "rename", name: "a", to: "b", overwrite: false },
  );
  // A client's limits are advice: what is not a safe integer is left out, the rest kept as sent.
  assert.deepEqual(
    decodeClientMessage({
      type: "hello",
      protocol: 1,
      software: "x".repeat(300),
      limits: { maxControlBytes: -5, maxNameBytes: "4096", maxFileBytes: 1.5 },
    }),
    { type: "hello", protocol: 1, software: "x".repeat(100), limits: { maxControlBytes: -5 } },
  );
  assert.deepEqual(
    decodeClientMessage({ type: "hello", protocol: 1, software: "s", limits: "none" }),
    { type: "hello", protocol: 1, software: "s" },
  );
});

Deno.test("decodeClientMessage() refuses each malformed field with a ProtocolError", () => {
  const upload = { type: "request", id: 1, op: "upload", name: "a", size: 1 };
  const cases: [string, Message][] = [
    ["unknown type", { type: "goodbye", id: 1 }],
    ["no type", { id: 1, op: "list", name: "" }],
    ["id missing", { type: "request", op: "list", name: "" }],
    ["id negative", { type: "request", id: -1, op: "list", name: "" }],
    ["id fractional", { type: "request", id: 1.5, op: "list", name: "" }],
    ["id a string", { type: "request", id: "1", op: "list", name: "" }],
    ["id past 2^53", { type: "request", id: 2 ** 53, op: "list", name: "" }],
    ["op missing", { type: "request", id: 1, name: "" }],
    ["op a number", { type: "request", id: 1, op: 3, name: "" }],
    ["name missing", { type: "request", id: 1, op: "stat" }],
    ["name a number", { type: "request", id: 1, op: "delete", name: 5 }],
    ["name null", { type: "request", id: 1, op: "mkdir", name: null }],
    ["size missing", { ...upload, size: undefined }],
    ["size negative", { ...upload, size: -1 }],
    ["size a string", { ...upload, size: "1" }],
    ["size past 2^53", { ...upload, size: 2 ** 53 }],
    ["mtime a string", { ...upload, mtime: "0" }],
    ["eager mtime out of range", { ...upload, eager: true, mtime: MAX_MTIME_MS + 1 }],
    ["eager and resume", { ...upload, eager: true, resume: true }],
    ["overwrite a string", { ...upload, overwrite: "yes" }],
    ["resumable null", { ...upload, resumable: null }],
    ["eager a number", { ...upload, eager: 1 }],
    ["rename overwrite a string", {
      type: "request",
      id: 1,
      op: "rename",
      name: "a",
      to: "b",
      overwrite: "true",
    }],
    ["offset negative", { type: "request", id: 1, op: "download", name: "a", offset: -1 }],
    ["offset a string", { type: "request", id: 1, op: "download", name: "a", offset: "0" }],
    ["to missing", { type: "request", id: 1, op: "rename", name: "a" }],
    ["partial size missing", { type: "request", id: 1, op: "partial", name: "a" }],
    ["chmod mode missing", { type: "request", id: 1, op: "chmod", name: "a" }],
    ["chmod mode a string", { type: "request", id: 1, op: "chmod", name: "a", mode: "755" }],
    ["trailer id missing", { type: "trailer", sha256: HEX }],
    ["trailer sha256 missing", { type: "trailer", id: 1 }],
    ["trailer sha256 upper case", { type: "trailer", id: 1, sha256: HEX.toUpperCase() }],
    ["trailer sha256 short", { type: "trailer", id: 1, sha256: HEX.slice(1) }],
    ["hello protocol missing", { type: "hello", software: "s" }],
    ["hello protocol a string", { type: "hello", protocol: "1", software: "s" }],
    ["hello software missing", { type: "hello", protocol: 1 }],
    ["hello token a number", { type: "hello", protocol: 1, software: "s", token: 7 }],
    ["hello checksum a list", { type: "hello", protocol: 1, software: "s", checksum: ["sha256"] }],
    ["hello checksum unknown", { type: "hello", protocol: 1, software: "s", checksum: "md5" }],
  ];
  for (const [what, raw] of cases) {
    assertRefused(() => decodeClientMessage(raw), ProtocolError, what);
  }
  const unknown = assertRefused(
    () => decodeClientMessage({ type: "hello", protocol: 1, software: "s", checksum: "md5" }),
    ProtocolError,
    "an unknown checksum",
  );
  assert.equal(unknown.code, "UNSUPPORTED");
  assertRefused(
    () => decodeClientMessage({ type: "trailer", id: 1, sha256: HEX }, "request"),
    ProtocolError,
    "a trailer where a request must come",
  );
  assertRefused(
    () => decodeClientMessage({ type: "request", id: 1, op: "logout" }, "hello"),
    ProtocolError,
    "a request where the hello must come",
  );
});

Deno.test("decodeClientMessage() refuses an unknown op and an out-of-range mtime with the request's id", () => {
  const unknown = assertRefused(
    () => decodeClientMessage({ type: "request", id: 9, op: "chown", name: "a" }),
    UnknownOpError,
    "unknown op",
  );
  assert.equal(unknown.id, 9);
  assert.equal(unknown.code, "UNSUPPORTED");
  for (const mtime of [MAX_MTIME_MS + 1, -MAX_MTIME_MS - 1, 1.5]) {
    const bad = assertRefused(
      () =>
        decodeClientMessage({ type: "request", id: 4, op: "upload", name: "a", size: 1, mtime }),
      BadFieldError,
      `mtime ${mtime}`,
    );
    assert.equal(bad.id, 4);
    assert.equal(bad.code, "BAD_REQUEST");
  }
});

const SERVER_MESSAGES: ServerMessage[] = [
  {
    type: "hello",
    protocol: 1,
    software: "fts/0.1.0",
    limits: { maxControlBytes: 65536, maxFileBytes: Number.MAX_SAFE_INTEGER, maxNameBytes: 4096 },
    auth: "token",
    features: ["eager-upload"],
    checksums: ["xxh3-128", "sha256"],
  },
  {
    type: "hello",
    protocol: 1,
    software: "fts/0.1.0",
    limits: { maxControlBytes: 65536, maxFileBytes: 0, maxNameBytes: 4096 },
    auth: "none",
    features: [],
    checksums: ["sha256"],
  },
  { type: "continue", id: 1, offset: 0 },
  { type: "continue", id: 1, offset: 4096 },
  {
    type: "entries",
    id: 2,
    entries: [
      { name: "notes.txt", type: "file", size: 6, mtime: 1764021000000 },
      { name: "old", type: "dir", size: 0, mtime: -MAX_MTIME_MS },
      { name: "l", type: "link", size: 3, mtime: 0 },
      { name: "fifo", type: "other", size: 0, mtime: 0 },
    ],
  },
  { type: "entries", id: 2, entries: [] },
  {
    type: "partials",
    id: 5,
    partials: [
      { name: "a/big5.bin", size: 5 << 20, held: 1 << 20, mtime: 1764021000000 },
      { name: "ü.bin", size: 10, held: 10, mtime: 0 },
    ],
  },
  { type: "partials", id: 5, partials: [] },
  {
    type: "digests",
    id: 6,
    checksum: "sha256",
    digests: [{ name: "a.txt", size: 6, mtime: 1764021000000, hex: HEX }],
  },
  { type: "digests", id: 6, checksum: "xxh3-128", digests: [] },
  { type: "data", id: 3, size: 6, offset: 0, mtime: 1764021000000, mode: 0o644 },
  { type: "data", id: 3, size: 6, offset: 6, mtime: 0, mode: 0 },
  {
    type: "reply",
    id: 4,
    ok: false,
    error: { code: "BAD_NAME", message: 'bad name "../etc/passwd"' },
  },
  { type: "fatal", code: "TOO_LARGE", message: "control frame of 70000 bytes exceeds the limit" },
];

Deno.test("decodeServerMessage() returns every server message as encodeServerMessage() sent it", async () => {
  for (const message of SERVER_MESSAGES) {
    const decoded = decodeServerMessage(await readBack(encodeServerMessage(message)));
    assert.deepEqual(decoded, message, JSON.stringify(message));
  }
});

/** A success reply to each op, with its fields. */
const OK_REPLIES: { [O in ReplyOp]: OkReply<O> } = {
  hello: { type: "reply", id: 0, ok: true, role: "admin" },
  list: { type: "reply", id: 1, ok: true, count: 3 },
  stat: {
    type: "reply",
    id: 2,
    ok: true,
    entry: { name: "a", type: "file", size: 6, mtime: 0, mode: 0o600, sha256: HEX },
  },
  upload: { type: "reply", id: 3, ok: true, size: 6, digest: { algorithm: "sha256", hex: HEX } },
  download: {
    type: "reply",
    id: 4,
    ok: true,
    size: 0,
    digest: { algorithm: "xxh3-128", hex: XXH },
  },
  delete: { type: "reply", id: 5, ok: true },
  mkdir: { type: "reply", id: 6, ok: true },
  rename: { type: "reply", id: 7, ok: true },
  partial: { type: "reply", id: 8, ok: true, held: 0 },
  partials: { type: "reply", id: 14, ok: true, count: 2 },
  digests: { type: "reply", id: 17, ok: true, count: 1 },
  "drop-partial": { type: "reply", id: 15, ok: true, count: 1, bytes: 1 << 20 },
  chmod: { type: "reply", id: 11, ok: true },
  df: {
    type: "reply",
    id: 12,
    ok: true,
    freeBytes: 2 ** 40,
    reserveBytes: 0,
    quotaBytes: null,
    usedBytes: 0,
  },
  ping: { type: "reply", id: 13, ok: true },
  terminate: { type: "reply", id: 9, ok: true },
  logout: { type: "reply", id: 10, ok: true },
};

/** Decodes `raw` as a success reply. */
function okReply(raw: Message): UncheckedOkReply {
  const reply = decodeServerMessage(raw, "reply");
  assert.ok(reply.ok, JSON.stringify(reply));
  return reply;
}

Deno.test("decodeReplyFields() returns each op's reply fields as the server sent them", async () => {
  for (const op of Object.keys(OK_REPLIES) as ReplyOp[]) {
    const { type: _type, id, ok: _ok, ...fields } = OK_REPLIES[op];
    const reply = okReply(await readBack(encodeServerMessage(OK_REPLIES[op])));
    assert.equal(reply.id, id);
    // A transfer's reply is read in a session of its digest's checksum.
    const checksum = "digest" in fields ? fields.digest.algorithm : undefined;
    const decoded: ReplyFields[typeof op] = decodeReplyFields(op, reply, checksum);
    assert.deepEqual(decoded, fields, op);
  }
  // A stat of a directory carries neither mode nor sha256; unknown fields are dropped.
  const dir = { name: "d", type: "dir", size: 0, mtime: 5 } as const;
  assert.deepEqual(
    decodeReplyFields("stat", okReply({ type: "reply", id: 1, ok: true, entry: dir, x: 1 })),
    { entry: dir },
  );
});

Deno.test("decodeServerMessage() tolerates what a later server may send", () => {
  assert.deepEqual(decodeServerMessage({ type: "fatal", code: "NEW_CODE" }), {
    type: "fatal",
    code: "INTERNAL",
    message: "unknown error",
  });
  assert.deepEqual(
    decodeServerMessage({ type: "reply", id: 1, ok: false, error: { code: 5, message: "m" } }),
    { type: "reply", id: 1, ok: false, error: { code: "INTERNAL", message: "m" } },
  );
  assert.deepEqual(
    decodeServerMessage({
      type: "entries",
      id: 1,
      entries: [{ name: "s", type: "socket", size: 0, mtime: 0, inode: 7 }],
    }),
    { type: "entries", id: 1, entries: [{ name: "s", type: "other", size: 0, mtime: 0 }] },
  );
  assert.deepEqual(decodeServerMessage({ type: "continue", id: 1 }), {
    type: "continue",
    id: 1,
    offset: 0,
  });
  assert.deepEqual(decodeServerMessage({ type: "data", id: 1, size: 2 }), {
    type: "data",
    id: 1,
    size: 2,
    offset: 0,
  });
  const hello = decodeServerMessage({
    type: "hello",
    protocol: 2,
    software: "future",
    limits: { maxControlBytes: 1, maxFileBytes: 2, maxNameBytes: 3, maxRate: 4 },
    auth: "none",
  });
  // No checksums: a server from before negotiation, which the client answers naming none.
  assert.deepEqual(hello, {
    type: "hello",
    protocol: 2,
    software: "future",
    limits: { maxControlBytes: 1, maxFileBytes: 2, maxNameBytes: 3 },
    auth: "none",
    features: [],
  });
  const later = decodeServerMessage({
    type: "hello",
    protocol: 1,
    software: "later",
    limits: { maxControlBytes: 1, maxFileBytes: 2, maxNameBytes: 3 },
    auth: "none",
    checksums: ["blake3", "sha256", "xxh3-128"],
  });
  assert.deepEqual(later.type === "hello" && later.checksums, ["sha256", "xxh3-128"]);
});

Deno.test("decodeServerMessage() refuses each malformed field with a ProtocolError", () => {
  const limits = { maxControlBytes: 65536, maxFileBytes: 100, maxNameBytes: 4096 };
  const hello = { type: "hello", protocol: 1, software: "s", limits, auth: "none" };
  const entry = { name: "a", type: "file", size: 1, mtime: 0 };
  const entries = (bad: Message) => ({ type: "entries", id: 1, entries: [entry, bad] });
  const data = { type: "data", id: 1, size: 10, offset: 0, mtime: 0, mode: 0o644 };
  const held = { name: "a/b.bin", size: 10, held: 4, mtime: 0 };
  const partials = (bad: Message) => ({ type: "partials", id: 1, partials: [held, bad] });
  const fileDigest = { name: "a", size: 1, mtime: 0, hex: HEX };
  const digests = (bad: Message) => ({
    type: "digests",
    id: 1,
    checksum: "sha256",
    digests: [fileDigest, bad],
  });
  const cases: [string, Message][] = [
    ["unknown type", { type: "progress", id: 1 }],
    ["no type", { id: 1, ok: true }],
    ["a request", { type: "request", id: 1, op: "list", name: "" }],
    ["hello protocol missing", { ...hello, protocol: undefined }],
    ["hello software a number", { ...hello, software: 1 }],
    ["hello limits missing", { ...hello, limits: undefined }],
    ["hello limits an array", { ...hello, limits: [] }],
    ["hello maxFileBytes negative", { ...hello, limits: { ...limits, maxFileBytes: -1 } }],
    ["hello maxControlBytes a string", { ...hello, limits: { ...limits, maxControlBytes: "1" } }],
    ["hello maxNameBytes missing", { ...hello, limits: { ...limits, maxNameBytes: undefined } }],
    ["hello auth unknown", { ...hello, auth: "password" }],
    ["hello auth missing", { ...hello, auth: undefined }],
    ["hello features not a list", { ...hello, features: "eager-upload" }],
    ["hello features not names", { ...hello, features: [1] }],
    ["hello checksums not a list", { ...hello, checksums: "sha256" }],
    ["hello checksums not names", { ...hello, checksums: ["sha256", 1] }],
    ["continue id missing", { type: "continue", offset: 0 }],
    ["continue offset negative", { type: "continue", id: 1, offset: -1 }],
    ["continue offset a string", { type: "continue", id: 1, offset: "0" }],
    ["entries missing", { type: "entries", id: 1 }],
    ["entries not a list", { type: "entries", id: 1, entries: { 0: entry } }],
    ["entries id negative", { type: "entries", id: -1, entries: [] }],
    ["entry not an object", { type: "entries", id: 1, entries: [entry, "a"] }],
    ["entry a list", { type: "entries", id: 1, entries: [[]] }],
    ["entry name missing", entries({ ...entry, name: undefined })],
    ["entry name empty", entries({ ...entry, name: "" })],
    ["entry name ..", entries({ ...entry, name: ".." })],
    ["entry name with /", entries({ ...entry, name: "a/b" })],
    ["entry name with NUL", entries({ ...entry, name: "a\0" })],
    ["entry type a number", entries({ ...entry, type: 1 })],
    ["entry type missing", entries({ ...entry, type: undefined })],
    ["entry size negative", entries({ ...entry, size: -1 })],
    ["entry size fractional", entries({ ...entry, size: 0.5 })],
    ["entry mtime out of range", entries({ ...entry, mtime: MAX_MTIME_MS + 1 })],
    ["entry mtime a string", entries({ ...entry, mtime: "0" })],
    ["entry mtime missing", entries({ ...entry, mtime: undefined })],
    ["partials missing", { type: "partials", id: 1 }],
    ["digests of an unknown checksum", { type: "digests", id: 1, checksum: "md5", digests: [] }],
    ["digests missing", { type: "digests", id: 1, checksum: "sha256" }],
    ["file digest of another length", digests({ ...fileDigest, hex: HEX.slice(0, 32) })],
    ["file digest in capitals", digests({ ...fileDigest, hex: HEX.toUpperCase() })],
    ["file digest name with a slash", digests({ ...fileDigest, name: "../etc" })],
    ["file digest size negative", digests({ ...fileDigest, size: -1 })],
    ["partials not a list", { type: "partials", id: 1, partials: { 0: held } }],
    ["held partial not an object", { type: "partials", id: 1, partials: [held, "a"] }],
    ["held partial name missing", partials({ ...held, name: undefined })],
    ["held partial name absolute", partials({ ...held, name: "/etc/passwd" })],
    ["held partial name with ..", partials({ ...held, name: "a/../../b" })],
    ["held partial name in .fts", partials({ ...held, name: ".fts/lock" })],
    ["held partial name with an escape", partials({ ...held, name: "a\u001b[2J" })],
    ["held partial held past its size", partials({ ...held, held: 11 })],
    ["held partial size negative", partials({ ...held, size: -1 })],
    ["held partial mtime a string", partials({ ...held, mtime: "0" })],
    ["data size missing", { ...data, size: undefined }],
    ["data size past 2^53", { ...data, size: 2 ** 53 }],
    ["data offset past size", { ...data, offset: 11 }],
    ["data offset negative", { ...data, offset: -1 }],
    ["data mtime fractional", { ...data, mtime: 1.5 }],
    ["data mtime out of range", { ...data, mtime: -MAX_MTIME_MS - 1 }],
    ["data mode negative", { ...data, mode: -1 }],
    ["data id a string", { ...data, id: "1" }],
    ["reply id missing", { type: "reply", ok: true }],
    ["reply id fractional", { type: "reply", id: 0.5, ok: true }],
    ["error reply without error", { type: "reply", id: 1, ok: false }],
    ["reply ok missing and no error", { type: "reply", id: 1 }],
    ["reply sha256 malformed", { type: "reply", id: 1, ok: true, sha256: "abc" }],
    ["reply xxh3-128 malformed", { type: "reply", id: 1, ok: true, "xxh3-128": HEX }],
  ];
  for (const [what, raw] of cases) {
    assertRefused(() => decodeServerMessage(raw), ProtocolError, what);
  }
  assertRefused(
    () => decodeServerMessage({ type: "continue", id: 1, offset: 0 }, "data"),
    ProtocolError,
    "a continue where data must come",
  );
});

Deno.test("decodeReplyFields() refuses each malformed field with a ProtocolError", () => {
  const entry = { name: "a", type: "file", size: 1, mtime: 0 };
  const cases: [string, ReplyOp, Message, ChecksumName?][] = [
    ["hello role missing", "hello", {}],
    ["hello role unknown", "hello", { role: "root" }],
    ["list count missing", "list", {}],
    ["list count negative", "list", { count: -1 }],
    ["stat entry missing", "stat", {}],
    ["stat entry a string", "stat", { entry: "a" }],
    ["stat entry bad size", "stat", { entry: { ...entry, size: "1" } }],
    ["stat entry bad name", "stat", { entry: { ...entry, name: "." } }],
    ["stat mode negative", "stat", { entry: { ...entry, mode: -1 } }],
    ["stat sha256 malformed", "stat", { entry: { ...entry, sha256: HEX.slice(2) } }],
    ["upload size missing", "upload", { sha256: HEX }],
    ["upload sha256 missing", "upload", { size: 1 }],
    ["download size negative", "download", { size: -1, sha256: HEX }],
    ["download sha256 a number", "download", { size: 1, sha256: 5 }],
    ["upload sha256 in an xxh3-128 session", "upload", { size: 1, sha256: HEX }, "xxh3-128"],
    ["upload both digests", "upload", { size: 1, sha256: HEX, "xxh3-128": XXH }, "xxh3-128"],
    ["download xxh3-128 in a sha256 session", "download", { size: 1, "xxh3-128": XXH }, "sha256"],
    ["download xxh3-128 short", "download", { size: 1, "xxh3-128": XXH.slice(2) }, "xxh3-128"],
    ["partial held missing", "partial", {}],
    ["partial held fractional", "partial", { held: 0.5 }],
  ];
  for (const [what, op, fields, checksum] of cases) {
    const reply: UncheckedOkReply = { ...fields, type: "reply", id: 1, ok: true };
    assertRefused(() => decodeReplyFields(op, reply, checksum), ProtocolError, what);
  }
});

Deno.test("encodeServerMessage() refuses a message over the receiver's limit with TOO_LARGE", () => {
  const message: ServerMessage = { type: "fatal", code: "INTERNAL", message: "x".repeat(2000) };
  const refused = assertRefused(() => encodeServerMessage(message, 1024), ProtocolError, "over");
  assert.equal(refused.code, "TOO_LARGE");
  assert.ok(encodeServerMessage(message, 4096).length > 2000);
});

/**
 * Messages the protocol does not define. Each line below fails to type-check,
 * and `@ts-expect-error` says so: were one to type-check (the contract grown
 * loose), the directive would be unused and `deno check` of this file would
 * fail. At run time nothing checks them: that is the decoders' job.
 */
function messagesTheContractRefuses(reply: UncheckedOkReply): unknown[] {
  const id = 1;
  return [
    // A misspelt field: 'ofset' for 'offset'.
    // @ts-expect-error: 'ofset' does not exist in a download request
    encodeClientMessage({ type: "request", id, op: "download", name: "a", offset: 0, ofset: 0 }),
    // A missing required field: a partial request's 'size'.
    // @ts-expect-error: property 'size' is missing
    encodeClientMessage({ type: "request", id, op: "partial", name: "a" }),
    // An op the protocol does not have.
    // @ts-expect-error: '"remove"' is not an op
    encodeClientMessage({ type: "request", id, op: "remove", name: "a" }),
    // A message type a client does not send.
    // @ts-expect-error: a client does not send 'continue'
    encodeClientMessage({ type: "continue", id, offset: 0 }),
    // A field of the wrong type.
    // @ts-expect-error: 'size' is a number
    encodeClientMessage({ type: "request", id, op: "partial", name: "a", size: "1" }),
    // The server's side: a misspelt field.
    // @ts-expect-error: 'ofset' does not exist in a continue
    encodeServerMessage({ type: "continue", id, ofset: 0 }),
    // A reply field no op defines.
    // @ts-expect-error: 'cuont' is not a field of any reply
    encodeServerMessage({ type: "reply", id, ok: true, cuont: 3 }),
    // An error code outside the closed set.
    // @ts-expect-error: 'OOPS' is not an ErrorCode
    encodeServerMessage({ type: "fatal", code: "OOPS", message: "" }),
    // A list reply without its count.
    // @ts-expect-error: property 'count' is missing
    ((listed: OkReply<"list"> = { type: "reply", id, ok: true }) => listed)(),
    // A digest in the wire's form: the typed trailer carries a Digest.
    // @ts-expect-error: 'sha256' does not exist in a trailer
    encodeClientMessage({ type: "trailer", id, sha256: "" }),
    // A checksum the protocol does not have.
    // @ts-expect-error: '"md5"' is not a ChecksumName
    encodeClientMessage({ type: "trailer", id, digest: { algorithm: "md5", hex: "" } }),
    // An upload reply read for a field only a partial reply has.
    // @ts-expect-error: 'held' does not exist in an upload reply's fields
    decodeReplyFields("upload", reply).held,
  ];
}

Deno.test("encodeClientMessage() and encodeServerMessage() accept only the protocol's messages (deno check)", () => {
  // The checks are the compiler's; at run time the calls just encode.
  const reply = okReply({ type: "reply", id: 1, ok: true, size: 1, sha256: HEX });
  const refused = messagesTheContractRefuses(reply);
  assert.equal(refused.length, 12);
});
