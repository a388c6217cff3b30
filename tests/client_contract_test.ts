/**
 * The client on the protocol contract, against a fake server: what it sends
 * is exactly the typed message (an upload's `eager` only when true), what it
 * receives is decoded before use (a malformed message closes the session),
 * and its own advice is added to the server's errors where a command of the
 * client can act on them (`--force` for put and rename, nothing for mkdir).
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { EXIT_CONNECTION, EXIT_OK, EXIT_OPERATION_FAILED } from "../cli/exit_codes.ts";
import type { Message } from "../protocol/frames.ts";
import { errorReply, type FakeServerScript, runAgainstFake, sendFile } from "./_fake_server.ts";

const PAYLOAD = new TextEncoder().encode("server data\n");

/** A server that refuses every request with EXISTS and `message`. */
function takenServer(message: string): FakeServerScript {
  return {
    async answer(request, peer) {
      await peer.send(errorReply(request, "EXISTS", message));
    },
  };
}

/** Runs one command against `script` with a local file `a.txt` in the working directory. */
async function runWithFile(script: FakeServerScript, args: string[]) {
  const run = await runAgainstFake(script, args, {
    prepare: (cwd) => Deno.writeTextFile(join(cwd, "a.txt"), "local\n"),
  });
  await Deno.remove(run.base, { recursive: true });
  return run;
}

function requestsIn(messages: Message[]): Message[] {
  return messages.filter((message) => message.type === "request");
}

Deno.test("put adds the client's --force advice to an EXISTS whose message has none", async () => {
  const run = await runWithFile(takenServer(`"a.txt" already exists`), ["put", "a.txt"]);
  assert.equal(run.code, EXIT_OPERATION_FAILED, run.stderr);
  assert.match(run.stderr, /EXISTS: "a\.txt" already exists \(use --force to overwrite\)$/m);
});

Deno.test("rename adds the --force advice to EXISTS; mkdir, which has no --force, adds none", async () => {
  const renamed = await runWithFile(takenServer(`"b" already exists`), ["rename", "a", "b"]);
  assert.equal(renamed.code, EXIT_OPERATION_FAILED, renamed.stderr);
  assert.match(renamed.stderr, /EXISTS: "b" already exists \(use --force to overwrite\)$/m);
  const made = await runWithFile(takenServer(`"d" already exists`), ["mkdir", "d"]);
  assert.equal(made.code, EXIT_OPERATION_FAILED, made.stderr);
  assert.match(made.stderr, /EXISTS: "d" already exists$/m);
});

Deno.test("the --force advice is not repeated when the server's message already gives it", async () => {
  const run = await runWithFile(
    takenServer(`"a.txt" already exists (use --force to overwrite)`),
    ["put", "a.txt"],
  );
  assert.equal(run.code, EXIT_OPERATION_FAILED, run.stderr);
  assert.equal(run.stderr.match(/--force/g)?.length, 1, run.stderr);
});

Deno.test("an upload request that is not eager carries no eager field, and its fields are the contract's", async () => {
  const run = await runWithFile(takenServer("taken"), ["put", "a.txt", "remote.txt"]);
  assert.equal(run.code, EXIT_OPERATION_FAILED, run.stderr);
  // (A list of the target's directory comes first: is remote.txt a directory to put a.txt in?)
  const upload = requestsIn(run.messages).find((request) => request.op === "upload");
  assert.deepEqual(upload, {
    type: "request",
    id: 2,
    op: "upload",
    name: "remote.txt",
    size: 6,
    overwrite: false,
    resumable: true,
    resume: false,
  });
});

Deno.test("get -p refuses a data header without an mtime and keeps nothing; get without -p saves it", async () => {
  const script: FakeServerScript = {
    async answer(request, peer) {
      if (request.op !== "download") {
        await peer.send(errorReply(request, "UNSUPPORTED", "not here"));
        return;
      }
      // A real fts server always sends mtime; the protocol leaves it optional.
      await peer.send({ type: "data", id: request.id, size: PAYLOAD.length, offset: 0 });
      await peer.sendBytes(PAYLOAD);
      const sha256 = createHash("sha256").update(PAYLOAD).digest("hex");
      await peer.send({ type: "reply", id: request.id, ok: true, size: PAYLOAD.length, sha256 });
    },
  };
  const preserved = await runAgainstFake(script, ["get", "-p", "f.bin"]);
  try {
    assert.notEqual(preserved.code, EXIT_OK, preserved.stderr);
    assert.match(preserved.stderr, /no mtime/);
    assert.deepEqual(preserved.tree, ["cwd/"]);
  } finally {
    await Deno.remove(preserved.base, { recursive: true });
  }
  const plain = await runAgainstFake(script, ["get", "f.bin"]);
  try {
    assert.equal(plain.code, EXIT_OK, plain.stderr);
    assert.deepEqual(await Deno.readFile(join(plain.cwd, "f.bin")), PAYLOAD);
  } finally {
    await Deno.remove(plain.base, { recursive: true });
  }
});

Deno.test("a malformed message from the server is a protocol error that closes the session", async () => {
  const script: FakeServerScript = {
    async answer(request, peer) {
      if (request.op === "download") {
        await peer.send({ type: "data", id: request.id, size: -1, offset: 0 });
        return "stop";
      }
      if (request.op === "upload") {
        await peer.send({ type: "continue", id: request.id, offset: "0" });
        return "stop";
      }
      await sendFile(request, peer, PAYLOAD);
    },
  };
  const got = await runAgainstFake(script, ["get", "f.bin"]);
  try {
    assert.equal(got.code, EXIT_CONNECTION, got.stderr);
    assert.match(got.stderr, /protocol error from the server: .*size.*; the session was closed/);
    assert.deepEqual(got.tree, ["cwd/"]);
  } finally {
    await Deno.remove(got.base, { recursive: true });
  }
  const put = await runWithFile(script, ["put", "a.txt"]);
  assert.equal(put.code, EXIT_CONNECTION, put.stderr);
  assert.match(put.stderr, /protocol error from the server: .*offset.*; the session was closed/);
});
