/**
 * The quota and the free-space reserve hold against hostile sequences: data
 * held for a resume counts, and a file renamed away while its overwrite is in
 * flight does not leave the quota crediting a replacement that never happens.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import type { Message } from "../protocol/frames.ts";
import { ENTRY_BYTES } from "../server/entry_cost.ts";
import { FREE_SPACE_MEASURE_INTERVAL_MS } from "../server/space.ts";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import type { PendingUpload } from "../server/pending_upload.ts";
import { Storage } from "../server/storage.ts";
import { EMPTY_ROOT, listTree, RawClient, readWithin, startServer, waitFor } from "./_helpers.ts";

const QUOTA_BYTES = 1_000_000;

/** Storage.open() holds the root's lock for as long as the process lives. */
const STORAGE_TEST = { sanitizeResources: false, sanitizeOps: false };

async function openStorage(quotaBytes: number | null, reserveBytes = 0) {
  const dir = await Deno.makeTempDir({ prefix: "fts-quota-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  return { dir, root, open: () => Storage.open(root, { quotaBytes, reserveBytes }) };
}

function begin(storage: Storage, name: string, size: number, more: Partial<{
  overwrite: boolean;
  resumable: boolean;
  resume: boolean;
}> = {}): Promise<PendingUpload> {
  return storage.beginUpload(name.split("/"), {
    size,
    overwrite: false,
    resumable: true,
    resume: false,
    ...more,
  });
}

async function writeBytes(upload: PendingUpload, bytes: number): Promise<void> {
  const chunk = new Uint8Array(Math.min(bytes, 1 << 16)).fill(0x61);
  for (let left = bytes; left > 0; left -= chunk.length) {
    await upload.write(chunk.subarray(0, Math.min(left, chunk.length)));
  }
}

async function assertNoSpace(promise: Promise<unknown>): Promise<void> {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof FtsError, `expected NO_SPACE, got ${err}`);
  assert.equal(err.code, "NO_SPACE", err.message);
}

Deno.test("upload: a resumable upload cut off holds its bytes against --quota until resumed", async () => {
  const server = await startServer(["--quota", String(QUOTA_BYTES), "--reserve", "0"]);
  try {
    const cut = await RawClient.open(server.port);
    const go = await cut.request({
      op: "upload",
      name: "big.bin",
      size: QUOTA_BYTES,
      overwrite: false,
      resumable: true,
    });
    assert.equal(go?.type, "continue", JSON.stringify(go));
    const data = new Uint8Array(QUOTA_BYTES).fill(0x5a);
    await cut.sendBytes(data.subarray(0, 900_000));
    cut.close();
    const partials = join(server.root, ".fts", "partial");
    assert.ok(
      await waitFor(async () => {
        for await (const entry of Deno.readDir(partials)) {
          if ((await Deno.stat(join(partials, entry.name))).size === 900_000) return true;
        }
        return false;
      }),
      "the cut-off upload was not kept",
    );

    const raw = await RawClient.open(server.port);
    // 900,000 held + 800,000 more would be over the quota.
    const more = await raw.request({ op: "upload", name: "more.bin", size: 800_000 });
    assert.equal(more?.ok, false, JSON.stringify(more));
    assert.equal((more?.error as { code: string }).code, "NO_SPACE");
    const again = await raw.request({
      op: "upload",
      name: "other.bin",
      size: QUOTA_BYTES,
      resumable: true,
    });
    assert.equal((again?.error as { code: string }).code, "NO_SPACE", JSON.stringify(again));

    // The resume itself fits: its held bytes are already counted.
    const resume = await raw.request({
      op: "upload",
      name: "big.bin",
      size: QUOTA_BYTES,
      resumable: true,
      resume: true,
    });
    assert.equal(resume?.type, "continue", JSON.stringify(resume));
    assert.equal(resume?.offset, 900_000);
    await raw.sendBytes(data.subarray(900_000));
    await raw.send({
      type: "trailer",
      id: 3,
      sha256: createHash("sha256").update(data).digest("hex"),
    });
    const done = await readWithin(raw);
    assert.equal(done?.ok, true, JSON.stringify(done));
    // Now the quota is full: not one byte more.
    const full = await raw.request({ op: "upload", name: "one.bin", size: 1 });
    assert.equal((full?.error as { code: string }).code, "NO_SPACE", JSON.stringify(full));
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "Storage.open() counts partials found at start against the quota; expiry releases them",
  ...STORAGE_TEST,
  async fn() {
    const { dir, root, open } = await openStorage(QUOTA_BYTES);
    try {
      const partials = join(root, ".fts", "partial");
      await Deno.mkdir(partials, { recursive: true });
      const held = join(partials, "left-by-an-earlier-server");
      await Deno.writeFile(held, new Uint8Array(900_000));
      const storage = await open();
      assert.equal(storage.space.usedBytes, 900_000);
      await assertNoSpace(begin(storage, "a.bin", 200_000));

      // Expired, it is removed and its bytes are free again.
      const longAgo = new Date(Date.now() - PARTIAL_EXPIRY_MS - 60_000);
      await Deno.utime(held, longAgo, longAgo);
      await storage.removeExpiredPartials();
      assert.equal(storage.space.usedBytes, 0);
      const upload = await begin(storage, "a.bin", 200_000);
      await upload.discard();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "PendingUpload.interrupted() replacing an older partial of the same name and size counts it once",
  ...STORAGE_TEST,
  async fn() {
    const { dir, open } = await openStorage(2 * QUOTA_BYTES);
    try {
      const storage = await open();
      const first = await begin(storage, "p.bin", 600_000);
      await writeBytes(first, 500_000);
      await first.interrupted();
      assert.equal(storage.space.usedBytes, 500_000);
      // Started afresh (no resume), cut off earlier: its partial replaces the first.
      const second = await begin(storage, "p.bin", 600_000);
      await writeBytes(second, 300_000);
      await second.interrupted();
      assert.equal(storage.space.usedBytes, 300_000);
      const fits = await begin(storage, "q.bin", 2 * QUOTA_BYTES - 300_000, { resumable: false });
      await fits.discard();
      // Resumed and published: the held bytes become the file's, counted once.
      const resumed = await begin(storage, "p.bin", 600_000, { resume: true });
      assert.equal(resumed.offset, 300_000);
      await writeBytes(resumed, 300_000);
      await resumed.publish();
      assert.equal(storage.space.usedBytes, 600_000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "PendingUpload.publish() refuses with NO_SPACE when the file it was to replace was renamed away",
  ...STORAGE_TEST,
  async fn() {
    const { dir, root, open } = await openStorage(QUOTA_BYTES);
    try {
      await Deno.writeFile(join(root, "a.bin"), new Uint8Array(600_000));
      const storage = await open();
      // Fits only because it replaces a.bin's 600,000 bytes.
      const upload = await begin(storage, "a.bin", 800_000, { overwrite: true });
      await storage.rename(["a.bin"], ["b.bin"], false);
      await writeBytes(upload, 800_000);
      await assertNoSpace(upload.publish());
      await upload.discard();
      assert.deepEqual((await listTree(root)).filter((p) => !p.startsWith(".fts")), ["b.bin"]);
      assert.equal(storage.space.usedBytes, 600_000);

      // Without the rename, the same overwrite fits and replaces the file.
      const again = await begin(storage, "b.bin", 800_000, { overwrite: true });
      await writeBytes(again, 800_000);
      await again.publish();
      assert.equal(storage.space.usedBytes, 800_000);
      assert.equal((await Deno.stat(join(root, "b.bin"))).size, 800_000);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** A real file system of 8 MiB, so that free space is what the test makes it. */
const TMPFS_BYTES = 8 << 20;

Deno.test({
  name: "beginUpload() with resume needs free space only for the bytes still to come",
  ignore: Deno.uid() !== 0,
  ...STORAGE_TEST,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fts-tmpfs-" });
    const mount = await new Deno.Command("mount", {
      args: ["-t", "tmpfs", "-o", `size=${TMPFS_BYTES}`, "tmpfs", dir],
    }).output();
    assert.ok(mount.success, new TextDecoder().decode(mount.stderr));
    let storage: Storage | null = null;
    try {
      const root = join(dir, "root");
      await Deno.mkdir(root);
      storage = await Storage.open(root, { quotaBytes: null, reserveBytes: 0 });
      const size = 6 << 20;
      const first = await begin(storage, "r.bin", size);
      await writeBytes(first, 5 << 20);
      await first.interrupted();
      // Let the budget measure the file system afresh: 3 MiB free, 1 MiB to come.
      await new Promise((resolve) => setTimeout(resolve, FREE_SPACE_MEASURE_INTERVAL_MS + 50));
      const resumed = await begin(storage, "r.bin", size, { resume: true });
      assert.equal(resumed.offset, 5 << 20);
      await writeBytes(resumed, 1 << 20);
      await resumed.publish();
      assert.equal((await Deno.stat(join(root, "r.bin"))).size, size);
    } finally {
      storage?.close();
      const umount = await new Deno.Command("umount", { args: [dir] }).output();
      assert.ok(umount.success, new TextDecoder().decode(umount.stderr));
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Uploads `data` as `name` over a raw connection; returns the final reply (or the refusal). */
async function rawUpload(
  raw: RawClient,
  name: string,
  data: Uint8Array,
  overwrite = false,
): Promise<Message | null> {
  const go = await raw.request({ op: "upload", name, size: data.length, overwrite });
  if (go?.type !== "continue") return go;
  await raw.sendBytes(data);
  await raw.send({
    type: "trailer",
    id: go.id,
    sha256: createHash("sha256").update(data).digest("hex"),
  });
  return await readWithin(raw);
}

function codeOf(reply: Message | null): unknown {
  return (reply?.error as { code?: unknown } | undefined)?.code;
}

/** Bytes the files under `dir` hold, not following links (as du would count their data). */
async function dataBytes(dir: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory) total += await dataBytes(path);
    else if (entry.isFile) total += (await Deno.lstat(path)).size;
  }
  return total;
}

Deno.test("rename: a file renamed onto itself with overwrite frees nothing against --quota", async () => {
  const server = await startServer(["--quota", "64K", "--reserve", "0"]);
  try {
    const raw = await RawClient.open(server.port);
    const data = new Uint8Array(60 * 1024).fill(0x33);
    let stored = 0;
    // Bounded: with the fault, every round stored 60 KB more.
    for (let round = 0; round < 4; round++) {
      const put = await rawUpload(raw, `s${round}`, data);
      if (put?.ok !== true) {
        assert.equal(codeOf(put), "NO_SPACE", JSON.stringify(put));
        break;
      }
      stored++;
      const self = await raw.request({
        op: "rename",
        name: `s${round}`,
        to: `s${round}`,
        overwrite: true,
      });
      assert.equal(self?.ok, true, JSON.stringify(self));
    }
    assert.equal(stored, 1, "the quota let a second 60 KB file in after a self-rename");
    assert.ok(await dataBytes(server.root) <= 64 * 1024);
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("rename: a hard link renamed onto another name of the same file is a no-op and frees nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-link-" });
  const root = join(dir, "root");
  await Deno.mkdir(root);
  await Deno.writeFile(join(root, "a.bin"), new Uint8Array(30 * 1024));
  await Deno.link(join(root, "a.bin"), join(root, "b.bin"));
  // Counted once per name: 60 KiB of the 64 KiB quota.
  const server = await startServer(["--quota", "64K", "--reserve", "0", "--root", root]);
  try {
    const raw = await RawClient.open(server.port);
    const rename = await raw.request({ op: "rename", name: "a.bin", to: "b.bin", overwrite: true });
    assert.equal(rename?.ok, true, JSON.stringify(rename));
    // rename(2) does nothing when both names are links to one file: both stay.
    assert.ok((await Deno.lstat(join(root, "a.bin"))).isFile);
    assert.ok((await Deno.lstat(join(root, "b.bin"))).isFile);
    const more = await rawUpload(raw, "c.bin", new Uint8Array(8 * 1024));
    assert.equal(codeOf(more), "NO_SPACE", JSON.stringify(more));
    raw.close();
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mkdir: directories count toward --quota, ENTRY_BYTES each", async () => {
  const server = await startServer(["--quota", "64K", "--reserve", "0"]);
  try {
    const raw = await RawClient.open(server.port);
    let made = 0;
    // Bounded: with the fault all 400 of the re-audit succeeded.
    for (let i = 0; i < 40; i++) {
      const reply = await raw.request({ op: "mkdir", name: `${i}-${"d".repeat(200)}` });
      if (reply?.ok !== true) {
        assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
        break;
      }
      made++;
    }
    assert.equal(made, (64 * 1024) / ENTRY_BYTES);
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("upload: empty files count toward --quota, ENTRY_BYTES each", async () => {
  const server = await startServer(["--quota", "64K", "--reserve", "0"]);
  try {
    const raw = await RawClient.open(server.port);
    let stored = 0;
    for (let i = 0; i < 40; i++) {
      const reply = await rawUpload(raw, `e${i}`, new Uint8Array(0));
      if (reply?.ok !== true) {
        assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
        break;
      }
      stored++;
    }
    assert.equal(stored, (64 * 1024) / ENTRY_BYTES);
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("upload: the parent directories an upload creates count toward --quota", async () => {
  // Room for four entries: the file and its three parents.
  const server = await startServer(["--quota", String(4 * ENTRY_BYTES), "--reserve", "0"]);
  try {
    const raw = await RawClient.open(server.port);
    const tooDeep = await rawUpload(raw, "a/b/c/d/f.bin", new Uint8Array(0));
    assert.equal(codeOf(tooDeep), "NO_SPACE", JSON.stringify(tooDeep));
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    const fits = await rawUpload(raw, "a/b/c/f.bin", new Uint8Array(0));
    assert.equal(fits?.ok, true, JSON.stringify(fits));
    const more = await raw.request({ op: "mkdir", name: "x" });
    assert.equal(codeOf(more), "NO_SPACE", JSON.stringify(more));
    raw.close();
  } finally {
    await server.stop();
  }
});

Deno.test("mkdir: a directory that would eat into --reserve is refused with NO_SPACE", async () => {
  const server = await startServer(["--reserve", "8000T"]);
  try {
    const raw = await RawClient.open(server.port);
    const reply = await raw.request({ op: "mkdir", name: "d/e" });
    assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
    assert.match(String((reply?.error as { message?: unknown }).message), /reserve/);
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    raw.close();
  } finally {
    await server.stop();
  }
});

/** The bytes in use a NO_SPACE refusal of an upload over the whole quota reports. */
async function inUseBytes(raw: RawClient, quotaBytes: number): Promise<number> {
  const reply = await raw.request({ op: "upload", name: "probe.bin", size: quotaBytes + 1 });
  assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
  const match = /\((\d+) in use/.exec(String((reply?.error as { message?: unknown }).message));
  assert.ok(match, JSON.stringify(reply));
  return Number(match[1]);
}

Deno.test("serve: the quota's use tracked across operations equals what a restart on the same root measures", async () => {
  const quotaBytes = 256 * 1024;
  const dir = await Deno.makeTempDir({ prefix: "fts-budget-" });
  const root = join(dir, "root");
  const args = ["--quota", String(quotaBytes), "--reserve", "0", "--root", root];
  let inUse: number;
  const first = await startServer(args);
  try {
    const raw = await RawClient.open(first.port);
    const ok = (reply: Message | null) => assert.equal(reply?.ok, true, JSON.stringify(reply));
    ok(await raw.request({ op: "mkdir", name: "d/e/f" }));
    ok(await rawUpload(raw, "d/e/f/ten.bin", new Uint8Array(10_000).fill(1)));
    ok(await rawUpload(raw, "g/h/empty", new Uint8Array(0)));
    ok(await rawUpload(raw, "small", new Uint8Array(100)));
    ok(await rawUpload(raw, "big", new Uint8Array(20_000)));
    ok(await rawUpload(raw, "big", new Uint8Array(7_000), true));
    ok(await raw.request({ op: "rename", name: "small", to: "big", overwrite: true }));
    ok(await raw.request({ op: "rename", name: "big", to: "big", overwrite: true }));
    ok(await raw.request({ op: "rename", name: "d/e", to: "g/e", overwrite: false }));
    ok(await raw.request({ op: "mkdir", name: "gone" }));
    ok(await raw.request({ op: "delete", name: "gone" }));
    ok(await raw.request({ op: "mkdir", name: "empty-dir" }));
    ok(await raw.request({ op: "rename", name: "g/h", to: "empty-dir", overwrite: true }));
    inUse = await inUseBytes(raw, quotaBytes);
    raw.close();
  } finally {
    await first.stop();
  }
  const second = await startServer(args);
  try {
    const raw = await RawClient.open(second.port);
    assert.equal(await inUseBytes(raw, quotaBytes), inUse);
    // The same next upload: exactly the room left fits, a byte more does not.
    const over = await raw.request({ op: "upload", name: "last", size: quotaBytes - inUse + 1 });
    assert.equal(codeOf(over), "NO_SPACE", JSON.stringify(over));
    const fits = await rawUpload(raw, "last", new Uint8Array(quotaBytes - inUse));
    assert.equal(fits?.ok, true, JSON.stringify(fits));
    raw.close();
  } finally {
    await second.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("mkdir: concurrent nested mkdirs under --quota: as many as fit succeed, and a restart agrees", async () => {
  // Room for ten entries; each `mkdir pI/q/r` makes three, so three fit.
  const quotaBytes = 10 * ENTRY_BYTES;
  const sessions = 20;
  const dir = await Deno.makeTempDir({ prefix: "fts-mkdirs-" });
  const root = join(dir, "root");
  const args = ["--quota", String(quotaBytes), "--reserve", "0", "--root", root];
  let inUse: number;
  const first = await startServer(args);
  try {
    const clients = await Promise.all(
      Array.from({ length: sessions }, () => RawClient.open(first.port)),
    );
    await Promise.all(
      clients.map((raw, i) => raw.send({ type: "request", id: 1, op: "mkdir", name: `p${i}/q/r` })),
    );
    const replies = await Promise.all(clients.map((raw) => readWithin(raw)));
    const made = replies.filter((reply) => reply?.ok === true).length;
    for (const reply of replies) {
      if (reply?.ok !== true) assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
    }
    assert.equal(made, Math.floor(quotaBytes / (3 * ENTRY_BYTES)));
    const tree = await listTree(root);
    assert.equal(tree.filter((path) => /^p\d+\/q\/r\/$/.test(path)).length, made);
    // Nothing left of the mkdirs refused: only whole chains.
    assert.equal(tree.length, EMPTY_ROOT.length + 3 * made, JSON.stringify(tree));
    inUse = await inUseBytes(clients[0]!, quotaBytes);
    for (const raw of clients) raw.close();
  } finally {
    await first.stop();
  }
  const second = await startServer(args);
  try {
    const raw = await RawClient.open(second.port);
    assert.equal(await inUseBytes(raw, quotaBytes), inUse);
    raw.close();
  } finally {
    await second.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
