/**
 * A server cannot crash, exhaust or hang the client: huge listings work,
 * endless ones and endless trees stop at named limits with a clear error,
 * and a server that goes silent is given up on after the reply timeout
 * while a slow transfer that keeps moving is not. Driven against the real
 * `fts connect` process and a fake server.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { EXIT_CONNECTION, EXIT_OK } from "../cli/exit_codes.ts";
import { MAX_LIST_ENTRIES } from "../client/connection.ts";
import { MAX_TREE_DEPTH, MAX_TREE_NAME_BYTES } from "../client/plan_tree.ts";
import type { Message } from "../protocol/frames.ts";
import { errorReply, type FakePeer, runAgainstFake, sendFile } from "./_fake_server.ts";

/** Entries per `entries` frame: each about 60 bytes, the frame well under 64 KiB. */
const ENTRIES_PER_FRAME = 800;

/** A listing that once overflowed the client's stack (a spread of every entry). */
const LARGE_LISTING_ENTRIES = 250_000;

/** Frames the endless listing sends at most: past the client's limit, so the limit must act. */
const ENDLESS_FRAMES = Math.ceil(MAX_LIST_ENTRIES / ENTRIES_PER_FRAME) + 50;

function entriesFrame(id: unknown, first: number, count: number): Message {
  const entries = [];
  for (let i = first; i < first + count; i++) {
    entries.push({ name: `f${String(i).padStart(7, "0")}`, type: "file", size: i, mtime: 0 });
  }
  return { type: "entries", id, entries };
}

/** Answers a list with `total` entries in frames. */
async function sendListing(request: Message, peer: FakePeer, total: number) {
  for (let first = 0; first < total; first += ENTRIES_PER_FRAME) {
    await peer.send(entriesFrame(request.id, first, Math.min(ENTRIES_PER_FRAME, total - first)));
  }
  await peer.send({ type: "reply", id: request.id, ok: true, count: total });
}

Deno.test(`ls shows a listing of ${LARGE_LISTING_ENTRIES} entries, in text and in --json`, async () => {
  const script = {
    async answer(request: Message, peer: FakePeer) {
      await sendListing(request, peer, LARGE_LISTING_ENTRIES);
    },
  };
  const text = await runAgainstFake(script, ["ls"]);
  const json = await runAgainstFake(script, ["--json", "ls"]);
  try {
    assert.equal(text.code, EXIT_OK, text.stderr.slice(0, 2000));
    assert.equal(text.stdout.trimEnd().split("\n").length, LARGE_LISTING_ENTRIES);
    assert.equal(json.code, EXIT_OK, json.stderr.slice(0, 2000));
    assert.equal(JSON.parse(json.stdout).entries.length, LARGE_LISTING_ENTRIES);
  } finally {
    await Deno.remove(text.base, { recursive: true });
    await Deno.remove(json.base, { recursive: true });
  }
});

Deno.test("ls stops an endless listing at MAX_LIST_ENTRIES with a clear error", async () => {
  const run = await runAgainstFake({
    async answer(request, peer) {
      // Names never repeat (a repeated name is refused on its own).
      for (let i = 0; i < ENDLESS_FRAMES; i++) {
        await peer.send(entriesFrame(request.id, i * ENTRIES_PER_FRAME, ENTRIES_PER_FRAME));
      }
      await peer.send({ type: "reply", id: request.id, ok: true, count: 0 });
    },
  }, ["ls"]);
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr.slice(0, 2000));
    assert.match(run.stderr, new RegExp(`more than ${MAX_LIST_ENTRIES} entries`));
    assert.equal(run.stdout, "");
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r stops at MAX_TREE_DEPTH when a directory lists itself, creating nothing", async () => {
  const run = await runAgainstFake({
    async answer(request, peer) {
      if (request.op !== "list") {
        await peer.send(errorReply(request, "UNSUPPORTED", "not here"));
        return;
      }
      await peer.send({
        type: "entries",
        id: request.id,
        entries: [{ name: "loop", type: "dir", size: 0, mtime: 0 }],
      });
      await peer.send({ type: "reply", id: request.id, ok: true, count: 1 });
    },
  }, ["get", "-r", "loop"]);
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.match(run.stderr, new RegExp(`more than ${MAX_TREE_DEPTH} directories deep`));
    assert.deepEqual(run.tree, ["cwd/"]);
    assert.equal(run.messages.filter((m) => m.op === "list").length, MAX_TREE_DEPTH);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

/** Levels of 255-byte directory names above the wide directory: full names near 4096 bytes. */
const LONG_CHAIN_DEPTH = 15;
const LONG_SEGMENT = "s".repeat(255);
/** Bytes of each file's full name in the wide directory. */
const WIDE_NAME_BYTES = LONG_CHAIN_DEPTH * 256 + 200;
/** Files in the wide directory: just past MAX_TREE_NAME_BYTES of full names. */
const WIDE_FILES = Math.ceil(MAX_TREE_NAME_BYTES / WIDE_NAME_BYTES) + 100;
/** Entries per frame of 200-byte names: the frame well under 64 KiB. */
const WIDE_PER_FRAME = 150;

Deno.test("get -r stops at MAX_TREE_NAME_BYTES of names, creating nothing", async () => {
  const chain = Array.from({ length: LONG_CHAIN_DEPTH }, () => LONG_SEGMENT);
  const run = await runAgainstFake({
    async answer(request, peer) {
      if (request.op !== "list") {
        await peer.send(errorReply(request, "UNSUPPORTED", "not here"));
        return;
      }
      const depth = request.name === "" ? 0 : String(request.name).split("/").length;
      if (depth < LONG_CHAIN_DEPTH) {
        await peer.send({
          type: "entries",
          id: request.id,
          entries: [{ name: LONG_SEGMENT, type: "dir", size: 0, mtime: 0 }],
        });
        await peer.send({ type: "reply", id: request.id, ok: true, count: 1 });
        return;
      }
      for (let first = 0; first < WIDE_FILES; first += WIDE_PER_FRAME) {
        const entries = [];
        for (let i = first; i < Math.min(first + WIDE_PER_FRAME, WIDE_FILES); i++) {
          const name = `f${String(i).padStart(7, "0")}`.padEnd(199, "x");
          entries.push({ name, type: "file", size: 1, mtime: 0 });
        }
        await peer.send({ type: "entries", id: request.id, entries });
      }
      await peer.send({ type: "reply", id: request.id, ok: true, count: WIDE_FILES });
    },
  }, ["get", "-r", chain[0]!, "out"]);
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.match(run.stderr, new RegExp(`add up to more than ${MAX_TREE_NAME_BYTES} bytes`));
    assert.deepEqual(run.tree, ["cwd/"]);
    assert.deepEqual(run.messages.filter((m) => m.op === "download"), []);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("a server silent after the handshake is given up on after --reply-timeout", async () => {
  const run = await runAgainstFake({
    async answer(_request, peer) {
      await peer.stall();
      return "stop";
    },
  }, ["--reply-timeout", "1", "ls"]);
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr);
    assert.match(run.stderr, /the server sent nothing for 1 s/);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("a silent server is given up on while the client waits to send, too", async () => {
  // The server takes the upload request, says go ahead, and then reads nothing.
  const run = await runAgainstFake(
    {
      async answer(request, peer) {
        await peer.send({ type: "continue", id: request.id, offset: 0 });
        await peer.stall();
        return "stop";
      },
    },
    ["--reply-timeout", "1", "put", "big.bin"],
    {
      async prepare(cwd) {
        // Far more than the socket buffers on both ends hold.
        await Deno.writeFile(`${cwd}/big.bin`, new Uint8Array(64 * 1024 * 1024));
      },
    },
  );
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr);
    assert.match(run.stderr, /the server (sent|took) nothing for 1 s/);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

/** Pieces a slow download arrives in, each after a pause shorter than the reply timeout. */
const SLOW_PIECES = 20;
const SLOW_PAUSE_MS = 100;

Deno.test("a download that keeps moving is never cut off by the reply timeout", async () => {
  const bytes = new Uint8Array(SLOW_PIECES * 1000).fill(7);
  const run = await runAgainstFake({
    async answer(request, peer) {
      if (request.op !== "download") {
        await sendFile(request, peer, bytes);
        return;
      }
      // The bytes and their true hash, the bytes sent slowly.
      const sha256 = createHash("sha256").update(bytes).digest("hex");
      const id = request.id;
      await peer.send({ type: "data", id, size: bytes.length, offset: 0, mtime: 0, mode: 0o644 });
      for (let i = 0; i < SLOW_PIECES; i++) {
        await new Promise((resolve) => setTimeout(resolve, SLOW_PAUSE_MS));
        await peer.sendBytes(bytes.subarray(i * 1000, (i + 1) * 1000));
      }
      await peer.send({ type: "reply", id, ok: true, size: bytes.length, sha256 });
    },
  }, ["--reply-timeout", "1", "get", "slow.bin"]);
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.deepEqual(await Deno.readFile(`${run.cwd}/slow.bin`), bytes);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});
