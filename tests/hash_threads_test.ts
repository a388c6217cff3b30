/**
 * Unit tests of io/hash_threads.ts: digests computed on hash threads equal
 * those computed in place, for chunks in shared memory and copies; leases.
 */

import assert from "node:assert/strict";
import { createStreamingHash } from "../io/checksum.ts";
import {
  createTransferHash,
  HashThreadPool,
  HashThreads,
  OFF_THREAD_HASH_MIN_BYTES,
  OffThreadHash,
  useHashThreads,
} from "../io/hash_threads.ts";
import type { ChecksumName } from "../protocol/checksum.ts";

/** `bytes` pseudo-random bytes (fixed seed), in shared memory when `shared`. */
function bytesOf(length: number, shared: boolean): Uint8Array {
  const bytes = shared ? new Uint8Array(new SharedArrayBuffer(length)) : new Uint8Array(length);
  let state = 12345;
  for (let i = 0; i < length; i++) {
    state = (state * 1103515245 + 12345) >>> 0;
    bytes[i] = state >>> 24;
  }
  return bytes;
}

async function inPlaceHex(algorithm: ChecksumName, chunks: Uint8Array[]): Promise<string> {
  const hash = await createStreamingHash(algorithm);
  for (const chunk of chunks) hash.update(chunk);
  return hash.hex();
}

async function withPool(count: number, body: (threads: HashThreads) => Promise<void>) {
  const pool = await HashThreadPool.start(count);
  try {
    await body(new HashThreads(pool.link()));
  } finally {
    pool.terminate();
  }
}

for (const algorithm of ["xxh3-128", "sha256"] as const) {
  Deno.test(`OffThreadHash gives the in-place ${algorithm} digest, chunks shared or copied`, async () => {
    await withPool(1, async (threads) => {
      const chunks = [
        bytesOf(1 << 20, true),
        bytesOf(12345, false), // not in shared memory: sent as a copy
        bytesOf(0, true),
        bytesOf(3 << 19, true).subarray(7, 100_007), // a view at an offset
      ];
      const hash = threads.lease(algorithm);
      assert.ok(hash !== null, "a free hash thread is leased");
      for (const chunk of chunks) await hash.update(chunk);
      assert.equal((await hash.digest()).hex, await inPlaceHex(algorithm, chunks));
    });
  });
}

Deno.test("HashThreads.lease() gives each hash thread to one transfer at a time", async () => {
  await withPool(2, async (threads) => {
    const first = threads.lease("xxh3-128");
    const second = threads.lease("sha256");
    assert.ok(first !== null && second !== null);
    assert.equal(threads.lease("xxh3-128"), null, "both threads are leased");
    await first.update(bytesOf(1000, true));
    await first.digest(); // ends the lease
    const third = threads.lease("xxh3-128");
    assert.ok(third !== null, "a digest gives the thread back");
    second.release(); // a failed transfer gives it back without a digest
    assert.ok(threads.lease("sha256") !== null);
    // A hash begun after an abandoned one on the same thread starts from nothing.
    await third.update(bytesOf(10, true));
    assert.equal((await third.digest()).hex, await inPlaceHex("xxh3-128", [bytesOf(10, true)]));
  });
});

Deno.test("HashThreads share leases across links of one pool (two threads that move bytes)", async () => {
  const pool = await HashThreadPool.start(1);
  try {
    const a = new HashThreads(pool.link());
    const b = new HashThreads(pool.link());
    const held = a.lease("sha256");
    assert.ok(held !== null);
    assert.equal(b.lease("sha256"), null, "the other link sees the lease");
    const data = bytesOf(4096, true);
    await held.update(data);
    assert.equal((await held.digest()).hex, await inPlaceHex("sha256", [data]));
    const next = b.lease("sha256");
    assert.ok(next !== null, "free again for the other link");
    await next.update(data);
    assert.equal((await next.digest()).hex, await inPlaceHex("sha256", [data]));
  } finally {
    pool.terminate();
  }
});

Deno.test("HashThreads with no hash threads (one core) leases nothing", async () => {
  await withPool(0, (threads) => {
    assert.equal(threads.lease("xxh3-128"), null);
    return Promise.resolve();
  });
});

Deno.test("OffThreadHash refuses use after its digest", async () => {
  await withPool(1, async (threads) => {
    const hash = threads.lease("xxh3-128")!;
    await hash.digest();
    await assert.rejects(() => hash.digest(), /already finished/);
  });
});

Deno.test("createTransferHash() hashes a large transfer on a hash thread and a small one in place", async () => {
  const pool = await HashThreadPool.start(1);
  try {
    useHashThreads(pool.link());
    const large = await createTransferHash("xxh3-128", OFF_THREAD_HASH_MIN_BYTES);
    assert.ok(large instanceof OffThreadHash, "a large transfer hashes off the thread");
    const small = await createTransferHash("xxh3-128", OFF_THREAD_HASH_MIN_BYTES - 1);
    assert.ok(!(small instanceof OffThreadHash), "a small one in place");
    const second = await createTransferHash("sha256", OFF_THREAD_HASH_MIN_BYTES);
    assert.ok(!(second instanceof OffThreadHash), "with every hash thread busy, in place");
    large[Symbol.dispose]();
    using third = await createTransferHash("sha256", OFF_THREAD_HASH_MIN_BYTES);
    assert.ok(third instanceof OffThreadHash, "disposing gives the thread back");
  } finally {
    pool.terminate();
  }
});

Deno.test("a hash thread refuses to start with any permission", async () => {
  // The test process has every permission: a thread that inherited them must not run.
  const thread = new Worker(new URL("../io/hash_thread.ts", import.meta.url), {
    type: "module",
    deno: { permissions: "inherit" },
  });
  const outcome = await new Promise<string>((resolve) => {
    thread.onmessage = (event) => resolve(`started: ${JSON.stringify(event.data)}`);
    thread.onerror = (event) => {
      event.preventDefault();
      resolve(`refused: ${event.message}`);
    };
  });
  thread.terminate();
  assert.match(outcome, /^refused: .*permissions it must not have: read, write, net/);
});
