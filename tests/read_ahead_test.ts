/**
 * ReadAhead over a real loopback TCP connection: it tells waiting bytes
 * from none without waiting for the peer, and hands every byte on in order.
 */

import { strict as assert } from "node:assert";
import { ReadAhead } from "../io/read_ahead.ts";
import { writeAll } from "../protocol/frames.ts";

/** How long a step may take before the test fails instead of hanging. */
const STEP_TIMEOUT_MS = 10_000;

/** A connected pair on 127.0.0.1: `near` is read through a ReadAhead, `far` writes. */
async function connectedPair(): Promise<
  { near: Deno.Conn; far: Deno.Conn; [Symbol.asyncDispose](): Promise<void> }
> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const far = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  const near = await accepted;
  listener.close();
  far.setNoDelay(true);
  return {
    near,
    far,
    [Symbol.asyncDispose]: async () => {
      for (const conn of [near, far]) {
        try {
          conn.close();
        } catch {
          // Already closed.
        }
      }
      await Promise.resolve();
    },
  };
}

/** `promise`, or a failure once STEP_TIMEOUT_MS pass. */
async function within<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle`)), STEP_TIMEOUT_MS);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Reads until `count` bytes came, through `ahead`, in reads of at most `chunk` bytes. */
async function readBytes(ahead: ReadAhead, count: number, chunk: number): Promise<Uint8Array> {
  const bytes = new Uint8Array(count);
  let filled = 0;
  while (filled < count) {
    const n = await within(ahead.read(bytes.subarray(filled, filled + chunk)), "a read");
    assert.ok(n !== null && n > 0, `the stream ended after ${filled} of ${count} bytes`);
    filled += n;
  }
  return bytes;
}

Deno.test("ReadAhead.waiting() is true once bytes arrived, and they are read in order", async () => {
  await using pair = await connectedPair();
  const ahead = new ReadAhead(pair.near);
  const sent = crypto.getRandomValues(new Uint8Array(1000));
  await writeAll(pair.far, sent);
  // Bounded: the bytes are on their way through loopback.
  let waiting = false;
  for (let i = 0; i < 1000 && !waiting; i++) waiting = await within(ahead.waiting(), "waiting()");
  assert.equal(waiting, true);
  // Reads smaller than what was read ahead get it piece by piece.
  assert.deepEqual(await readBytes(ahead, sent.length, 7), sent);
});

Deno.test("ReadAhead.waiting() is false when the peer sends nothing, without waiting for it", async () => {
  await using pair = await connectedPair();
  const ahead = new ReadAhead(pair.near);
  assert.equal(await within(ahead.waiting(), "waiting()"), false);
  assert.equal(await within(ahead.waiting(), "waiting() again"), false);
  // What the pending look ahead reads later is the next read's, in order.
  const sent = new Uint8Array([0, 1, 2, 0, 255]);
  const read = readBytes(ahead, sent.length, 64);
  await writeAll(pair.far, sent);
  assert.deepEqual(await read, sent);
});

Deno.test("ReadAhead passes the end of the stream and a failure on to the next read", async () => {
  await using ended = await connectedPair();
  const aheadOfEnd = new ReadAhead(ended.near);
  await writeAll(ended.far, new Uint8Array([9]));
  ended.far.close();
  assert.deepEqual(await readBytes(aheadOfEnd, 1, 8), new Uint8Array([9]));
  await within(aheadOfEnd.waiting(), "waiting()");
  assert.equal(await within(aheadOfEnd.read(new Uint8Array(8)), "a read at the end"), null);
  assert.equal(await within(aheadOfEnd.waiting(), "waiting() at the end"), false);

  await using broken = await connectedPair();
  const aheadOfFailure = new ReadAhead(broken.near);
  assert.equal(await within(aheadOfFailure.waiting(), "waiting()"), false);
  // Closing our side fails the pending look ahead: kept, not left unhandled, and thrown next.
  broken.near.close();
  await assert.rejects(within(aheadOfFailure.read(new Uint8Array(8)), "a read after the close"));
});
