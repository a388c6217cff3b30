/**
 * Protocol violations against the live server. Each case runs on its own
 * connection; after each, a fresh client must still get a successful list:
 * whatever one peer sends, it affects that connection only.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import {
  assertFreshClientLists,
  listTree,
  RawClient,
  rawList,
  readWithin,
  type RunningServer,
  startServer,
  waitFor,
} from "./_helpers.ts";

/**
 * What each server's root holding no user files looks like: the server's
 * state directory and whatever it keeps there (its empty temporary directory,
 * perhaps a lock file), as seen just after the server started.
 */
const emptyRoots = new WeakMap<RunningServer, string[]>();

/** The tree of `server`'s root as it was when it started, holding no user files. */
function emptyRoot(server: RunningServer): string[] {
  const tree = emptyRoots.get(server);
  assert.ok(tree !== undefined, "server not started with startClean()");
  return tree;
}

/** Starts a server, checks that its root holds only the state directory, and records it. */
async function startClean(): Promise<RunningServer> {
  const server = await startServer();
  try {
    const tree = await listTree(server.root);
    assert.ok(tree.includes(".fts/tmp/"), JSON.stringify(tree));
    assert.ok(tree.every((path) => path.startsWith(".fts/")), JSON.stringify(tree));
    assert.deepEqual(tree.filter((path) => path.startsWith(".fts/tmp/")), [
      ".fts/tmp/",
      ".fts/tmp/SERVER/",
    ]);
    emptyRoots.set(server, tree);
    return server;
  } catch (err) {
    await server.stop();
    throw err;
  }
}

const encoder = new TextEncoder();

/** A frame whose body is exactly `body`, whatever it holds. */
function rawFrame(body: Uint8Array | string): Uint8Array {
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  const frame = new Uint8Array(4 + bytes.length);
  new DataView(frame.buffer).setUint32(0, bytes.length);
  frame.set(bytes, 4);
  return frame;
}

/** Asserts that the server closed the connection: a clean end of stream, or a reset. */
async function assertClosed(client: RawClient, what: string): Promise<void> {
  try {
    const message = await readWithin(client);
    assert.equal(
      message,
      null,
      `${what}: expected the connection closed, got ${JSON.stringify(message)}`,
    );
  } catch (err) {
    // The server closing with our unread bytes in its buffer sends a reset.
    if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
  }
}

/** Reads a `fatal` message (with `code` if given), then asserts the connection closes. */
async function assertFatal(client: RawClient, code: string | null, what: string): Promise<Message> {
  const message = await readWithin(client);
  assert.ok(message !== null, `${what}: connection closed without a fatal message`);
  assert.equal(message.type, "fatal", `${what}: ${JSON.stringify(message)}`);
  if (code !== null) assert.equal(message.code, code, `${what}: ${JSON.stringify(message)}`);
  assert.equal(typeof message.message, "string", what);
  await assertClosed(client, what);
  return message;
}

/** Asserts that a list on `client` succeeds; returns the names listed. */
async function assertListOk(client: RawClient, id: number): Promise<string[]> {
  const { names, reply } = await rawList(client, id);
  assert.equal(reply.type, "reply", JSON.stringify(reply));
  assert.equal(reply.id, id);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  return names;
}

/** Opens a connection, runs `body` on it, closes it, then checks that a fresh client can list. */
async function onOwnConnection(
  server: RunningServer,
  handshake: boolean,
  body: (client: RawClient) => Promise<void>,
): Promise<void> {
  const client = await RawClient.open(server.port, handshake);
  try {
    await body(client);
  } finally {
    client.close();
  }
  await assertFreshClientLists(server);
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Starts an upload of `size` bytes as `name` and asserts the server asked for the data. */
async function beginUpload(client: RawClient, id: number, name: string, size: number) {
  await client.send({ type: "request", id, op: "upload", name, size, overwrite: false });
  assert.deepEqual(await readWithin(client), { type: "continue", id, offset: 0 });
}

Deno.test("server refuses a client hello of another protocol version with VERSION, then closes", async () => {
  const server = await startClean();
  try {
    await onOwnConnection(server, false, async (client) => {
      await client.send({ type: "hello", protocol: 999, software: "raw-test" });
      const reply = await readWithin(client);
      assert.ok(reply !== null);
      assert.equal(reply.type, "reply", JSON.stringify(reply));
      assert.equal(reply.id, 0);
      assert.equal(reply.ok, false);
      assert.equal((reply.error as { code: string }).code, "VERSION");
      await assertClosed(client, "after VERSION");
    });
  } finally {
    await server.stop();
  }
});

Deno.test("server refuses a frame header declaring 1 GiB with a fatal TOO_LARGE, then closes", async () => {
  const server = await startClean();
  try {
    for (const handshake of [true, false]) {
      await onOwnConnection(server, handshake, async (client) => {
        await client.sendBytes(new Uint8Array([0x40, 0, 0, 0]));
        await assertFatal(client, "TOO_LARGE", `1 GiB header (handshake ${handshake})`);
      });
    }
  } finally {
    await server.stop();
  }
});

Deno.test("server refuses frame bodies that are not JSON objects with a fatal BAD_REQUEST", async () => {
  const server = await startClean();
  try {
    const bodies: [string, Uint8Array | string][] = [
      ["not JSON", "not json"],
      ["invalid UTF-8", new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])],
      ["a JSON array", '[{"type":"request","id":1,"op":"list","name":""}]'],
      ["a JSON number", "42"],
      ["JSON null", "null"],
      ["a JSON string", '"list"'],
      ["an empty body", ""],
    ];
    for (const [label, body] of bodies) {
      await onOwnConnection(server, true, async (client) => {
        await client.sendBytes(rawFrame(body));
        await assertFatal(client, "BAD_REQUEST", label);
      });
    }
  } finally {
    await server.stop();
  }
});

Deno.test("server refuses a request sent in place of the hello with a fatal", async () => {
  const server = await startClean();
  try {
    await onOwnConnection(server, false, async (client) => {
      await client.send({ type: "request", id: 1, op: "list", name: "" });
      await assertFatal(client, "BAD_REQUEST", "request before hello");
    });
    assert.deepEqual(await listTree(server.root), emptyRoot(server));
  } finally {
    await server.stop();
  }
});

Deno.test("server answers an unknown op with UNSUPPORTED and keeps the connection", async () => {
  const server = await startClean();
  try {
    await onOwnConnection(server, true, async (client) => {
      await client.send({ type: "request", id: 7, op: "frobnicate", name: "x" });
      const reply = await readWithin(client);
      assert.ok(reply !== null);
      assert.equal(reply.type, "reply", JSON.stringify(reply));
      assert.equal(reply.id, 7);
      assert.equal(reply.ok, false);
      assert.equal((reply.error as { code: string }).code, "UNSUPPORTED");
      assert.deepEqual(await assertListOk(client, 8), []);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("server refuses requests with missing or wrongly typed fields with a fatal BAD_REQUEST", async () => {
  const server = await startClean();
  try {
    const requests: [string, Message][] = [
      ["no id", { type: "request", op: "list", name: "" }],
      ["id -1", { type: "request", id: -1, op: "list", name: "" }],
      ["id 'x'", { type: "request", id: "x", op: "list", name: "" }],
      ["id 1.5", { type: "request", id: 1.5, op: "list", name: "" }],
      ["no op", { type: "request", id: 1, name: "" }],
      ["op 5", { type: "request", id: 1, op: 5, name: "" }],
      ["upload size -1", { type: "request", id: 1, op: "upload", name: "f", size: -1 }],
      ["upload size 1.5", { type: "request", id: 1, op: "upload", name: "f", size: 1.5 }],
      ["upload size '5'", { type: "request", id: 1, op: "upload", name: "f", size: "5" }],
      ["upload without size", { type: "request", id: 1, op: "upload", name: "f" }],
      ["upload size 2^53", { type: "request", id: 1, op: "upload", name: "f", size: 2 ** 53 }],
      ["upload name 5", { type: "request", id: 1, op: "upload", name: 5, size: 5 }],
      ["list name 5", { type: "request", id: 1, op: "list", name: 5 }],
      ["list without name", { type: "request", id: 1, op: "list" }],
      ["download name null", { type: "request", id: 1, op: "download", name: null }],
      ["delete name []", { type: "request", id: 1, op: "delete", name: [] }],
    ];
    for (const [label, request] of requests) {
      await onOwnConnection(server, true, async (client) => {
        await client.send(request);
        await assertFatal(client, "BAD_REQUEST", label);
      });
    }
    assert.deepEqual(await listTree(server.root), emptyRoot(server));
  } finally {
    await server.stop();
  }
});

Deno.test("server keeps serving after a peer closes in the middle of a frame header", async () => {
  const server = await startClean();
  try {
    for (const handshake of [true, false]) {
      await onOwnConnection(server, handshake, async (client) => {
        await client.sendBytes(new Uint8Array([0, 0]));
      });
    }
    // And in the middle of a body.
    await onOwnConnection(server, true, async (client) => {
      await client.sendBytes(
        rawFrame('{"type":"request","id":1,"op":"list","name":""}').subarray(0, 10),
      );
    });
  } finally {
    await server.stop();
  }
});

Deno.test("server refuses an upload whose trailer SHA-256 differs with INTEGRITY and publishes nothing", async () => {
  const server = await startClean();
  try {
    await onOwnConnection(server, true, async (client) => {
      const bytes = encoder.encode("some data");
      // A nested name: the directories it needs must not be left behind either.
      await beginUpload(client, 1, "new/deeper/f.txt", bytes.length);
      await client.sendBytes(bytes);
      await client.send({ type: "trailer", id: 1, sha256: sha256Hex(encoder.encode("other")) });
      const reply = await readWithin(client);
      assert.ok(reply !== null);
      assert.equal(reply.type, "reply", JSON.stringify(reply));
      assert.equal(reply.id, 1);
      assert.equal(reply.ok, false);
      assert.equal((reply.error as { code: string }).code, "INTEGRITY");
      assert.deepEqual(await listTree(server.root), emptyRoot(server));

      // The connection still works: it lists, and the same upload done right succeeds.
      assert.deepEqual(await assertListOk(client, 2), []);
      await beginUpload(client, 3, "f.txt", bytes.length);
      await client.sendBytes(bytes);
      await client.send({ type: "trailer", id: 3, sha256: sha256Hex(bytes) });
      const ok = await readWithin(client);
      assert.equal(ok?.ok, true, JSON.stringify(ok));
      assert.equal(await Deno.readTextFile(join(server.root, "f.txt")), "some data");
      assert.deepEqual(await listTree(server.root), [...emptyRoot(server), "f.txt"]);
    });
  } finally {
    await server.stop();
  }
});

Deno.test("server discards an upload whose client closes halfway through the data", async () => {
  const server = await startClean();
  try {
    await onOwnConnection(server, true, async (client) => {
      await beginUpload(client, 1, "half.bin", 100_000);
      await client.sendBytes(new Uint8Array(50_000).fill(7));
    });
    assert.ok(
      await waitFor(
        async () => (await listTree(server.root)).join() === emptyRoot(server).join(),
        10_000,
      ),
      `left behind: ${await listTree(server.root)}`,
    );
    assert.deepEqual(await assertFreshClientLists(server), []);
  } finally {
    await server.stop();
  }
});

Deno.test("server treats data past an upload's declared size as a frame and closes with a fatal", async () => {
  const server = await startClean();
  try {
    // The 10 extra bytes are read where the trailer's header should be:
    // 'AAAA' declares a frame of 0x41414141 bytes, zeros an empty body.
    for (const fill of [0x41, 0]) {
      await onOwnConnection(server, true, async (client) => {
        const bytes = encoder.encode("12345");
        await beginUpload(client, 1, "extra.bin", bytes.length);
        const sent = new Uint8Array(bytes.length + 10).fill(fill);
        sent.set(bytes);
        await client.sendBytes(sent);
        await client.send({ type: "trailer", id: 1, sha256: sha256Hex(bytes) }).catch(() => {});
        await assertFatal(client, fill === 0 ? "BAD_REQUEST" : "TOO_LARGE", `extra 0x${fill}`);
        assert.deepEqual(await listTree(server.root), emptyRoot(server));
      });
    }
  } finally {
    await server.stop();
  }
});

Deno.test("server keeps serving while 50 connections never send their hello", async () => {
  const server = await startClean();
  const silent: RawClient[] = [];
  try {
    const started = Date.now();
    for (let i = 0; i < 50; i++) silent.push(await RawClient.open(server.port, false));
    assert.deepEqual(await assertFreshClientLists(server), []);
    // Well before the handshake timeout could have freed anything.
    assert.ok(Date.now() - started < 5_000, `took ${Date.now() - started} ms`);
    for (const client of silent.splice(0)) client.close();
    assert.deepEqual(await assertFreshClientLists(server), []);
  } finally {
    for (const client of silent) client.close();
    await server.stop();
  }
});
