/**
 * A resumable upload whose data all arrived but whose trailer never came
 * (the connection closed after the last data byte) keeps its data as a
 * partial: a resume then sends no data, only the trailer, and the server
 * publishes the whole file after checking its SHA-256.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { RawClient, readWithin, runClient, sha256File, startServer, waitFor } from "./_helpers.ts";

const SIZE = 150_000;

/** Sends a resumable upload of `data` to `name` in full, then closes without its trailer. */
async function uploadWithoutTrailer(port: number, name: string, data: Uint8Array): Promise<void> {
  const client = await RawClient.open(port);
  try {
    await client.send({
      type: "request",
      id: 1,
      op: "upload",
      name,
      size: data.length,
      overwrite: false,
      resumable: true,
    });
    assert.deepEqual(await readWithin(client), { type: "continue", id: 1, offset: 0 });
    await client.sendBytes(data);
  } finally {
    client.close();
  }
}

/** Asks for the bytes the server holds of an upload of `name` with `size` bytes. */
async function heldBytes(port: number, name: string, size: number): Promise<unknown> {
  const client = await RawClient.open(port);
  try {
    return (await client.request({ op: "partial", name, size }))?.held;
  } finally {
    client.close();
  }
}

Deno.test("upload cut off after its last data byte keeps the whole file as a partial; a resume sends only the trailer", async () => {
  const server = await startServer();
  try {
    const data = new Uint8Array(SIZE).map((_, i) => (i * 31 + 7) % 256);
    const sha256 = createHash("sha256").update(data).digest("hex");
    await uploadWithoutTrailer(server.port, "dir/f.bin", data);
    assert.ok(
      await waitFor(async () => await heldBytes(server.port, "dir/f.bin", SIZE) === SIZE),
      "the server did not keep the whole file as a partial",
    );
    const client = await RawClient.open(server.port);
    try {
      await client.send({
        type: "request",
        id: 2,
        op: "upload",
        name: "dir/f.bin",
        size: SIZE,
        overwrite: false,
        resumable: true,
        resume: true,
      });
      assert.deepEqual(await readWithin(client), { type: "continue", id: 2, offset: SIZE });
      await client.send({ type: "trailer", id: 2, sha256 });
      assert.deepEqual(await readWithin(client), {
        type: "reply",
        id: 2,
        ok: true,
        size: SIZE,
        sha256,
      });
    } finally {
      client.close();
    }
    assert.equal(await sha256File(join(server.root, "dir", "f.bin")), sha256);
    assert.equal(await heldBytes(server.port, "dir/f.bin", SIZE), 0, "the partial is used up");
  } finally {
    await server.stop();
  }
});

Deno.test("put --resume of an upload cut off before its trailer continues from the whole file", async () => {
  const server = await startServer();
  try {
    const data = new Uint8Array(SIZE).map((_, i) => (i * 13 + 1) % 256);
    await uploadWithoutTrailer(server.port, "g.bin", data);
    assert.ok(
      await waitFor(async () => await heldBytes(server.port, "g.bin", SIZE) === SIZE),
      "the server did not keep the whole file as a partial",
    );
    await Deno.writeFile(join(server.dir, "g.bin"), data);
    const run = await runClient(["--json", "put", "--resume", "g.bin", "g.bin"], {
      cwd: server.dir,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(JSON.parse(run.stdout).files[0].resumedFrom, SIZE);
    assert.equal(
      await sha256File(join(server.root, "g.bin")),
      createHash("sha256").update(data).digest("hex"),
    );
  } finally {
    await server.stop();
  }
});
