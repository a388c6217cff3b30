/**
 * The root itself under attack from the machine: swapped for a link while
 * serving, world-writable, or holding a hard link to a file from elsewhere.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import { openAncestorWarnings } from "../server/root_warnings.ts";
import { listTree, RawClient, rawList, readWithin, startServer } from "./_helpers.ts";
import { readData } from "../io/read_data.ts";

function codeOf(reply: Message | null): unknown {
  return (reply?.error as { code?: unknown } | undefined)?.code;
}

Deno.test("serve: a root swapped for a link to elsewhere is refused for every op, and nothing lands there", async () => {
  const server = await startServer();
  const elsewhere = join(server.dir, "elsewhere");
  try {
    await Deno.writeTextFile(join(server.root, "kept.txt"), "inside");
    await Deno.mkdir(elsewhere);
    await Deno.writeTextFile(join(elsewhere, "other.txt"), "outside");
    const raw = await RawClient.open(server.port);
    // mv root root.orig; ln -s elsewhere root
    await Deno.rename(server.root, `${server.root}.orig`);
    await Deno.symlink(elsewhere, server.root);

    assert.equal(codeOf(await raw.request({ op: "mkdir", name: "made" })), "DENIED");
    const go = await raw.request({ op: "upload", name: "up.txt", size: 1, overwrite: false });
    assert.equal(codeOf(go), "DENIED", JSON.stringify(go));
    const data = new Uint8Array([1]);
    await raw.send({ type: "request", id: 3, op: "upload", name: "e.txt", size: 1, eager: true });
    await raw.sendBytes(data);
    await raw.send({
      type: "trailer",
      id: 3,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    assert.equal(codeOf(await readWithin(raw)), "DENIED");
    assert.equal(codeOf((await rawList(raw, 4)).reply), "DENIED");
    assert.equal(codeOf(await raw.request({ op: "download", name: "other.txt" })), "DENIED");
    assert.equal(codeOf(await raw.request({ op: "stat", name: "other.txt" })), "DENIED");
    assert.equal(codeOf(await raw.request({ op: "delete", name: "other.txt" })), "DENIED");
    const rename = await raw.request({ op: "rename", name: "other.txt", to: "x.txt" });
    assert.equal(codeOf(rename), "DENIED");
    const message = String((rename?.error as { message?: unknown }).message);
    assert.ok(!message.includes(server.dir), `the reply names a server path: ${message}`);
    assert.deepEqual(await listTree(elsewhere), ["other.txt"]);
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("serve: a world-writable root is warned about at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-ww-" });
  const root = join(dir, "open");
  await Deno.mkdir(root);
  await Deno.chmod(root, 0o777);
  const server = await startServer(["--root", root]);
  try {
    assert.match(server.log(), /warning.*world-writable/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const quiet = await startServer();
  try {
    assert.doesNotMatch(quiet.log(), /world-writable/);
  } finally {
    await quiet.stop();
  }
});

Deno.test("download: a hard link in the root is served as the file it is; an upload over it replaces the name only", async () => {
  const server = await startServer();
  const outside = await Deno.makeTempDir({ prefix: "fts-outside-" });
  try {
    const original = join(server.root, "original.txt");
    await Deno.writeTextFile(original, "one file, two names");
    await Deno.link(original, join(server.root, "second.txt"));
    const raw = await RawClient.open(server.port);
    const header = await raw.request({ op: "download", name: "second.txt" });
    assert.equal(header?.type, "data", JSON.stringify(header));
    let text = "";
    await readData(raw.reader, header!.size as number, (chunk) => {
      text += new TextDecoder().decode(chunk);
    });
    assert.equal(text, "one file, two names");
    assert.equal((await readWithin(raw))?.ok, true);

    const data = new TextEncoder().encode("replaced");
    const go = await raw.request({
      op: "upload",
      name: "second.txt",
      size: data.length,
      overwrite: true,
    });
    assert.equal(go?.type, "continue");
    await raw.sendBytes(data);
    await raw.send({
      type: "trailer",
      id: 2,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    assert.equal((await readWithin(raw))?.ok, true);
    assert.equal(await Deno.readTextFile(original), "one file, two names");
    assert.equal(await Deno.readTextFile(join(server.root, "second.txt")), "replaced");
    raw.close();
  } finally {
    await server.stop();
    await Deno.remove(outside, { recursive: true });
  }
});

Deno.test("openAncestorWarnings() warns of a directory above the root that others may write without the sticky bit", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-wwp-" });
  const open = join(dir, "open");
  const root = join(open, "mid", "root");
  await Deno.mkdir(root, { recursive: true });
  try {
    // The server's own temporary directories, under a sticky /tmp: nothing to say.
    assert.deepEqual(openAncestorWarnings(root), []);
    // Anyone may rename "mid" away and put their own directory in its place.
    await Deno.chmod(open, 0o777);
    const warnings = openAncestorWarnings(root);
    assert.equal(warnings.length, 1, JSON.stringify(warnings));
    assert.match(
      warnings[0]!,
      /fts-wwp-[^/]*\/open, above the served directory, is writable by others/,
    );
    // With the sticky bit (as /tmp has), others cannot move what they do not own.
    await Deno.chmod(open, 0o1777);
    assert.deepEqual(openAncestorWarnings(root), []);
    // The root itself is not an ancestor: Storage.open() warns about it.
    await Deno.chmod(open, 0o755);
    await Deno.chmod(root, 0o777);
    assert.deepEqual(openAncestorWarnings(root), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve: a directory above the root that others may write is warned about at start", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-wwp-serve-" });
  const open = join(dir, "open");
  const root = join(open, "mid", "root");
  await Deno.mkdir(root, { recursive: true });
  try {
    await Deno.chmod(open, 0o777);
    const warned = await startServer(["--root", root]);
    const warnedLog = await warned.stop().then(() => warned.log());
    assert.match(warnedLog, /warning: .*open, above the served directory, is writable by others/);
    await Deno.chmod(open, 0o1777);
    const quiet = await startServer(["--root", root]);
    const quietLog = await quiet.stop().then(() => quiet.log());
    assert.doesNotMatch(quietLog, /writable by others/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
