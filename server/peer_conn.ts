/**
 * The connection a session runs on: what it uses of it, the idle timeout
 * and the rate floor's byte count applied to every read and write, and which
 * errors mean that the peer went away.
 *
 * @module
 */

import type { ByteSink, ByteSource } from "../protocol/frames.ts";
import type { RateFloor } from "./rate_floor.ts";

/**
 * What a session uses of its connection: a `Deno.Conn`, or the TLS connection
 * of {@link https://nodejs.org/api/tls.html node:tls} that tls_listener.ts adapts.
 */
export type PeerConn = Pick<Deno.Conn, "read" | "write" | "close" | "remoteAddr">;

/**
 * The connection with the idle timeout applied to every read and write: a
 * peer that stops sending (between requests or in the middle of a transfer)
 * or stops reading is closed after `idleMs`, so it cannot hold a slot. Every
 * byte moved is counted for the rate floor, which catches the peer that
 * restarts the idle timer with a byte at a time.
 *
 * @example
 * ```ts
 * import { idleTimed } from "./peer_conn.ts";
 * import { RateFloor } from "./rate_floor.ts";
 * const floor = new RateFloor({ minBytesPerSecond: 0, windowMs: 1_000, onSlow() {} });
 * const conn = { read: () => Promise.resolve(null), write: (b: Uint8Array) => Promise.resolve(b.length) };
 * const timed = idleTimed(conn, 5_000, () => {}, floor);
 * console.assert(await timed.write(new Uint8Array(3)) === 3);
 * ```
 */
export function idleTimed(
  conn: Pick<PeerConn, "read" | "write">,
  idleMs: number,
  onIdle: () => void,
  rateFloor: RateFloor,
): ByteSource & ByteSink {
  const timed = async <T>(operation: Promise<T>): Promise<T> => {
    const timer = setTimeout(onIdle, idleMs);
    try {
      return await operation;
    } finally {
      clearTimeout(timer);
    }
  };
  return {
    read: async (buffer) => {
      const count = await timed(conn.read(buffer));
      if (count !== null) rateFloor.count(count);
      return count;
    },
    write: async (bytes) => {
      const count = await timed(conn.write(bytes));
      rateFloor.count(count);
      return count;
    },
  };
}

/** Errors that mean the peer went away (or was closed by us): not the server's fault. */
export function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected ||
    err instanceof Deno.errors.InvalidData; // A TLS handshake that failed.
}
