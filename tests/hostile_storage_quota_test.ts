/**
 * The quota and the free-space reserve hold against hostile sequences: data
 * held for a resume counts, and a file renamed away while its overwrite is in
 * flight does not leave the quota crediting a replacement that never happens.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { FREE_SPACE_MEASURE_INTERVAL_MS } from "../server/space.ts";
import { PARTIAL_EXPIRY_MS, type PendingUpload, Storage } from "../server/storage.ts";
import { listTree, RawClient, readWithin, startServer, waitFor } from "./_helpers.ts";

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
