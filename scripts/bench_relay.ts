/**
 * A TCP relay on loopback that delays each direction: it accepts on a port of
 * its own, connects each accepted connection to the real port, and forwards
 * both ways, holding every chunk for a fixed time before writing it on, in
 * order. It emulates a round-trip time for request/reply exchanges (twice the
 * delay), and with {@link DelayRelay.limitRate} a slow link (a pause after
 * each chunk written); not TCP's window behaviour.
 *
 * An end of stream from one side is passed on as a half-close once the data
 * before it has been delivered; when both directions have ended, or either
 * side fails, both sockets are closed. {@link DelayRelay.close} closes the
 * listener and every socket still open.
 *
 * @module
 */

/** Bytes one direction may hold in flight before the relay stops reading from its sender. */
export const RELAY_MAX_HELD_BYTES = 16 << 20;

/** Largest read from a socket; each chunk read is held and forwarded as one write. */
const RELAY_READ_BYTES = 64 << 10;

/** A running relay. */
export interface DelayRelay {
  /** The port to connect to instead of the real one. */
  port: number;
  /**
   * Caps each direction of every connection at `bytesPerSecond` from now on
   * (a slow link, for a transfer that must still be running when a test acts
   * on it); null lifts the cap.
   */
  limitRate(bytesPerSecond: number | null): void;
  /**
   * Closes every connection now, both its sockets, as a cut cable would
   * end them (with what was held in flight lost), and goes on accepting
   * new ones.
   */
  cut(): void;
  /** Stops accepting, closes every connection, and waits for the relay's tasks to end. */
  close(): Promise<void>;
}

/** The cap on a relay's rate, shared by all its connections; null: none. */
interface RateCap {
  bytesPerSecond: number | null;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/**
 * Forwards `from` to `to`, each chunk written `delayMs` after it was read.
 * Reading pauses while {@link RELAY_MAX_HELD_BYTES} are held (back-pressure).
 * Resolves when `from` has ended and everything before its end is written,
 * then half-closes `to`; rejects when either side fails.
 */
async function forward(
  from: Deno.Conn,
  to: Deno.Conn,
  delayMs: number,
  rate: RateCap,
): Promise<void> {
  const held: { due: number; bytes: Uint8Array }[] = [];
  let heldBytes = 0;
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    wake?.();
    wake = null;
  };
  const waitForChange = () => new Promise<void>((resolve) => wake = resolve);

  const reading = (async () => {
    try {
      while (true) {
        while (heldBytes >= RELAY_MAX_HELD_BYTES) await waitForChange();
        const buffer = new Uint8Array(RELAY_READ_BYTES);
        const count = await from.read(buffer);
        if (count === null) break;
        held.push({ due: performance.now() + delayMs, bytes: buffer.subarray(0, count) });
        heldBytes += count;
        notify();
      }
    } finally {
      ended = true;
      notify();
    }
  })();

  const writing = (async () => {
    while (true) {
      const next = held[0];
      if (next === undefined) {
        if (ended) break;
        await waitForChange();
        continue;
      }
      const wait = next.due - performance.now();
      if (wait > 0) await sleep(wait);
      held.shift();
      heldBytes -= next.bytes.length;
      notify();
      for (let done = 0; done < next.bytes.length;) {
        done += await to.write(next.bytes.subarray(done));
      }
      if (rate.bytesPerSecond !== null) await sleep(1000 * next.bytes.length / rate.bytesPerSecond);
    }
  })();

  // A write failing leaves the reader waiting on its socket: the caller closes both sockets.
  await Promise.all([reading, writing]);
  await to.closeWrite().catch(() => {});
}

/**
 * Starts a relay on 127.0.0.1 in front of `targetPort` (also on
 * 127.0.0.1), delaying each direction by `delayMs`.
 *
 * @example
 * ```ts ignore
 * const relay = await startDelayRelay(serverPort, 10); // a 20 ms round trip
 * try {
 *   await run("rsync", ["-r", "dir/", `rsync://127.0.0.1:${relay.port}/bench/dir/`]);
 * } finally {
 *   await relay.close();
 * }
 * ```
 */
export function startDelayRelay(targetPort: number, delayMs: number): Promise<DelayRelay> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  const tasks = new Set<Promise<void>>();
  const rate: RateCap = { bytesPerSecond: null };

  const relayOne = async (client: Deno.TcpConn) => {
    let server: Deno.Conn | null = null;
    try {
      const target = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
      server = target;
      open.add(target);
      client.setNoDelay(true);
      target.setNoDelay(true);
      // One direction failing ends the other: closing both sockets makes its pending read or
      // write fail too. Both ending normally (an end of stream each way) ends the connection.
      const closeBoth = () => {
        closeQuietly(client);
        closeQuietly(target);
      };
      await Promise.all([
        forward(client, target, delayMs, rate).catch(closeBoth),
        forward(target, client, delayMs, rate).catch(closeBoth),
      ]);
    } catch {
      // The real port refused or a socket failed: the relayed connection just ends.
    } finally {
      closeQuietly(client);
      open.delete(client);
      if (server) {
        closeQuietly(server);
        open.delete(server);
      }
    }
  };

  const accepting = (async () => {
    try {
      for await (const client of listener) {
        open.add(client);
        const task = relayOne(client);
        tasks.add(task);
        void task.finally(() => tasks.delete(task));
      }
    } catch {
      // The listener was closed.
    }
  })();

  return Promise.resolve({
    port: (listener.addr as Deno.NetAddr).port,
    limitRate(bytesPerSecond) {
      rate.bytesPerSecond = bytesPerSecond;
    },
    cut() {
      for (const conn of open) closeQuietly(conn);
    },
    async close() {
      try {
        listener.close();
      } catch {
        // Already closed.
      }
      await accepting;
      for (const conn of open) closeQuietly(conn);
      await Promise.allSettled([...tasks]);
    },
  });
}
