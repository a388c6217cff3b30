/**
 * Names whose full path on the server would be longer than the system takes:
 * refused before any data is read, and a publish or mkdir that fails part-way
 * (a link inside root makes the real path longer than the name) leaves no
 * directories behind.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import { listTree, RawClient, readWithin, startServer } from "./_helpers.ts";

/** A name of `bytes` bytes in segments of 255 bytes, the most a segment may have. */
function longName(bytes: number): string {
  const segments: string[] = [];
  let left = bytes;
  while (left > 256) {
    segments.push("d".repeat(254) + String(segments.length % 10));
    left -= 256;
  }
  segments.push("f".repeat(left));
  return segments.join("/");
}

function codeOf(reply: Message | null): unknown {
  return (reply?.error as { code?: unknown } | undefined)?.code;
}

Deno.test("upload: a name whose full path exceeds the system's limit is refused before the data", async () => {
  const server = await startServer();
  try {
    const before = await listTree(server.root);
    const name = longName(4090);
    assert.equal(new TextEncoder().encode(name).length, 4090);
    const raw = await RawClient.open(server.port);
    const reply = await raw.request({ op: "upload", name, size: 10, overwrite: false });
    assert.equal(reply?.type, "reply", JSON.stringify(reply));
    assert.equal(codeOf(reply), "BAD_NAME", JSON.stringify(reply));

    // Eager: read through, refused, and the session goes on.
    const data = new Uint8Array(10).fill(1);
    await raw.send({ type: "request", id: 2, op: "upload", name, size: 10, eager: true });
    await raw.sendBytes(data);
    await raw.send({
      type: "trailer",
      id: 2,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    assert.equal(codeOf(await readWithin(raw)), "BAD_NAME");

    const mkdir = await raw.request({ op: "mkdir", name });
    assert.equal(codeOf(mkdir), "BAD_NAME", JSON.stringify(mkdir));
    await Deno.writeTextFile(join(server.root, "short.txt"), "x");
    const rename = await raw.request({ op: "rename", name: "short.txt", to: name });
    assert.equal(codeOf(rename), "BAD_NAME", JSON.stringify(rename));
    assert.deepEqual(await listTree(server.root), [...before, "short.txt"].sort());
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("upload: a publish that fails under a link to a deep directory removes the directories it made", async () => {
  const server = await startServer();
  try {
    // A real directory whose path is close to the limit, and a short link to it.
    let deep = join(server.root, "deep");
    while (new TextEncoder().encode(deep).length < 4000) deep = join(deep, "e".repeat(60));
    await Deno.mkdir(deep, { recursive: true });
    await Deno.symlink(deep, join(server.root, "l"));
    const before = await listTree(server.root);
    // Short as a name, but under the link's target the path is too long.
    const name = `l/${"n".repeat(40)}/${"m".repeat(40)}/${"f".repeat(40)}`;
    const data = new Uint8Array(100).fill(7);
    const raw = await RawClient.open(server.port);
    const go = await raw.request({ op: "upload", name, size: data.length, overwrite: false });
    if (go?.type === "continue") {
      await raw.sendBytes(data);
      await raw.send({
        type: "trailer",
        id: 1,
        sha256: createHash("sha256").update(data).digest("hex"),
      });
      const reply = await readWithin(raw);
      assert.equal(reply?.ok, false, JSON.stringify(reply));
      assert.equal(codeOf(reply), "BAD_NAME", JSON.stringify(reply));
    } else {
      assert.equal(codeOf(go), "BAD_NAME", JSON.stringify(go));
    }
    assert.deepEqual(await listTree(server.root), before);

    const mkdir = await raw.request({ op: "mkdir", name });
    assert.equal(codeOf(mkdir), "BAD_NAME", JSON.stringify(mkdir));
    assert.deepEqual(await listTree(server.root), before);
    raw.close();
  } finally {
    await server.stop();
  }
});

/** A chain of directories under `top`, about `bytes` bytes long, in segments of 200 bytes. */
function chain(top: string, bytes: number): string {
  const segments = [top];
  for (let i = 0; segments.join("/").length < bytes; i++) segments.push(`${i % 10}`.repeat(200));
  return segments.join("/");
}

Deno.test("rename: a directory whose subtree would pass the path limit where it lands is refused with BAD_NAME", async () => {
  const server = await startServer();
  try {
    const raw = await RawClient.open(server.port);
    const deepA = chain("A", 2800);
    const deepB = chain("B", 1800);
    assert.equal((await raw.request({ op: "mkdir", name: deepA }))?.ok, true);
    assert.equal((await raw.request({ op: "mkdir", name: deepB }))?.ok, true);
    const before = await listTree(server.root);
    const rename = await raw.request({ op: "rename", name: "A", to: `${deepB}/A` });
    assert.equal(codeOf(rename), "BAD_NAME", JSON.stringify(rename));
    assert.match(String((rename?.error as { message?: unknown }).message), /4095/);
    assert.deepEqual(await listTree(server.root), before);
    // Where it fits, the same directory moves.
    const fits = await raw.request({ op: "rename", name: "A", to: `${chain("B", 600)}/A` });
    assert.equal(fits?.ok, true, JSON.stringify(fits));
    const back = await raw.request({ op: "rename", name: `${chain("B", 600)}/A`, to: "A" });
    assert.equal(back?.ok, true, JSON.stringify(back));
    assert.deepEqual(await listTree(server.root), before);
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("serve: --quota starts over a root holding paths past the limit, counting what it can, with a warning", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-deep-" });
  const root = join(dir, "root");
  const deepA = join(root, chain("A", 2800));
  const deepB = join(root, chain("B", 1800));
  await Deno.mkdir(deepA, { recursive: true });
  await Deno.mkdir(deepB, { recursive: true });
  await Deno.writeFile(join(deepA, "f.bin"), new Uint8Array(10));
  // A local move the server never saw: paths under B now pass 4095 bytes.
  await Deno.rename(join(root, "A"), join(deepB, "A"));
  try {
    const server = await startServer(["--quota", "10M", "--reserve", "0", "--root", root]);
    try {
      assert.match(server.log(), /warning.*could not be measured/);
      const raw = await RawClient.open(server.port);
      const put = await raw.request({ op: "upload", name: "x.bin", size: 1 });
      assert.equal(put?.type, "continue", JSON.stringify(put));
      raw.close();
    } finally {
      await server.stop();
    }
  } finally {
    // Moved back so that the removal needs no path past the limit.
    await Deno.rename(join(deepB, "A"), join(root, "A"));
    await Deno.remove(dir, { recursive: true });
  }
});
