/**
 * The client's own checks, against a fake server written here: the real
 * `fts connect` process must refuse what a lying or foreign server sends,
 * whatever a real fts server would do.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EXIT_CONNECTION, EXIT_INTEGRITY, EXIT_OK } from "../cli/exit_codes.ts";
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import {
  MAX_CONTROL_BYTES,
  MAX_FILE_BYTES,
  MAX_NAME_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/limits.ts";
import { listTree, runClient } from "./_helpers.ts";

/** Messages the fake server reads from one client at most: a `get` sends a hello and two requests. */
const MAX_CLIENT_MESSAGES = 20;

/** More than one of the client's read buffers, so the data arrives in several chunks. */
const FILE_BYTES = 300_000;

/** What the fake server says. */
interface FakeServerScript {
  /** The protocol version its hello announces. */
  protocol: number;
  /** The bytes it sends for any download. */
  file: Uint8Array;
  /** The SHA-256 its final download reply claims. */
  sha256: string;
}

/** A fake server that takes one connection on loopback. */
interface FakeServer {
  port: number;
  /** Resolves with every message the client sent, once the client has gone. */
  messages: Promise<Message[]>;
  /**
   * Stops waiting for a connection. One already taken ends when the client
   * process does, since its end of the socket then closes.
   */
  close(): void;
}

function startFakeServer(script: FakeServerScript): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const messages = (async () => {
    const conn = await listener.accept();
    listener.close();
    try {
      return await converse(conn, script);
    } finally {
      conn.close();
    }
  })();
  return {
    port: listener.addr.port,
    messages,
    close() {
      try {
        listener.close();
      } catch {
        // Already closed: the connection was taken.
      }
    },
  };
}

/** Speaks the server's side of protocol/README.md until the client goes; returns what it sent. */
async function converse(conn: Deno.Conn, script: FakeServerScript): Promise<Message[]> {
  const reader = new FrameReader(conn);
  const send = (message: Message) => writeAll(conn, encodeFrame(message));
  const received: Message[] = [];
  const next = async (): Promise<Message | null> => {
    try {
      const message = await reader.readMessage();
      if (message !== null) received.push(message);
      return message;
    } catch (err) {
      // A client that gives up may reset the connection rather than close it.
      if (err instanceof Deno.errors.ConnectionReset) return null;
      throw err;
    }
  };
  await send({
    type: "hello",
    protocol: script.protocol,
    software: "fake/0.0.0",
    limits: {
      maxControlBytes: MAX_CONTROL_BYTES,
      maxFileBytes: MAX_FILE_BYTES,
      maxNameBytes: MAX_NAME_BYTES,
    },
    auth: "none",
    features: [],
  });
  if ((await next())?.type !== "hello") return received;
  // A foreign protocol's server would answer differently; this one waits for the client to leave.
  if (script.protocol === PROTOCOL_VERSION) {
    await send({ type: "reply", id: 0, ok: true, role: "read" });
  }
  for (let i = 0; i < MAX_CLIENT_MESSAGES; i++) {
    const request = await next();
    if (request === null) return received;
    const id = request.id;
    switch (request.op) {
      case "download": {
        const size = script.file.length;
        await send({ type: "data", id, size, offset: 0, mtime: 1764000000000, mode: 0o644 });
        await writeAll(conn, script.file);
        await send({ type: "reply", id, ok: true, size, sha256: script.sha256 });
        break;
      }
      case "logout":
        await send({ type: "reply", id, ok: true });
        break;
      default:
        await send({
          type: "reply",
          id,
          ok: false,
          error: { code: "UNSUPPORTED", message: `the fake server does not do ${request.op}` },
        });
    }
  }
  throw new Error(`the client sent more than ${MAX_CLIENT_MESSAGES} messages`);
}

/** Random bytes, with a run of NULs in the middle. */
function randomFile(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(i + 65536, size)));
  }
  bytes.fill(0, size / 2, size / 2 + 1000);
  return bytes;
}

function sha256Of(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** The download requests among what a client sent, by name and offset. */
function downloadsIn(messages: Message[]): { name: unknown; offset: unknown }[] {
  return messages
    .filter((m) => m.type === "request" && m.op === "download")
    .map((m) => ({ name: m.name, offset: m.offset }));
}

/** Runs `fts connect 127.0.0.1:PORT ARGS...` in a new empty directory against a fake server. */
async function runAgainst(script: FakeServerScript, args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "fts-fake-" });
  const fake = startFakeServer(script);
  try {
    const run = await runClient([`127.0.0.1:${fake.port}`, ...args], { cwd: dir });
    // A client that never connected would leave the fake server waiting for it.
    fake.close();
    const messages = await fake.messages;
    return { run, messages, files: await listTree(dir), dir };
  } finally {
    fake.close();
    await fake.messages.catch(() => {});
  }
}

Deno.test("get saves a download whose SHA-256 matches the fake server's reply", async () => {
  const file = randomFile(FILE_BYTES);
  const { run, messages, files, dir } = await runAgainst(
    { protocol: PROTOCOL_VERSION, file, sha256: sha256Of(file) },
    ["get", "report.bin"],
  );
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.deepEqual(downloadsIn(messages), [{ name: "report.bin", offset: 0 }]);
    assert.deepEqual(files, ["report.bin"]);
    assert.deepEqual(await Deno.readFile(join(dir, "report.bin")), file);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("get refuses a download whose data does not match the reply's SHA-256 and keeps nothing", async () => {
  const file = randomFile(FILE_BYTES);
  const other = file.slice();
  other[0] = other[0]! ^ 0xff;
  const { run, messages, files, dir } = await runAgainst(
    { protocol: PROTOCOL_VERSION, file, sha256: sha256Of(other) },
    ["get", "report.bin"],
  );
  try {
    assert.equal(run.code, EXIT_INTEGRITY, run.stderr);
    assert.match(run.stderr, /INTEGRITY: received data has SHA-256 [0-9a-f]{64}, the server sent/);
    assert.deepEqual(downloadsIn(messages), [{ name: "report.bin", offset: 0 }]);
    // Neither report.bin nor the partial .report.bin.fts-partial.
    assert.deepEqual(files, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect refuses a server that speaks another protocol version, sending no request", async () => {
  const file = randomFile(16);
  const { run, messages, files, dir } = await runAgainst(
    { protocol: PROTOCOL_VERSION + 1, file, sha256: sha256Of(file) },
    ["get", "report.bin"],
  );
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr);
    assert.match(run.stderr, new RegExp(`speaks fts protocol ${PROTOCOL_VERSION + 1}\\b`));
    assert.deepEqual(messages.map((m) => m.type), ["hello"]);
    assert.deepEqual(files, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
