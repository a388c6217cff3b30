/**
 * The accept loop: every connection becomes its own {@link Session} task, so
 * a slow, stuck or failing client never delays another. Connections past the
 * limits (in all, or from one peer address) get BUSY at once; the slots are
 * counted in shared memory (connection_slots.ts), the same for every worker.
 *
 * @module
 */

import { encodeServerMessage, writeAll } from "../protocol/frames.ts";
import type { ConnectionSlots } from "./connection_slots.ts";
import { logEvent } from "./log.ts";
import { formatPeer, peerHostname } from "./peer_address.ts";
import type { PeerConn } from "./peer_conn.ts";
import { Session, type SessionOptions } from "./session.ts";

/** How long a refused connection gets to receive its BUSY message. */
const BUSY_WRITE_TIMEOUT_MS = 2_000;

/**
 * At most this many refusals wait for their BUSY message to go out at once;
 * past it a refused connection is closed without one. Over TLS the message
 * needs the peer to finish a handshake, so each refusal may hold a descriptor
 * for {@link BUSY_WRITE_TIMEOUT_MS}: without a cap a peer opening connections
 * faster than that would make the server hold more descriptors the faster it
 * connects.
 */
const MAX_PENDING_BUSY_REFUSALS = 32;

/**
 * The first pause after a failed accept. Out of descriptors, the kernel keeps
 * offering the same waiting connection and every accept fails at once: without
 * a pause the loop spins a core and floods the log.
 */
const ACCEPT_BACKOFF_MIN_MS = 5;

/** The pause doubles with each failure in a row up to this; a success resets it. */
const ACCEPT_BACKOFF_MAX_MS = 1_000;

/** At most one "accept failed" line per this long, counting the failures it stands for. */
const ACCEPT_FAILURE_LOG_INTERVAL_MS = 1_000;

/** What the accept loop needs of a listener: a `Deno.Listener`, or a `TlsListener` (./tls_listener.ts). */
export interface ConnListener {
  /** The address it listens on. */
  readonly addr: Deno.Addr;
  /** The next connection; throws `BadResource` or `Interrupted` once closed. */
  accept(): Promise<PeerConn>;
  /** Stops listening. */
  close(): void;
}

/** What a server needs besides what each session does. */
export interface FtsServerOptions extends SessionOptions {
  /** The connection slots, in all and per peer, shared with the server's other workers. */
  slots: ConnectionSlots;
  /**
   * Where refusals still pending are counted with the server's other workers
   * (one Int32), so that {@link MAX_PENDING_BUSY_REFUSALS} holds for the server.
   */
  pendingRefusals: SharedArrayBuffer;
}

/** Serves sessions from one listener until shut down. */
export class FtsServer {
  readonly #listener: ConnListener;
  readonly #options: FtsServerOptions;
  readonly #sessions = new Map<Session, Promise<void>>();
  #accepting: Promise<void> | null = null;
  /** Refused connections whose BUSY message has not gone out yet, on every worker. */
  readonly #pendingRefusals: Int32Array;

  /** A server for `listener`'s connections, each a session with `options`; {@link start} begins. */
  constructor(listener: ConnListener, options: FtsServerOptions) {
    this.#listener = listener;
    this.#options = options;
    this.#pendingRefusals = new Int32Array(options.pendingRefusals);
  }

  /** Starts accepting connections. */
  start(): void {
    this.#accepting = this.#acceptLoop();
  }

  /**
   * Stops accepting, closes idle sessions, lets requests in flight finish for
   * up to `graceMs`, then closes whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
    for (const session of this.#sessions.keys()) session.stopWhenIdle();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.all(this.#sessions.values()), graceOver]);
    clearTimeout(timer);
    for (const session of this.#sessions.keys()) session.forceClose();
    await Promise.all(this.#sessions.values());
  }

  async #acceptLoop(): Promise<void> {
    const { slots } = this.#options;
    const failures = new AcceptFailures();
    while (true) {
      let conn: PeerConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return; // The listener was closed: shutting down.
        }
        // A failed accept (out of file descriptors, a reset before accept)
        // affects that connection only; pause, then keep serving the others.
        await failures.record(err);
        continue;
      }
      failures.reset();
      try {
        (conn as Partial<Deno.TcpConn>).setNoDelay?.(true);
      } catch {
        // The peer already left; the session will notice.
      }
      const peer = peerHostname(conn.remoteAddr);
      const refusal = slots.admit(peer);
      if (refusal?.limit === "all") {
        this.#refuse(conn, `the server is at its limit of ${refusal.held} connections`);
        continue;
      }
      if (refusal?.limit === "peer") {
        this.#refuse(
          conn,
          `this address already has ${refusal.held} connections, the server's limit per peer`,
        );
        continue;
      }
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        slots.release(peer);
      };
      const session = new Session(releasedOnClose(conn, release), this.#options);
      const done = session.run().finally(() => {
        this.#sessions.delete(session);
        release();
      });
      this.#sessions.set(session, done);
    }
  }

  /** Refuses a connection with BUSY, or with a bare close when too many refusals are still pending. */
  #refuse(conn: PeerConn, reason: string): void {
    const pending = this.#pendingRefusals;
    if (Atomics.add(pending, 0, 1) >= MAX_PENDING_BUSY_REFUSALS) {
      Atomics.sub(pending, 0, 1);
      close(conn);
      logEvent({
        peer: formatPeer(conn.remoteAddr),
        op: "connect",
        result: "BUSY",
        detail: `closed without a reply: ${MAX_PENDING_BUSY_REFUSALS} refusals already pending`,
      });
      return;
    }
    void refuseBusy(conn, reason).finally(() => Atomics.sub(pending, 0, 1));
  }
}

/** Failed accepts in a row: the pause before the next one, and a log that stays short. */
class AcceptFailures {
  #backoffMs = 0;
  #unlogged = 0;
  #lastLoggedAt = -Infinity;

  /** Logs the failure (at most once per interval) and waits out the back-off. */
  async record(err: unknown): Promise<void> {
    this.#unlogged += 1;
    const now = performance.now();
    if (now - this.#lastLoggedAt >= ACCEPT_FAILURE_LOG_INTERVAL_MS) {
      logEvent({
        peer: "-",
        op: "accept",
        result: "failed",
        detail: `${this.#unlogged} time(s) since the last report: ${err}`,
      });
      this.#unlogged = 0;
      this.#lastLoggedAt = now;
    }
    this.#backoffMs = Math.min(
      ACCEPT_BACKOFF_MAX_MS,
      Math.max(ACCEPT_BACKOFF_MIN_MS, this.#backoffMs * 2),
    );
    await new Promise((resolve) => setTimeout(resolve, this.#backoffMs));
  }

  /** An accept succeeded: the next failure starts from the shortest pause. */
  reset(): void {
    this.#backoffMs = 0;
  }
}

/** Tells a connection over the limits that the server is busy, then closes it. */
async function refuseBusy(conn: PeerConn, reason: string): Promise<void> {
  const timer = setTimeout(() => close(conn), BUSY_WRITE_TIMEOUT_MS);
  try {
    await writeAll(conn, encodeServerMessage({ type: "fatal", code: "BUSY", message: reason }));
  } catch {
    // The peer is gone, or its TLS handshake failed: nothing more to tell it.
  } finally {
    clearTimeout(timer);
    close(conn);
    logEvent({ peer: formatPeer(conn.remoteAddr), op: "connect", result: "BUSY" });
  }
}

/**
 * `conn`, whose slot is given back (`release`) before it is first closed:
 * a peer that sees the close and connects again then finds the slot free,
 * whichever worker accepts it.
 */
function releasedOnClose(conn: PeerConn, release: () => void): PeerConn {
  return {
    remoteAddr: conn.remoteAddr,
    read: (buffer) => conn.read(buffer),
    write: (bytes) => conn.write(bytes),
    close: () => {
      release();
      conn.close();
    },
  };
}

function close(conn: PeerConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
