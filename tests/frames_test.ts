import assert from "node:assert/strict";
import { ProtocolError } from "../protocol/errors.ts";
import { type ByteSource, encodeFrame, FrameReader } from "../protocol/frames.ts";
import { MAX_CONTROL_BYTES } from "../protocol/limits.ts";
import { BufferPool, pumpExactly } from "../io/pump.ts";
import { readData } from "../io/read_data.ts";
import { concat } from "./_helpers.ts";

/** A source that hands out `bytes` in pieces of the given sizes (cycling), like TCP might. */
function chunkedSource(bytes: Uint8Array, pieces: number[]): ByteSource {
  let offset = 0;
  let turn = 0;
  return {
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const size = Math.min(pieces[turn++ % pieces.length]!, buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + size));
      offset += size;
      return Promise.resolve(size);
    },
  };
}

Deno.test("FrameReader reads messages and data split at every possible boundary", async () => {
  const data = new Uint8Array(3000);
  crypto.getRandomValues(data);
  data[0] = 0; // A NUL at the start, like croc's regression test.
  const stream = concat([
    encodeFrame({ type: "data", size: data.length, name: "ü/\u00e9" }),
    data,
    encodeFrame({ type: "reply", ok: true }),
  ]);
  for (const pieces of [[1], [2, 3], [4], [7, 1, 1000], [stream.length]]) {
    const reader = new FrameReader(chunkedSource(stream, pieces));
    const header = await reader.readMessage();
    assert.deepEqual(header, { type: "data", size: 3000, name: "ü/é" });
    const received: number[] = [];
    await readData(reader, data.length, (chunk) => {
      received.push(...chunk);
    });
    assert.deepEqual(new Uint8Array(received), data, `pieces ${pieces}`);
    assert.deepEqual(await reader.readMessage(), { type: "reply", ok: true });
    assert.equal(await reader.readMessage(), null);
  }
});

Deno.test("FrameReader round-trips a single NUL byte and an empty run of data", async () => {
  const stream = concat([encodeFrame({ n: 1 }), new Uint8Array([0]), encodeFrame({ n: 2 })]);
  const reader = new FrameReader(chunkedSource(stream, [1]));
  await reader.readMessage();
  const bytes: number[] = [];
  await readData(reader, 1, (chunk) => {
    bytes.push(...chunk);
  });
  assert.deepEqual(bytes, [0]);
  await readData(reader, 0, () => assert.fail("no chunk for an empty run"));
  assert.deepEqual(await reader.readMessage(), { n: 2 });
});

Deno.test("FrameReader refuses an oversized length before reading the body", async () => {
  const header = new Uint8Array(4);
  new DataView(header.buffer).setUint32(0, MAX_CONTROL_BYTES + 1);
  let reads = 0;
  const source: ByteSource = {
    read(buffer) {
      reads += 1;
      if (reads > 1) throw new Error("read past the header");
      buffer.set(header);
      return Promise.resolve(4);
    },
  };
  const error = await new FrameReader(source).readMessage().catch((err) => err);
  assert.ok(error instanceof ProtocolError);
  assert.equal(error.code, "TOO_LARGE");
  assert.match(error.message, /exceeds the limit of 65536/);
});

Deno.test("FrameReader rejects truncated frames, truncated data and non-objects", async () => {
  const frame = encodeFrame({ type: "hello" });
  await assert.rejects(
    new FrameReader(chunkedSource(frame.subarray(0, 2), [1])).readMessage(),
    /middle of a frame/,
  );
  await assert.rejects(
    new FrameReader(chunkedSource(frame.subarray(0, frame.length - 1), [3])).readMessage(),
    /middle of a frame/,
  );
  await assert.rejects(
    readData(new FrameReader(chunkedSource(new Uint8Array(10), [10])), 20, () => {}),
    /10 bytes of data still due/,
  );
  for (const body of ["[1,2]", "42", "null", "not json", '"text"']) {
    const bytes = new TextEncoder().encode(body);
    const raw = concat([new Uint8Array([0, 0, 0, bytes.length]), bytes]);
    await assert.rejects(new FrameReader(chunkedSource(raw, [100])).readMessage(), ProtocolError);
  }
  const invalidUtf8 = new Uint8Array([0, 0, 0, 3, 0x22, 0xff, 0x22]);
  await assert.rejects(new FrameReader(chunkedSource(invalidUtf8, [7])).readMessage(), /UTF-8/);
});

Deno.test("encodeFrame() refuses a message over the control limit", () => {
  assert.throws(() => encodeFrame({ name: "x".repeat(MAX_CONTROL_BYTES) }), /exceeds the limit/);
});

Deno.test("readData() refuses lengths that are not whole bytes", async () => {
  const reader = new FrameReader(chunkedSource(new Uint8Array(8), [8]));
  for (const size of [1.5, -1, Number.NaN, 2 ** 53]) {
    await assert.rejects(readData(reader, size, () => {}), ProtocolError, String(size));
  }
});

Deno.test("pumpExactly() delivers every byte in order while reading ahead, and reports a short source", async () => {
  const bytes = new Uint8Array(10_000).map((_, i) => i % 251);
  const received: number[] = [];
  let readsPending = 0;
  let overlapped = false;
  const source: ByteSource = chunkedSource(bytes, [700, 1, 3000]);
  const watched: ByteSource = {
    async read(buffer) {
      readsPending += 1;
      await new Promise((resolve) => setTimeout(resolve, 1));
      readsPending -= 1;
      return await source.read(buffer);
    },
  };
  await pumpExactly(
    watched,
    bytes.length,
    async (chunk) => {
      if (readsPending > 0) overlapped = true; // The next read runs while this chunk is consumed.
      const copy = Array.from(chunk);
      await new Promise((resolve) => setTimeout(resolve, 1));
      received.push(...copy);
    },
    (missing) => new Error(`${missing} missing`),
    new BufferPool({ maxPairs: 1, bufferBytes: 1024, fallbackBytes: 16, minPooledBytes: 1 }),
  );
  assert.deepEqual(new Uint8Array(received), bytes);
  assert.ok(overlapped, "reads should overlap with the consumer");
  await assert.rejects(
    pumpExactly(
      chunkedSource(bytes.subarray(0, 10), [4]),
      20,
      () => {},
      (m) => new Error(`${m} missing`),
    ),
    /10 missing/,
  );
});

Deno.test("BufferPool lends at most maxPairs large pairs, then small ones, and reuses returned pairs", () => {
  const pool = new BufferPool({
    maxPairs: 2,
    bufferBytes: 1024,
    fallbackBytes: 64,
    minPooledBytes: 2048,
  });
  const a = pool.borrow(5000);
  const b = pool.borrow(5000);
  const c = pool.borrow(5000);
  assert.equal(a.buffers[0].length, 1024);
  assert.equal(b.buffers[1].length, 1024);
  assert.equal(c.buffers[0].length, 64, "past maxPairs a transfer gets small buffers, never waits");
  assert.equal(pool.borrow(10).buffers[0].length, 10, "a small file gets buffers its size");
  assert.equal(pool.borrow(2000).buffers[0].length, 64, "under minPooledBytes, no pooled pair");
  a.release();
  a.release(); // Twice is harmless.
  const d = pool.borrow(5000);
  assert.equal(d.buffers[0], a.buffers[0], "a returned pair is lent again");
  assert.equal(pool.borrow(5000).buffers[0].length, 64, "releasing twice did not free two slots");
});

Deno.test("pumpExactly() rejects with a consumer's failure that comes while the next read is pending", async () => {
  const slowSource: ByteSource = {
    async read(buffer) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      buffer.fill(1);
      return buffer.length;
    },
  };
  // The consumer fails at once (a peer gone mid-download) while the pump waits for the
  // next read: that must surface from pumpExactly, not as an unhandled rejection.
  await assert.rejects(
    pumpExactly(
      slowSource,
      10_000,
      () => Promise.reject(new Deno.errors.ConnectionReset("peer gone")),
      (missing) => new Error(`${missing} missing`),
      new BufferPool({ maxPairs: 1, bufferBytes: 1024, fallbackBytes: 16, minPooledBytes: 1 }),
    ),
    Deno.errors.ConnectionReset,
  );
});
