/**
 * Resuming interrupted transfers outside the shell: `get --resume` from the
 * partial file a download left, the expiry of such partial files, and the
 * `partial` operation through which a client learns what the server holds
 * of a broken upload.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import {
  RawClient,
  readWithin,
  runClient,
  sha256File,
  startServer,
  waitForKeptPartial,
  writeRandomFile,
} from "./_helpers.ts";

const SIZE = 3 << 20;

/** Writes the first `bytes` of `source` as the partial file of a download to `target`. */
async function leavePartial(source: string, target: string, bytes: number): Promise<string> {
  const partial = join(target, "..", `.${target.split("/").at(-1)}.fts-partial`);
  const data = await Deno.readFile(source);
  await Deno.writeFile(partial, data.subarray(0, bytes));
  return partial;
}

Deno.test("get --resume continues from the partial file and verifies the whole file", async () => {
  const server = await startServer();
  try {
    const sum = await writeRandomFile(join(server.root, "big.bin"), SIZE);
    const target = join(server.dir, "big.bin");
    const partial = await leavePartial(join(server.root, "big.bin"), target, 1_000_000);
    const run = await runClient(["--json", "get", "--resume", "big.bin"], { cwd: server.dir });
    assert.equal(run.code, 0, run.stderr);
    const result = JSON.parse(run.stdout);
    assert.equal(result.files[0].resumedFrom, 1_000_000);
    assert.equal(result.files[0].verified, true);
    assert.equal(await sha256File(target), sum);
    await assert.rejects(Deno.stat(partial), Deno.errors.NotFound);
  } finally {
    await server.stop();
  }
});

Deno.test("get --resume ignores a partial file older than the expiry and starts over", async () => {
  const server = await startServer();
  try {
    const sum = await writeRandomFile(join(server.root, "big.bin"), SIZE);
    const target = join(server.dir, "big.bin");
    // Bytes that do not match: used, they would fail the check; expired, they are not used.
    const partial = join(server.dir, ".big.bin.fts-partial");
    await Deno.writeFile(partial, new Uint8Array(500_000).fill(0xee));
    const longAgo = new Date(Date.now() - PARTIAL_EXPIRY_MS - 60_000);
    await Deno.utime(partial, longAgo, longAgo);
    const run = await runClient(["--json", "get", "--resume", "big.bin"], { cwd: server.dir });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).files[0].resumedFrom, 0);
    assert.equal(await sha256File(target), sum);
  } finally {
    await server.stop();
  }
});

Deno.test("get --resume from a partial file that does not match fails the check and keeps nothing", async () => {
  const server = await startServer();
  try {
    await writeRandomFile(join(server.root, "big.bin"), SIZE);
    const partial = join(server.dir, ".big.bin.fts-partial");
    await Deno.writeFile(partial, new Uint8Array(500_000).fill(0xee));
    const run = await runClient(["get", "--resume", "big.bin"], { cwd: server.dir });
    assert.equal(run.code, 4, run.stderr);
    assert.match(run.stderr, /INTEGRITY/);
    await assert.rejects(Deno.stat(join(server.dir, "big.bin")), Deno.errors.NotFound);
    await assert.rejects(Deno.stat(partial), Deno.errors.NotFound);
  } finally {
    await server.stop();
  }
});

Deno.test("the partial operation reports the bytes a broken upload left, for that name and size only", async () => {
  const server = await startServer();
  try {
    const data = new Uint8Array(200_000).map((_, i) => (i * 7) % 256);
    const broken = await RawClient.open(server.port);
    await broken.send({
      type: "request",
      id: 1,
      op: "upload",
      name: "dir/f.bin",
      size: data.length,
      overwrite: false,
      resumable: true,
    });
    assert.deepEqual(await readWithin(broken), { type: "continue", id: 1, offset: 0 });
    await broken.sendBytes(data.subarray(0, 80_000));
    broken.close();
    assert.ok(await waitForKeptPartial(server, 80_000), "the broken upload's data was not kept");
    const client = await RawClient.open(server.port);
    try {
      const ask = (id: number, name: string, size: number) =>
        client.send({ type: "request", id, op: "partial", name, size }).then(() =>
          readWithin(client)
        );
      assert.deepEqual(await ask(2, "dir/f.bin", data.length), {
        type: "reply",
        id: 2,
        ok: true,
        held: 80_000,
      });
      assert.equal((await ask(3, "dir/f.bin", data.length + 1))?.held, 0, "another size");
      assert.equal((await ask(4, "dir/g.bin", data.length))?.held, 0, "another name");
      const bad = await ask(5, "../f.bin", data.length);
      assert.equal((bad?.error as { code: string }).code, "BAD_NAME");
    } finally {
      client.close();
    }
    // And the resumed upload, through the real client, completes it.
    const local = join(server.dir, "f.bin");
    await Deno.writeFile(local, data);
    const run = await runClient(["--json", "put", "--resume", "f.bin", "dir/f.bin"], {
      cwd: server.dir,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).files[0].resumedFrom, 80_000);
    assert.equal(
      await sha256File(join(server.root, "dir", "f.bin")),
      createHash("sha256").update(data).digest("hex"),
    );
  } finally {
    await server.stop();
  }
});
