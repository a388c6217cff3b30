/**
 * Files and directories swapped for links while a request runs: the server
 * must go on with what it checked, or refuse, and never reach outside root.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FtsConnection } from "../client/connection.ts";
import { EMPTY_ROOT, listTree, RawClient, startServer, writeRandomFile } from "./_helpers.ts";
import { readData } from "../io/read_data.ts";

Deno.test("a file swapped for a link mid-download: the reader gets the whole original", async () => {
  const server = await startServer();
  const outside = await Deno.makeTempDir({ prefix: "fts-outside-" });
  try {
    const secret = join(outside, "secret.bin");
    await Deno.writeFile(secret, new Uint8Array(1024).fill(0x53));
    const original = await writeRandomFile(join(server.root, "data.bin"), 32 << 20);
    const raw = await RawClient.open(server.port);
    const header = await raw.request({ op: "download", name: "data.bin" });
    assert.equal(header?.type, "data");
    // Swap the name for a link to a file outside root while the data flows.
    await Deno.remove(join(server.root, "data.bin"));
    await Deno.symlink(secret, join(server.root, "data.bin"));
    const hash = createHash("sha256");
    let received = 0;
    await readData(raw.reader, header!.size as number, (chunk) => {
      hash.update(chunk);
      received += chunk.length;
    });
    const reply = await raw.reader.readMessage();
    assert.equal(reply?.ok, true);
    assert.equal(received, 32 << 20);
    assert.equal(hash.digest("hex"), original);
    assert.equal(reply?.sha256, original);
    // A new request for the name now meets the link, and is refused.
    const again = await raw.request({ op: "download", name: "data.bin" });
    assert.equal((again?.error as { code: string }).code, "DENIED");
    raw.close();
  } finally {
    await server.stop();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("a directory swapped for a link mid-upload: the upload is refused and nothing lands outside", async () => {
  const server = await startServer();
  const outside = await Deno.makeTempDir({ prefix: "fts-outside-" });
  try {
    await Deno.mkdir(join(server.root, "inbox"));
    const data = new TextEncoder().encode("must not escape");
    const raw = await RawClient.open(server.port);
    const go = await raw.request({ op: "upload", name: "inbox/x.txt", size: data.length });
    assert.equal(go?.type, "continue");
    // The checked directory becomes a link to a directory outside root.
    await Deno.remove(join(server.root, "inbox"));
    await Deno.symlink(outside, join(server.root, "inbox"));
    await raw.sendBytes(data);
    await raw.send({
      type: "trailer",
      id: 1,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    const reply = await raw.reader.readMessage();
    assert.equal(reply?.ok, false, JSON.stringify(reply));
    assert.equal((reply?.error as { code: string }).code, "DENIED");
    raw.close();
    assert.deepEqual(await listTree(outside), []);
    assert.deepEqual(await listTree(server.root), [...EMPTY_ROOT, "inbox"].sort());
  } finally {
    await server.stop();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("a name swapped for a link between uploads is replaced, not followed", async () => {
  const server = await startServer();
  const outside = await Deno.makeTempDir({ prefix: "fts-outside-" });
  try {
    const target = join(outside, "target.txt");
    await Deno.writeTextFile(target, "outside, untouched");
    await Deno.symlink(target, join(server.root, "note.txt"));
    const local = join(server.dir, "note.txt");
    await Deno.writeTextFile(local, "new content");
    const connection = await FtsConnection.open("127.0.0.1", server.port);
    await connection.upload(local, "note.txt", { overwrite: true });
    await connection.logout();
    assert.equal(await Deno.readTextFile(target), "outside, untouched");
    assert.equal((await Deno.lstat(join(server.root, "note.txt"))).isFile, true);
    assert.equal(await Deno.readTextFile(join(server.root, "note.txt")), "new content");
  } finally {
    await server.stop();
    await Deno.remove(outside, { recursive: true });
  }
});
