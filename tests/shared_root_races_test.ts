/**
 * Races between two servers on one root, made repeatable: the first
 * server's system call at the heart of a step is held for seconds by strace
 * (tests/_syscall_delay.ts) while the other server acts, and what is on the
 * disk and in the space ledger afterwards is checked. What must hold: no
 * upload a client was told is saved is lost, a move takes away only what it
 * moved, and the quota counts what the root holds.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeFrame } from "../protocol/frames.ts";
import {
  eagerUpload,
  RawClient,
  readWithin,
  runCommand,
  startServer,
  waitFor,
} from "./_helpers.ts";
import {
  beginUpload,
  finishUpload,
  inFreshRoot,
  QUOTA_FLAGS,
  randomBytes,
  usedOf,
  withTwoServers,
} from "./_shared_root.ts";
import { delaySyscalls, inSyscall } from "./_syscall_delay.ts";

/** How long a test waits for the held step to reach the point it holds at. */
const HELD_TIMEOUT_MS = 10_000;

/** How long a reply may take once the held call is let go. */
const HELD_REPLY_TIMEOUT_MS = 20_000;

/** The x86_64 numbers of unlink and unlinkat, as /proc/PID/task/TID/syscall shows them. */
const UNLINK_SYSCALLS = [87, 263];

/** Whether anything is at `path`. */
function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A rename request without overwrite. */
function moveRequest(name: string, to: string): Uint8Array {
  return encodeFrame({ type: "request", id: 1, op: "rename", name, to, overwrite: false });
}

Deno.test("mv without -f through A, held between the link onto the new name and the unlink of the old, while B publishes the old name with -f: B's upload survives", async () => {
  await inFreshRoot(async (root) => {
    await withTwoServers({ a: root, b: root }, async (a, b) => {
      Deno.writeTextFileSync(join(root, "a.txt"), "old a\n");
      const fresh = new TextEncoder().encode("new a, acknowledged to B's client\n");
      const viaB = await beginUpload(b, "a.txt", fresh.length, { overwrite: true });
      const mover = await RawClient.open(a.port);
      try {
        await using _held = await delaySyscalls(
          a.process.pid,
          "unlink,unlinkat",
          join(root, "a.txt"),
        );
        await mover.sendBytes(moveRequest("a.txt", "b.txt"));
        // A has linked b.txt and not yet unlinked a.txt.
        assert.ok(await waitFor(() => exists(join(root, "b.txt")), HELD_TIMEOUT_MS));
        assert.ok(exists(join(root, "a.txt")), "the delay was not in effect");
        const uploadReply = await finishUpload(viaB, fresh);
        assert.equal(uploadReply?.ok, true, JSON.stringify(uploadReply));
        const moveReply = await readWithin(mover, HELD_REPLY_TIMEOUT_MS);
        assert.equal(moveReply?.ok, true, JSON.stringify(moveReply));
        assert.equal(Deno.readTextFileSync(join(root, "b.txt")), "old a\n");
        assert.deepEqual(Deno.readFileSync(join(root, "a.txt")), fresh, "B's upload was lost");
      } finally {
        mover.close();
        viaB.close();
      }
    });
  });
});

Deno.test("mv of a directory without -f through A, held before its rename, while B deletes and uploads the new name: nothing B was told is saved is lost, and the tree is whole", async () => {
  await inFreshRoot(async (root) => {
    await withTwoServers({ a: root, b: root }, async (a, b) => {
      Deno.mkdirSync(join(root, "src"));
      Deno.writeTextFileSync(join(root, "src", "inner"), "inner\n");
      const fresh = new TextEncoder().encode("file d, acknowledged to B's client\n");
      const mover = await RawClient.open(a.port);
      const other = await RawClient.open(b.port);
      try {
        await using _held = await delaySyscalls(
          a.process.pid,
          "rename,renameat,renameat2",
          join(root, "src"),
        );
        await mover.sendBytes(moveRequest("src", "d"));
        assert.ok(await waitFor(() => exists(join(root, "d")), HELD_TIMEOUT_MS));
        assert.ok(exists(join(root, "src", "inner")), "the delay was not in effect");
        await other.sendBytes(encodeFrame({ type: "request", id: 1, op: "delete", name: "d" }));
        const removed = await readWithin(other, HELD_REPLY_TIMEOUT_MS);
        await other.sendBytes(eagerUpload(2, "d", fresh));
        const uploaded = await readWithin(other, HELD_REPLY_TIMEOUT_MS);
        const moved = await readWithin(mover, HELD_REPLY_TIMEOUT_MS);
        const replies = JSON.stringify([moved, removed, uploaded]);
        // The tree is whole, where the move left it.
        const movedTo = moved?.ok === true ? join(root, "d", "inner") : join(root, "src", "inner");
        assert.equal(Deno.readTextFileSync(movedTo), "inner\n", replies);
        if (uploaded?.ok === true) assert.deepEqual(Deno.readFileSync(join(root, "d")), fresh);
        assert.ok(moved?.ok === true || uploaded?.ok === true || removed?.ok === true, replies);
      } finally {
        mover.close();
        other.close();
      }
    });
  });
});

Deno.test("rm through A, held before its unlink, while B publishes the same name with -f: the ledger counts what the root holds", async () => {
  await inFreshRoot(async (root) => {
    let counted = 0;
    await withTwoServers({ a: root, b: root }, async (a, b) => {
      Deno.writeFileSync(join(a.dir, "t"), randomBytes(4 << 20));
      assert.equal((await runCommand(a, ["put", "t"])).code, 0);
      Deno.writeFileSync(join(a.dir, "keep"), randomBytes(5 << 20));
      assert.equal((await runCommand(a, ["put", "keep"])).code, 0);
      const viaA = await RawClient.open(a.port);
      const viaB = await RawClient.open(b.port);
      try {
        await using _held = await delaySyscalls(a.process.pid, "unlink,unlinkat", join(root, "t"));
        await viaA.sendBytes(encodeFrame({ type: "request", id: 1, op: "delete", name: "t" }));
        // A has measured t (4 MiB) and is about to unlink it.
        assert.ok(await waitFor(() => inSyscall(a.process.pid, UNLINK_SYSCALLS), HELD_TIMEOUT_MS));
        await viaB.sendBytes(eagerUpload(1, "t", new Uint8Array(10), { overwrite: true }));
        const put = await readWithin(viaB, HELD_REPLY_TIMEOUT_MS);
        assert.equal(put?.ok, true, JSON.stringify(put));
        const rm = await readWithin(viaA, HELD_REPLY_TIMEOUT_MS);
        assert.equal(rm?.ok, true, JSON.stringify(rm));
      } finally {
        viaA.close();
        viaB.close();
      }
      counted = await usedOf(b);
    }, QUOTA_FLAGS);
    // A server alone measures the root afresh.
    const fresh = await startServer(QUOTA_FLAGS, { root });
    try {
      const measured = await usedOf(fresh);
      assert.equal(
        counted,
        measured,
        `the ledger counted ${counted} bytes; the root holds ${measured}`,
      );
    } finally {
      await fresh.stop();
    }
  });
});
