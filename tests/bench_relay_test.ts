import assert from "node:assert/strict";
import { startDelayRelay } from "../scripts/bench_relay.ts";

/** Reads until the peer's end of stream (bounded by `maxBytes`). */
async function readToEnd(conn: Deno.Conn, maxBytes: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(65536);
  while (total <= maxBytes) {
    const count = await conn.read(buffer);
    if (count === null) break;
    chunks.push(buffer.slice(0, count));
    total += count;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

/** How long a test's connection may live: past it the connection is closed, so a lost end of stream fails the test instead of hanging it. */
const CONNECTION_DEADLINE_MS = 10_000;

/** Connects to the relay; the connection is closed at the deadline if still open. */
async function connectWithDeadline(port: number): Promise<{ conn: Deno.Conn; done(): void }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), CONNECTION_DEADLINE_MS);
  return {
    conn,
    done() {
      clearTimeout(timer);
      try {
        conn.close();
      } catch {
        // Closed at the deadline.
      }
    },
  };
}

/** How long close() may take to end an idle connection: far less than the connection's deadline. */
const CLOSE_DEADLINE_MS = 5_000;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let done = 0; done < bytes.length;) done += await conn.write(bytes.subarray(done));
}

/** A server on loopback that takes one connection and runs `serve` on it. */
function oneConnectionServer(serve: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await serve(conn);
    } finally {
      conn.close();
      listener.close();
    }
  })();
  return { port: (listener.addr as Deno.NetAddr).port, served };
}

Deno.test("startDelayRelay() forwards both ways in order, each way held for the delay", async () => {
  const delayMs = 50;
  // An echo server: everything it reads it writes back, until the end of stream.
  const server = oneConnectionServer(async (conn) => {
    const buffer = new Uint8Array(65536);
    for (let i = 0; i < 10_000; i++) {
      const count = await conn.read(buffer);
      if (count === null) break;
      await writeAll(conn, buffer.subarray(0, count));
    }
    await conn.closeWrite();
  });
  const relay = await startDelayRelay(server.port, delayMs);
  try {
    const { conn, done } = await connectWithDeadline(relay.port);
    try {
      // One byte there and back: at least one delay each way.
      const started = performance.now();
      await writeAll(conn, new Uint8Array([0]));
      const first = new Uint8Array(1);
      assert.equal(await conn.read(first), 1);
      assert.ok(performance.now() - started >= 2 * delayMs - 2, "the round trip was not delayed");
      // Then 3 MiB of random bytes containing NULs, written in pieces: back unchanged, in order.
      const sent = new Uint8Array(3 << 20);
      for (let i = 0; i < sent.length; i += 65536) {
        crypto.getRandomValues(sent.subarray(i, i + 65536));
      }
      const echoed = readToEnd(conn, sent.length);
      for (let at = 0; at < sent.length; at += 100_000) {
        await writeAll(conn, sent.subarray(at, at + 100_000));
      }
      await conn.closeWrite();
      assert.deepEqual(await echoed, sent);
    } finally {
      done();
    }
    await server.served;
  } finally {
    await relay.close();
  }
});

Deno.test("startDelayRelay() passes an end of stream on and the reply still comes back", async () => {
  // The server reads to the end, then answers and closes: a half-close must reach it
  // as an end of stream, and its answer must still reach the client.
  const server = oneConnectionServer(async (conn) => {
    const request = await readToEnd(conn, 1 << 20);
    await writeAll(conn, new TextEncoder().encode(`got ${request.length}`));
  });
  const relay = await startDelayRelay(server.port, 5);
  try {
    const { conn, done } = await connectWithDeadline(relay.port);
    try {
      await writeAll(conn, new Uint8Array(1000));
      await conn.closeWrite();
      const reply = new TextDecoder().decode(await readToEnd(conn, 1 << 20));
      assert.equal(reply, "got 1000");
    } finally {
      done();
    }
    await server.served;
  } finally {
    await relay.close();
  }
});

Deno.test("startDelayRelay() close() ends the connections still open, on both sides", async () => {
  let serverSaw: Uint8Array | null = null;
  const server = oneConnectionServer(async (conn) => {
    serverSaw = await readToEnd(conn, 1 << 20);
  });
  const relay = await startDelayRelay(server.port, 5);
  const { conn, done } = await connectWithDeadline(relay.port);
  try {
    await writeAll(conn, new Uint8Array([1, 2, 3]));
    // Idle now; closing the relay must end both the server's side and the client's.
    await new Promise((resolve) => setTimeout(resolve, 50));
    // close() returns once its connections have ended; a relay that left them open would
    // wait for the client's own deadline, long after this one.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const closed = await Promise.race([
      relay.close().then(() => server.served).then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), CLOSE_DEADLINE_MS)),
    ]);
    clearTimeout(timer);
    assert.ok(closed, "close() left the relayed connection open");
    assert.deepEqual(serverSaw, new Uint8Array([1, 2, 3]));
    const ended = await conn.read(new Uint8Array(16)).catch(() => null);
    assert.equal(ended, null);
  } finally {
    done();
  }
});

Deno.test("startDelayRelay() ends a connection whose real port refuses", async () => {
  const unused = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (unused.addr as Deno.NetAddr).port;
  unused.close();
  const relay = await startDelayRelay(port, 5);
  try {
    const { conn, done } = await connectWithDeadline(relay.port);
    try {
      const ended = await conn.read(new Uint8Array(16)).catch(() => null);
      assert.equal(ended, null);
    } finally {
      done();
    }
  } finally {
    await relay.close();
  }
});
