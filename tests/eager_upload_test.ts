/**
 * Eager uploads (the `eager-upload` hello feature): the data follows the
 * request at once, so many small files stream back to back on one
 * connection. A refused eager upload must still be read through, so that
 * the next request on the same connection is understood.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import {
  EAGER_UPLOAD_FEATURE,
  IF_UNCHANGED_FEATURE,
  KEEPALIVE_FEATURE,
} from "../protocol/limits.ts";
import {
  assertFreshClientLists,
  eagerUpload,
  EMPTY_ROOT,
  listTree,
  RawClient,
  readWithin,
  runClient,
  sha256File,
  sha256Hex,
  startServer,
  writeRandomFile,
} from "./_helpers.ts";

Deno.test("server announces eager-upload and stores pipelined eager uploads, replying in order", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      assert.deepEqual(client.hello.features, [
        EAGER_UPLOAD_FEATURE,
        KEEPALIVE_FEATURE,
        IF_UNCHANGED_FEATURE,
      ]);
      // Three uploads sent back to back before any reply is read; the second
      // reuses the first one's name and is refused, the third must still work.
      const files = [new Uint8Array([0, 1, 0]), new Uint8Array(70_000).fill(7), new Uint8Array(0)];
      await client.sendBytes(eagerUpload(1, "a.bin", files[0]!));
      await client.sendBytes(eagerUpload(2, "a.bin", files[1]!));
      await client.sendBytes(eagerUpload(3, "dir/c.bin", files[2]!));
      const first = await readWithin(client);
      assert.deepEqual(first, {
        type: "reply",
        id: 1,
        ok: true,
        size: 3,
        sha256: sha256Hex(files[0]!),
      });
      const second = await readWithin(client);
      assert.equal(second?.id, 2);
      assert.equal((second?.error as { code: string }).code, "EXISTS");
      const third = await readWithin(client);
      assert.deepEqual(third, {
        type: "reply",
        id: 3,
        ok: true,
        size: 0,
        sha256: sha256Hex(files[2]!),
      });
      assert.deepEqual(
        await Deno.readFile(join(server.root, "a.bin")),
        files[0],
        "the refused upload did not replace the first one",
      );
      assert.equal((await Deno.stat(join(server.root, "dir/c.bin"))).size, 0);
    } finally {
      client.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("server reads through an eager upload refused for its name or by policy, and the session goes on", async () => {
  for (
    const [args, name, code] of [
      [[], "../escape.bin", "BAD_NAME"],
      [["--read-only"], "fine.bin", "DENIED"],
    ] as const
  ) {
    const server = await startServer([...args]);
    try {
      const client = await RawClient.open(server.port);
      try {
        const data = new Uint8Array(100_000).map((_, i) => i % 256);
        await client.sendBytes(eagerUpload(1, name, data));
        await client.send({ type: "request", id: 2, op: "list", name: "" });
        const refused = await readWithin(client);
        assert.equal(refused?.id, 1);
        assert.equal((refused?.error as { code: string }).code, code);
        // The list reply proves the stream is still in step after the refusal.
        assert.deepEqual(await readWithin(client), { type: "reply", id: 2, ok: true, count: 0 });
        assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
      } finally {
        client.close();
      }
    } finally {
      await server.stop();
    }
  }
});

Deno.test("server ends the session for an eager upload that asks to resume, or is over the file-size limit", async () => {
  const server = await startServer(["--max-file-size", "1000"]);
  try {
    for (
      const [extra, size, code] of [
        [{ resume: true }, 10, "BAD_REQUEST"],
        [{}, 5000, "TOO_LARGE"],
      ] as const
    ) {
      const client = await RawClient.open(server.port);
      try {
        await client.sendBytes(eagerUpload(1, "x.bin", new Uint8Array(size), extra));
        const fatal = await readWithin(client);
        assert.equal(fatal?.type, "fatal", JSON.stringify(fatal));
        assert.equal(fatal?.code, code);
        assert.equal(await readWithin(client), null, "the server closed the connection");
      } finally {
        client.close();
      }
    }
    await assertFreshClientLists(server);
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
  } finally {
    await server.stop();
  }
});

Deno.test("put -r of many small files pipelines them and every file arrives whole", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "many");
    await Deno.mkdir(local);
    const digests = new Map<string, string>();
    for (let i = 0; i < 300; i++) {
      const name = `f${String(i).padStart(3, "0")}.bin`;
      digests.set(name, await writeRandomFile(join(local, name), (i * 37) % 5000));
    }
    const up = await runClient(["put", "-r", "many", "many"], { cwd: server.dir });
    assert.equal(up.code, 0, up.stderr);
    for (const [name, digest] of digests) {
      assert.equal(await sha256File(join(server.root, "many", name)), digest, name);
    }
    const down = await runClient(["get", "-r", "many", "back"], { cwd: server.dir });
    assert.equal(down.code, 0, down.stderr);
    for (const [name, digest] of digests) {
      assert.equal(await sha256File(join(server.dir, "back", name)), digest, name);
    }
    // One connection carried them all: the log has one connect for each command.
    assert.equal(server.log().match(/ connect ok/g)?.length, 2, server.log());
  } finally {
    await server.stop();
  }
});

Deno.test("put -r stops at the first refused file: a large file after it is not sent", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "tree");
    await Deno.mkdir(local);
    await Deno.writeTextFile(join(local, "a.txt"), "new");
    await writeRandomFile(join(local, "b.bin"), 3 << 20); // Over the eager size: waits its turn.
    await Deno.mkdir(join(server.root, "tree"));
    await Deno.writeTextFile(join(server.root, "tree", "a.txt"), "old");
    // (Into the top: with a target "tree" there already, the tree would land in tree/tree.)
    const run = await runClient(["put", "-r", "tree"], { cwd: server.dir });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /EXISTS/);
    assert.equal(await Deno.readTextFile(join(server.root, "tree", "a.txt")), "old");
    await assert.rejects(Deno.stat(join(server.root, "tree", "b.bin")), Deno.errors.NotFound);
    assert.doesNotMatch(server.log(), /upload "tree\/b\.bin"/, "b.bin was never asked for");
  } finally {
    await server.stop();
  }
});
