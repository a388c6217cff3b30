/**
 * Two wire names for one file: JSON can carry a lone UTF-16 surrogate
 * (`"a\ud800b"`) in perfectly valid UTF-8, and the file system stores it as
 * U+FFFD, so `a\ud800b` and `a\ufffdb` would name the same file. Such names
 * are refused with BAD_NAME. Invalid UTF-8 in a frame (which a lenient
 * decoder would also turn into U+FFFD) is a protocol violation.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import { writeAll } from "../protocol/frames.ts";
import {
  EMPTY_ROOT,
  listTree,
  RawClient,
  readWithin,
  type RunningServer,
  startServer,
} from "./_helpers.ts";

/** Names holding a UTF-16 surrogate without its partner, with a label for messages. */
const LONE_SURROGATE_NAMES: [label: string, name: string][] = [
  ["lone high surrogate", "a\ud800b"],
  ["lone low surrogate", "a\udc00b"],
  ["pair in the wrong order", "a\udc00\ud800b"],
  ["high surrogate at the end", "a\ud83d"],
  ["lone surrogate in a directory", "d\udfff/x"],
];

/** Sends a request and returns the next message, bounded in time. */
async function requestWithin(client: RawClient, fields: Message): Promise<Message | null> {
  await client.send({ type: "request", ...fields });
  return await readWithin(client);
}

/** Asserts that `reply` is an error reply to request `id` with `code`. */
function assertRefused(reply: Message | null, id: number, code: string, what: string) {
  assert.ok(reply !== null, `${what}: connection closed instead of a reply`);
  assert.equal(reply.type, "reply", `${what}: ${JSON.stringify(reply)}`);
  assert.equal(reply.id, id, what);
  assert.equal(reply.ok, false, `${what}: ${JSON.stringify(reply)}`);
  assert.equal((reply.error as { code?: unknown }).code, code, `${what}: ${JSON.stringify(reply)}`);
}

/** Uploads `text` as `name` through the whole sequence and returns the final reply. */
async function upload(client: RawClient, id: number, name: string, text: string) {
  const bytes = new TextEncoder().encode(text);
  const go = await requestWithin(client, {
    id,
    op: "upload",
    name,
    size: bytes.length,
    overwrite: false,
  });
  if (go?.type !== "continue") return go;
  await client.sendBytes(bytes);
  await client.send({
    type: "trailer",
    id,
    sha256: createHash("sha256").update(bytes).digest("hex"),
  });
  return await readWithin(client);
}

Deno.test("server refuses names with lone surrogates with BAD_NAME and creates nothing", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      let id = 0;
      for (const [label, name] of LONE_SURROGATE_NAMES) {
        // JSON.stringify escapes the lone surrogate: the frame itself is valid UTF-8.
        assertRefused(await upload(client, ++id, name, "x"), id, "BAD_NAME", `upload of ${label}`);
        assertRefused(
          await requestWithin(client, { id: ++id, op: "mkdir", name }),
          id,
          "BAD_NAME",
          `mkdir of ${label}`,
        );
        assertRefused(
          await requestWithin(client, { id: ++id, op: "stat", name }),
          id,
          "BAD_NAME",
          `stat of ${label}`,
        );
      }
      assert.deepEqual(await listTree(server.root), EMPTY_ROOT);

      // The name a lone surrogate would have been stored under is free, and
      // a rename onto a lone surrogate name is refused too.
      const stored = await upload(client, ++id, "a\ufffdb", "replacement character");
      assert.equal(stored?.ok, true, JSON.stringify(stored));
      assertRefused(
        await requestWithin(client, {
          id: ++id,
          op: "rename",
          name: "a\ufffdb",
          to: "a\ud800b",
          overwrite: true,
        }),
        id,
        "BAD_NAME",
        "rename onto a lone surrogate",
      );
      // A proper surrogate pair is an ordinary character.
      const emoji = await upload(client, ++id, "smile \ud83d\ude00.txt", "emoji");
      assert.equal(emoji?.ok, true, JSON.stringify(emoji));
      assert.deepEqual(await listTree(server.root), [...EMPTY_ROOT, "a\ufffdb", "smile 😀.txt"]);
      assert.equal(await Deno.readTextFile(join(server.root, "a\ufffdb")), "replacement character");
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

/** Sends a frame whose body is `body` exactly, bypassing the JSON encoder. */
async function sendRawFrame(client: RawClient, body: Uint8Array): Promise<void> {
  const frame = new Uint8Array(4 + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, 4);
  await writeAll(client.conn, frame);
}

/** Reads until the server closes, returning what came first; bounded in count. */
async function readUntilClosed(client: RawClient): Promise<Message | null> {
  const first = await readWithin(client).catch(() => null);
  for (let i = 0; i < 10; i++) {
    const next = await readWithin(client).catch(() => null);
    if (next === null) return first;
  }
  throw new Error("the server kept talking after a protocol violation");
}

async function assertInvalidUtf8Refused(server: RunningServer, bytes: number[], label: string) {
  const client = await RawClient.open(server.port);
  try {
    const encoder = new TextEncoder();
    const body = new Uint8Array([
      ...encoder.encode('{"type":"request","id":1,"op":"mkdir","name":"a'),
      ...bytes,
      ...encoder.encode('b"}'),
    ]);
    await sendRawFrame(client, body);
    const fatal = await readUntilClosed(client);
    assert.equal(fatal?.type, "fatal", `${label}: ${JSON.stringify(fatal)}`);
    assert.equal(fatal?.code, "BAD_REQUEST", label);
  } finally {
    client.close();
  }
}

Deno.test("server refuses a frame with invalid UTF-8 in a name as a protocol violation", async () => {
  const server = await startServer();
  try {
    await assertInvalidUtf8Refused(server, [0xff], "byte 0xff");
    await assertInvalidUtf8Refused(server, [0xc3], "truncated two-byte sequence");
    await assertInvalidUtf8Refused(server, [0xed, 0xa0, 0x80], "UTF-8 encoded surrogate");
    await assertInvalidUtf8Refused(server, [0xc0, 0xaf], "overlong '/'");
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    // The server goes on serving others.
    const client = await RawClient.open(server.port);
    try {
      const made = await requestWithin(client, { id: 1, op: "mkdir", name: "a\ufffdb" });
      assert.equal(made?.ok, true, JSON.stringify(made));
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});
