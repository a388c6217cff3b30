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
import { MAX_PATH_BYTES } from "../server/path_limits.ts";
import { Storage } from "../server/storage.ts";
import { listTree, RawClient, rawList, readWithin, startServer } from "./_helpers.ts";

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

/**
 * Fills `dir` with `dirs` directories of `entriesEach` entries, a tree for a
 * rename to measure: hard links to one empty file, quicker to make than files.
 */
function fillTree(dir: string, dirs: number, entriesEach: number): void {
  Deno.mkdirSync(dir, { recursive: true });
  const one = join(dir, "one");
  Deno.writeFileSync(one, new Uint8Array(0));
  for (let d = 0; d < dirs; d++) {
    const sub = join(dir, `d${d}`);
    Deno.mkdirSync(sub);
    for (let e = 0; e < entriesEach; e++) Deno.linkSync(one, join(sub, `e${e}`));
  }
}

Deno.test("rename: measuring a large directory moved to a longer name lets other sessions go on", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-bigrename-" });
  const root = join(dir, "root");
  fillTree(join(root, "big"), 30, 1000);
  try {
    const server = await startServer(["--root", root]);
    try {
      const renamer = await RawClient.open(server.port);
      const lister = await RawClient.open(server.port);
      await renamer.send({ type: "request", id: 1, op: "rename", name: "big", to: "bigger" });
      let renamed: Message | null = null;
      const renameReply = readWithin(renamer, 60_000).then((reply) => renamed = reply);
      // Lists, one after another, while the rename measures 30,000 entries.
      let listsBefore = 0;
      for (let id = 1; renamed === null && id <= 10_000; id++) {
        const { reply } = await rawList(lister, id);
        assert.equal(reply.ok, true, JSON.stringify(reply));
        if (renamed === null) listsBefore++;
      }
      await renameReply;
      assert.equal((renamed as Message | null)?.ok, true, JSON.stringify(renamed));
      // A walk that held the server would let one list through at most.
      assert.ok(listsBefore >= 5, `only ${listsBefore} lists were answered during the rename`);
      assert.ok(Deno.statSync(join(root, "bigger", "d29", "e999")).isFile);
      renamer.close();
      lister.close();
    } finally {
      await server.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A root for a move raced by mkdirs: `big`, deep enough that a new entry of
 * 15 bytes in it fits with no byte to spare, and under `bigger` (three bytes
 * longer) would not; what it holds at start fits either way. The measure
 * reads `big` itself first: every mkdir after that is one a measure that
 * missed it would move past the limit.
 */
function moveRaceTree(dir: string) {
  const root = join(dir, "root");
  const encoder = new TextEncoder();
  const entryName = (i: number) => `n${String(i).padStart(14, "0")}`;
  const bigBytes = MAX_PATH_BYTES - 1 - entryName(0).length;
  let parent = root;
  while (bigBytes - 4 - encoder.encode(parent).length > 201) {
    parent = join(parent, "c".repeat(200));
  }
  parent = join(parent, "c".repeat(bigBytes - 4 - encoder.encode(parent).length - 1));
  const big = join(parent, "big");
  assert.equal(encoder.encode(big).length, bigBytes);
  fillTree(big, 20, 1000);
  const above = parent.slice(root.length + 1).split("/");
  return {
    root,
    above,
    entryName,
    /** Starts the move; resolves with "moved" or the error. */
    move: (storage: Storage) =>
      storage.rename([...above, "big"], [...above, "bigger"], false)
        .then(() => "moved", (err) => err) as Promise<unknown>,
    /** Checks the outcome, and that every path in the root is one the system can reach. */
    check: (outcome: unknown) => {
      assert.ok(
        outcome === "moved" || (outcome as { code?: unknown }).code === "BAD_NAME" ||
          (outcome as { code?: unknown }).code === "BUSY",
        String(outcome),
      );
      const moved = join(parent, outcome === "moved" ? "bigger" : "big");
      for (const entry of Deno.readDirSync(moved)) {
        const bytes = encoder.encode(join(moved, entry.name)).length;
        assert.ok(bytes <= MAX_PATH_BYTES, `${entry.name} is at a path of ${bytes} bytes`);
      }
    },
  };
}

Deno.test({
  name:
    "rename: mkdirs inside a directory while its move is measured never leave a path past the limit",
  // Storage.open() holds the root's lock for as long as the process lives.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = Deno.realPathSync(await Deno.makeTempDir({ prefix: "fts-moverace-" }));
    const race = moveRaceTree(dir);
    const storage = await Storage.open(race.root, { quotaBytes: null, reserveBytes: 0 });
    try {
      const rename = race.move(storage);
      let settled = false;
      void rename.then(() => settled = true);
      const made: Promise<unknown>[] = [];
      for (let i = 0; !settled && i < 5000; i++) {
        made.push(storage.mkdir([...race.above, "big", race.entryName(i)]).catch((err) => err));
        await new Promise((resolve) => setTimeout(resolve, 0));
      }
      const outcome = await rename;
      await Promise.all(made);
      race.check(outcome);
    } finally {
      storage.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name:
    "rename: mkdirs by another worker while a move is measured never leave a path past the limit",
  // Storage.open() holds the root's lock for as long as the process lives.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = Deno.realPathSync(await Deno.makeTempDir({ prefix: "fts-moverace-" }));
    const race = moveRaceTree(dir);
    const shared = Storage.allocateShared();
    const storage = await Storage.open(race.root, { quotaBytes: null, reserveBytes: 0 }, shared);
    // A second thread serving the same root, as a second worker of the server does.
    const other = new Worker(new URL("./fixtures/attached_mkdirs.ts", import.meta.url), {
      type: "module",
    });
    const stop = new SharedArrayBuffer(4);
    const messages: unknown[] = [];
    const next = () =>
      new Promise<unknown>((resolve, reject) => {
        if (messages.length > 0) return resolve(messages.shift());
        other.onmessage = (event) => resolve(event.data);
        other.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
      });
    other.onmessage = (event) => messages.push(event.data);
    try {
      other.postMessage({
        root: race.root,
        shared,
        parent: [...race.above, "big"],
        names: Array.from({ length: 100_000 }, (_, i) => race.entryName(i)),
        stop,
      });
      assert.equal(await next(), "attached");
      const outcome = await race.move(storage);
      Atomics.store(new Int32Array(stop), 0, 1);
      const tried = await next();
      assert.ok(typeof tried === "number" && tried > 0, `the other worker made ${tried}`);
      race.check(outcome);
    } finally {
      other.terminate();
      storage.close();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  },
});
