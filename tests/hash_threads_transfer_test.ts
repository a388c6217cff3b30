/**
 * Transfers large enough to be hashed on a hash thread
 * (OFF_THREAD_HASH_MIN_BYTES and more on the server;
 * OWN_HASH_THREADS_MIN_BYTES and more, for the client to start its own), against the real
 * server and client: digests equal the files' own, a corrupted byte is
 * caught by whichever side hashes off its thread, and a resume hashes the
 * held bytes there too.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { OFF_THREAD_HASH_MIN_BYTES, OWN_HASH_THREADS_MIN_BYTES } from "../io/hash_threads.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import { runAgainstFake, sendFile } from "./_fake_server.ts";
import {
  breakUploadAfter,
  digestOfBytes,
  listTree,
  RawClient,
  readWithin,
  runCommand,
  startServer,
  writeRandomFile,
} from "./_helpers.ts";

/** Over the threshold, and not a whole number of 1 MiB chunks. */
const LARGE_BYTES = OFF_THREAD_HASH_MIN_BYTES + (3 << 20) + 12_345;

const CHECKSUMS: ChecksumName[] = ["xxh3-128", "sha256"];

function corrupted(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  copy[Math.floor(copy.length * 0.7)]! ^= 0x01;
  return copy;
}

for (const checksum of CHECKSUMS) {
  Deno.test(`put and get of a large file verify with ${checksum} hashed off the thread`, async () => {
    const server = await startServer();
    try {
      const local = join(server.dir, "large.bin");
      await writeRandomFile(local, LARGE_BYTES);
      const data = await Deno.readFile(local);
      const expected = await digestOfBytes(checksum, data);
      const put = await runCommand(server, ["--checksum", checksum, "--json", "put", "large.bin"]);
      assert.equal(put.code, 0, put.stderr);
      assert.equal(JSON.parse(put.stdout).files[0].digest, expected);
      assert.deepEqual(await Deno.readFile(join(server.root, "large.bin")), data);

      await Deno.remove(local);
      const get = await runCommand(server, ["--checksum", checksum, "--json", "get", "large.bin"]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(JSON.parse(get.stdout).files[0].digest, expected);
      assert.deepEqual(await Deno.readFile(local), data);
    } finally {
      await server.stop();
    }
  });

  Deno.test(`a large upload with a corrupted byte is caught under ${checksum}: INTEGRITY`, async () => {
    const server = await startServer();
    try {
      const local = join(server.dir, "large.bin");
      await writeRandomFile(local, LARGE_BYTES);
      const data = await Deno.readFile(local);
      const client = await RawClient.open(server.port, true, undefined, { checksum });
      try {
        const id = 1;
        await client.send({ type: "request", id, op: "upload", name: "c.bin", size: data.length });
        assert.equal((await readWithin(client))?.type, "continue");
        await client.sendBytes(corrupted(data));
        await client.send({ type: "trailer", id, [checksum]: await digestOfBytes(checksum, data) });
        const reply = await readWithin(client);
        assert.equal(reply?.ok, false, JSON.stringify(reply));
        assert.equal((reply?.error as { code: string }).code, "INTEGRITY");
      } finally {
        client.close();
      }
      assert.ok(!(await listTree(server.root)).includes("c.bin"));
    } finally {
      await server.stop();
    }
  });

  Deno.test(`a large download with a corrupted byte is caught under ${checksum}: exit 4`, async () => {
    const source = await Deno.makeTempFile();
    await writeRandomFile(source, LARGE_BYTES);
    const data = await Deno.readFile(source);
    await Deno.remove(source);
    const run = await runAgainstFake({
      checksums: [checksum],
      async answer(request, peer) {
        await sendFile(request, peer, corrupted(data), checksum, data);
      },
    }, ["get", "c.bin"]);
    try {
      assert.equal(run.code, 4, run.stderr);
      assert.match(run.stderr, /INTEGRITY/);
      assert.deepEqual(run.tree, ["cwd/"]);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  });
}

Deno.test("put --resume of a large file hashes the held bytes and the rest off the thread", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "up.bin");
    await writeRandomFile(local, LARGE_BYTES);
    const data = await Deno.readFile(local);
    const held = OFF_THREAD_HASH_MIN_BYTES + 1_000_000;
    await breakUploadAfter(server, "up.bin", data, held, { checksum: "xxh3-128" });
    const run = await runCommand(server, ["--json", "put", "--resume", "up.bin"]);
    assert.equal(run.code, 0, run.stderr);
    const file = JSON.parse(run.stdout).files[0];
    assert.equal(file.resumedFrom, held);
    assert.equal(file.digest, await digestOfBytes("xxh3-128", data));
    assert.deepEqual(await Deno.readFile(join(server.root, "up.bin")), data);
  } finally {
    await server.stop();
  }
});

Deno.test("a file large enough for the client to start its own hash thread verifies both ways", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "huge.bin");
    await writeRandomFile(local, OWN_HASH_THREADS_MIN_BYTES + 54_321);
    const data = await Deno.readFile(local);
    const expected = await digestOfBytes("xxh3-128", data);
    const put = await runCommand(server, ["--json", "put", "huge.bin"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).files[0].digest, expected);
    await Deno.remove(local);
    const get = await runCommand(server, ["--json", "get", "huge.bin"]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(JSON.parse(get.stdout).files[0].digest, expected);
    assert.deepEqual(await Deno.readFile(local), data);
  } finally {
    await server.stop();
  }
});
