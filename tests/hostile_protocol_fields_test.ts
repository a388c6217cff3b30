/**
 * Field values in well-formed messages: a bad value in a request is that
 * request's error reply and the session goes on; only a malformed message
 * (a field of the wrong type, bytes where a frame should be) ends it. A time
 * before 1970 is a valid time; a token that is too long is a wrong token.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import { MAX_MTIME_MS, MAX_TOKEN_CHARS, PROTOCOL_VERSION } from "../protocol/limits.ts";
import { checkToken } from "../server/tokens.ts";
import {
  EMPTY_ROOT,
  listTree,
  RawClient,
  rawList,
  readWithin,
  runCommand,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** Sends a request and returns the next message, bounded in time. */
async function requestWithin(client: RawClient, fields: Message): Promise<Message | null> {
  await client.send({ type: "request", ...fields });
  return await readWithin(client);
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

/** One day in milliseconds. */
const DAY_MS = 24 * 60 * 60 * 1000;

Deno.test("upload with a negative mtime (before 1970) is accepted and the file keeps that time", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      const bytes = new TextEncoder().encode("moon landing");
      const cases: [name: string, mtime: number][] = [
        ["1969.txt", Date.UTC(1969, 6, 20, 20, 17)],
        ["epoch-minus-one-day.txt", -DAY_MS],
        // Within a 32-bit time_t, which some file systems still store.
        ["1950.txt", Date.UTC(1950, 0, 1)],
      ];
      let id = 0;
      for (const [name, mtime] of cases) {
        id++;
        const go = await requestWithin(client, {
          id,
          op: "upload",
          name,
          size: bytes.length,
          overwrite: false,
          mtime,
        });
        assert.deepEqual(go, { type: "continue", id, offset: 0 }, name);
        await client.sendBytes(bytes);
        const sha256 = createHash("sha256").update(bytes).digest("hex");
        await client.send({ type: "trailer", id, sha256 });
        const reply = await readWithin(client);
        assert.equal(reply?.ok, true, `${name}: ${JSON.stringify(reply)}`);
        const info = await Deno.stat(join(server.root, name));
        assert.equal(info.mtime?.getTime(), mtime, name);
      }
      const { reply } = await rawList(client, ++id);
      assert.equal(reply.ok, true, JSON.stringify(reply));
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("put -p of a local file from before 1970 keeps its time on the server", async () => {
  const server = await startServer();
  try {
    const mtime = Date.UTC(1960, 4, 1);
    const local = join(server.dir, "old.txt");
    await Deno.writeTextFile(local, "old");
    await Deno.utime(local, new Date(), new Date(mtime));
    const run = await runCommand(server, ["put", "-p", "old.txt"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await Deno.stat(join(server.root, "old.txt"))).mtime?.getTime(), mtime);
  } finally {
    await server.stop();
  }
});

Deno.test("get -p of a file from before 1970 keeps its time here, and ls shows it", async () => {
  const server = await startServer();
  try {
    const mtime = Date.UTC(1960, 4, 1);
    const remote = join(server.root, "old.txt");
    await Deno.writeTextFile(remote, "old");
    await Deno.utime(remote, new Date(), new Date(mtime));
    const listed = await runCommand(server, ["--json", "ls"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`"mtime":${mtime}`));
    const run = await runCommand(server, ["get", "-p", "old.txt", "copy.txt"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal((await Deno.stat(join(server.dir, "copy.txt"))).mtime?.getTime(), mtime);
  } finally {
    await server.stop();
  }
});

Deno.test("upload with an mtime outside the Date range gets BAD_REQUEST and the session goes on", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      const bad = [MAX_MTIME_MS + 1, -MAX_MTIME_MS - 1, 1e300, -1e300, 1.5, -0.25];
      let id = 0;
      for (const mtime of bad) {
        id++;
        const reply = await requestWithin(client, {
          id,
          op: "upload",
          name: "x.txt",
          size: 1,
          overwrite: false,
          mtime,
        });
        assert.equal(reply?.type, "reply", `mtime ${mtime}: ${JSON.stringify(reply)}`);
        assert.equal(reply?.id, id);
        assert.equal(reply?.ok, false);
        assert.equal((reply?.error as { code: string }).code, "BAD_REQUEST", `mtime ${mtime}`);
      }
      assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
      // The edges of the range are valid times.
      for (const mtime of [MAX_MTIME_MS, -MAX_MTIME_MS]) {
        const go = await requestWithin(client, {
          id: ++id,
          op: "upload",
          name: `edge${mtime}.txt`,
          size: 0,
          overwrite: false,
          mtime,
        });
        assert.equal(go?.type, "continue", `mtime ${mtime}: ${JSON.stringify(go)}`);
        await client.send({
          type: "trailer",
          id,
          sha256: createHash("sha256").update(new Uint8Array()).digest("hex"),
        });
        const reply = await readWithin(client);
        assert.equal(reply?.ok, true, `mtime ${mtime}: ${JSON.stringify(reply)}`);
      }
      const made = await requestWithin(client, { id: ++id, op: "mkdir", name: "still-here" });
      assert.equal(made?.ok, true, JSON.stringify(made));
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("an eager upload with an mtime outside the range is a protocol violation", async () => {
  // Its data follows the request at once; the session cannot tell where it ends.
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      await client.send({
        type: "request",
        id: 1,
        op: "upload",
        name: "x.txt",
        size: 1,
        overwrite: false,
        eager: true,
        mtime: 1e300,
      });
      const fatal = await readUntilClosed(client);
      assert.equal(fatal?.type, "fatal", JSON.stringify(fatal));
      assert.equal(fatal?.code, "BAD_REQUEST");
      assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("an mtime that is not a number is a malformed request: protocol violation", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      await client.send({
        type: "request",
        id: 1,
        op: "upload",
        name: "x.txt",
        size: 1,
        overwrite: false,
        mtime: "yesterday",
      });
      const fatal = await readUntilClosed(client);
      assert.equal(fatal?.type, "fatal", JSON.stringify(fatal));
      assert.equal(fatal?.code, "BAD_REQUEST");
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("a hello with a token over the token limit gets DENIED, as a wrong token does", async () => {
  const server = await startServer([], { auth: true });
  try {
    // Just over the limit, and as large as a control frame allows.
    for (const length of [MAX_TOKEN_CHARS + 88, 60_000]) {
      const client = await RawClient.open(server.port, false);
      try {
        await client.send({
          type: "hello",
          protocol: PROTOCOL_VERSION,
          software: "raw-test",
          token: "t".repeat(length),
        });
        const reply = await readWithin(client, 30_000);
        assert.equal(reply?.type, "reply", `${length}: ${JSON.stringify(reply)}`);
        assert.equal(reply?.id, 0);
        assert.equal(reply?.ok, false);
        assert.equal((reply?.error as { code: string }).code, "DENIED", `${length}`);
      } finally {
        client.close();
      }
    }
    // Refused like any wrong token: after the throttle's wait, which doubles.
    const denials = () => [...server.log().matchAll(/auth DENIED \(delayed (\d+)ms\)/g)];
    // The log line follows the reply.
    assert.ok(await waitFor(() => denials().length === 2), server.log());
    const delays = denials().map((m) => Number(m[1]));
    assert.ok(delays[1]! > delays[0]!, server.log());
    // The right token still works.
    const client = await RawClient.open(server.port, true, server.token!);
    client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("checkToken() refuses a configured token over the limit a hello may carry", () => {
  checkToken("k".repeat(MAX_TOKEN_CHARS), "--token");
  assert.throws(() => checkToken("k".repeat(MAX_TOKEN_CHARS + 1), "--token"), /at most 512/);
});
