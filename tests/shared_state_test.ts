/**
 * The parts of the state the server's workers share in memory, each on its
 * own: the lock (across real threads), the connection slots, the creation
 * journal, the transfer buffer pool's count, and a root opened once and
 * attached to after.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { BufferPool } from "../io/pump.ts";
import { ConnectionSlots } from "../server/connection_slots.ts";
import { CREATION_JOURNAL_BYTES, CreationJournal } from "../server/creation_journal.ts";
import { SharedLock } from "../server/shared_lock.ts";
import { Storage } from "../server/storage.ts";

Deno.test("SharedLock.hold() keeps two threads' read-then-write steps from interleaving", async () => {
  const lock = SharedLock.allocate();
  const counter = new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT);
  const rounds = 200_000;
  const ready = new SharedArrayBuffer(4);
  const workers = [1, 2].map(() =>
    new Worker(new URL("./fixtures/lock_counter.ts", import.meta.url), { type: "module" })
  );
  try {
    await Promise.all(workers.map((worker) =>
      new Promise((resolve, reject) => {
        worker.onmessage = resolve;
        worker.onerror = (event) => {
          event.preventDefault();
          reject(new Error(event.message));
        };
        worker.postMessage({ lock, counter, rounds, threads: workers.length, ready });
      })
    ));
    assert.equal(new Float64Array(counter)[0], 2 * rounds);
    // Free again: this thread takes it at once.
    assert.equal(new SharedLock(lock).hold(() => "taken"), "taken");
  } finally {
    for (const worker of workers) worker.terminate();
  }
});

Deno.test("SharedLock.hold() gives the lock back when its step throws, and may be taken again inside", () => {
  const buffer = SharedLock.allocate();
  const lock = new SharedLock(buffer);
  assert.throws(() => lock.hold(() => lock.hold(() => JSON.parse("{"))), SyntaxError);
  assert.equal(new Int32Array(buffer)[0], 0, "free");
  assert.equal(lock.hold(() => lock.hold(() => 7)), 7);
});

Deno.test("ConnectionSlots admits exactly as a count per peer would, through churn and long names", () => {
  const limits = { maxConnections: 300, maxConnectionsPerPeer: 5 };
  const buffers = ConnectionSlots.allocate(limits);
  // Two views of one table, as two workers have.
  const views = [new ConnectionSlots(buffers, limits), new ConnectionSlots(buffers, limits)];
  const model = new Map<string, number>();
  let total = 0;
  let seed = 1;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  for (let step = 0; step < 100_000; step++) {
    const slots = views[step % 2]!;
    const peer = random() < 0.01
      ? `fe80::${"a".repeat(50 + Math.floor(random() * 3))}` // Longer than a key: hashed.
      : `10.0.${Math.floor(random() * 4)}.${Math.floor(random() * 120)}`;
    if (random() < 0.55 || model.size === 0) {
      const held = model.get(peer) ?? 0;
      const expected = total >= limits.maxConnections
        ? "all"
        : held >= limits.maxConnectionsPerPeer
        ? "peer"
        : null;
      const refusal = slots.admit(peer);
      assert.equal(refusal?.limit ?? null, expected, `step ${step}, ${peer}`);
      if (refusal === null) {
        model.set(peer, held + 1);
        total++;
      }
    } else {
      const peers = [...model.keys()];
      const leaving = peers[Math.floor(random() * peers.length)]!;
      slots.release(leaving);
      const left = model.get(leaving)! - 1;
      if (left === 0) model.delete(leaving);
      else model.set(leaving, left);
      total--;
    }
    assert.equal(slots.held, total);
  }
});

Deno.test("CreationJournal keeps what is recorded while watched, across the ring's end, and says when it lost some", () => {
  const journal = new CreationJournal(CreationJournal.allocate());
  journal.record("/root/unwatched");
  const start = journal.watch();
  assert.deepEqual(journal.readSince(start), { paths: [], position: start });
  const path = `/root/${"é".repeat(1000)}`; // 2006 bytes.
  const fitting = Math.floor(CREATION_JOURNAL_BYTES / (2 + 2006));
  let position = start;
  for (let i = 0; i < 3 * fitting; i++) {
    journal.record(path);
    if (i % 100 === 99) {
      const read = journal.readSince(position)!;
      assert.equal(read.paths.length, 100);
      assert.ok(read.paths.every((p) => p === path));
      position = read.position;
    }
  }
  // Fallen behind by more than the ring holds: refused, not read wrong.
  journal.record(path);
  assert.equal(journal.readSince(start), null);
  journal.unwatch();
  const after = journal.readSince(position)!.position;
  journal.record("/root/after");
  assert.deepEqual(journal.readSince(after)?.paths, []);
});

Deno.test("BufferPool.shareAllocations() holds pools together to their pairs, and frees idle ones for a pool refused", () => {
  const shared = new SharedArrayBuffer(8);
  const options = { maxPairs: 2, bufferBytes: 1024, fallbackBytes: 16, minPooledBytes: 1 };
  const [first, second] = [new BufferPool(options), new BufferPool(options)];
  first.shareAllocations(shared);
  second.shareAllocations(shared);
  const lent = [first.borrow(4096), first.borrow(4096)];
  assert.ok(lent.every((pair) => pair.buffers[0].length === 1024));
  assert.equal(second.borrow(4096).buffers[0].length, 16, "both pairs are the first pool's");
  for (const pair of lent) pair.release();
  // The refusal had one of them freed rather than kept: the second pool gets it.
  assert.equal(second.borrow(4096).buffers[0].length, 1024);
  assert.equal(first.borrow(4096).buffers[0].length, 1024, "the one kept");
});

Deno.test({
  name:
    "Storage.attach() neither locks, cleans nor measures the root: the first worker's temporaries and counts stay; another server's open leaves them too",
  // Storage.open() holds the root's lock for as long as the process lives.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "fts-attach-" }));
    const root = join(dir, "root");
    await Deno.mkdir(root);
    await Deno.writeFile(join(root, "kept.bin"), new Uint8Array(10_000));
    const limits = { quotaBytes: 1_000_000, reserveBytes: 0 };
    const shared = Storage.allocateShared();
    const first = await Storage.open(root, limits, shared);
    try {
      const pending = join(root, ".fts", "tmp", shared.server.id, "in-flight");
      await Deno.writeFile(pending, new Uint8Array(1));
      const second = await Storage.attach(root, limits, shared);
      assert.ok(await Deno.stat(pending).then(() => true, () => false), "not cleaned");
      assert.equal(second.space.usedBytes, 10_000, "the first worker's measure");
      second.space.freed(4_000);
      assert.equal(first.space.usedBytes, 6_000, "one budget");
      // A second open is another server's: it shares the root and leaves this one's temporaries.
      const other = await Storage.open(root, limits);
      other.close();
      assert.ok(await Deno.stat(pending).then(() => true, () => false), "not cleaned");
      // A root swapped between the first worker's open and another's attach is not served.
      await Deno.rename(root, `${root}-moved`);
      await Deno.mkdir(join(root, ".fts", "tmp", shared.server.id), { recursive: true });
      await assert.rejects(Storage.attach(root, limits, shared), /moved or replaced/);
    } finally {
      first.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
