/**
 * The accept loop: every connection becomes its own {@link Session} task, so
 * a slow, stuck or failing client never delays another. Connections past the
 * limits (in all, or from one peer address) get BUSY at once.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import { encodeFrame, writeAll } from "../protocol/frames.ts";
import { formatAddress, logEvent } from "./log.ts";
import { type PeerConn, Session, type SessionOptions } from "./session.ts";

/** How long a refused connection gets to receive its BUSY message. */
const BUSY_WRITE_TIMEOUT_MS = 2_000;

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

/** What the accept loop needs of a listener: a `Deno.Listener`, or a {@link TlsListener}. */
export interface ConnListener {
  readonly addr: Deno.Addr;
  accept(): Promise<PeerConn>;
  close(): void;
}

/** Serves sessions from one listener until shut down. */
export class FtsServer {
  readonly #listener: ConnListener;
  readonly #options: SessionOptions;
  readonly #sessions = new Map<Session, Promise<void>>();
  readonly #perPeer = new Map<string, number>();
  #accepting: Promise<void> | null = null;

  constructor(listener: ConnListener, options: SessionOptions) {
    this.#listener = listener;
    this.#options = options;
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
    const { maxConnections, maxConnectionsPerPeer } = this.#options.limits;
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
      const peer = (conn.remoteAddr as Deno.NetAddr).hostname ?? "";
      const fromPeer = this.#perPeer.get(peer) ?? 0;
      if (this.#sessions.size >= maxConnections) {
        void refuseBusy(conn, `the server is at its limit of ${maxConnections} connections`);
        continue;
      }
      if (fromPeer >= maxConnectionsPerPeer) {
        void refuseBusy(
          conn,
          `this address already has ${fromPeer} connections, the server's limit per peer`,
        );
        continue;
      }
      this.#perPeer.set(peer, fromPeer + 1);
      const session = new Session(conn, this.#options);
      const done = session.run().finally(() => {
        this.#sessions.delete(session);
        const left = (this.#perPeer.get(peer) ?? 1) - 1;
        if (left === 0) this.#perPeer.delete(peer);
        else this.#perPeer.set(peer, left);
      });
      this.#sessions.set(session, done);
    }
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
    await writeAll(conn, encodeFrame({ type: "fatal", code: "BUSY", message: reason }));
  } catch {
    // The peer is gone, or its TLS handshake failed: nothing more to tell it.
  } finally {
    clearTimeout(timer);
    close(conn);
    logEvent({ peer: formatAddress(conn.remoteAddr), op: "connect", result: "BUSY" });
  }
}

function close(conn: PeerConn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}

/** Bytes a TLS connection buffers from the peer before it stops reading from the socket. */
const TLS_READ_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * A TLS listener whose connections always free their socket when closed.
 *
 * `Deno.listenTls` does not: closing a `TlsConn` whose handshake has not
 * finished leaves the handshake running in the runtime with the socket, until
 * the peer sends or closes. A peer that connects and stays silent would hold
 * one descriptor per connection after its session (or its BUSY refusal) has
 * ended, and exhaust them. Here the TCP socket is accepted by `node:net` and
 * wrapped by `node:tls`; closing destroys the socket itself, handshake or not.
 */
export class TlsListener implements ConnListener {
  readonly #server: net.Server;
  readonly #waiting: PeerConn[] = [];
  #wake: (() => void) | null = null;
  #closed = false;
  readonly addr: Deno.NetAddr;

  private constructor(server: net.Server, addr: Deno.NetAddr) {
    this.#server = server;
    this.addr = addr;
  }

  /** Listens on `hostname:port` with the PEM certificate chain and key. */
  static async open(
    options: { hostname: string; port: number; cert: string; key: string },
  ): Promise<TlsListener> {
    const context = tls.createSecureContext({ cert: options.cert, key: options.key });
    const server = net.createServer({ noDelay: true });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const bound = server.address() as net.AddressInfo;
    const listener = new TlsListener(server, {
      transport: "tcp",
      hostname: bound.address,
      port: bound.port,
    });
    server.on("connection", (socket: net.Socket) => listener.#arrived(socket, context));
    // Accept errors (out of descriptors) are the runtime's to retry; nothing to add here.
    server.on("error", () => {});
    return listener;
  }

  #arrived(socket: net.Socket, context: tls.SecureContext): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    this.#waiting.push(new NodeTlsConn(socket, context));
    this.#wake?.();
  }

  async accept(): Promise<PeerConn> {
    while (true) {
      if (this.#closed) throw new Deno.errors.BadResource("the listener is closed");
      const conn = this.#waiting.shift();
      if (conn) return conn;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#waiting.splice(0)) conn.close();
    this.#wake?.();
  }
}

/** A server-side `node:tls` connection with the `read`/`write`/`close` of a `Deno.Conn`. */
class NodeTlsConn implements PeerConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: net.Socket;
  readonly #tls: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #buffered = 0;
  #ended = false;
  #closed = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: net.Socket, context: tls.SecureContext) {
    this.#socket = socket;
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    this.#tls = new tls.TLSSocket(socket, { isServer: true, secureContext: context });
    this.#tls.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= TLS_READ_BUFFER_BYTES) this.#tls.pause();
      this.#wakeReader();
    });
    this.#tls.on("end", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    this.#tls.on("close", () => {
      this.#ended = true;
      this.#wakeReader();
    });
    this.#tls.on("error", (err: Error) => {
      this.#error ??= denoError(err);
      this.#wakeReader();
    });
    // The raw socket's own errors also reach the TLS socket; this only keeps them handled.
    socket.on("error", () => {});
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) throw new Deno.errors.Interrupted("the connection was closed");
      if (this.#error) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = null;
    }
    let copied = 0;
    while (copied < buffer.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, buffer.length - copied);
      buffer.set(chunk.subarray(0, take), copied);
      copied += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#buffered -= copied;
    if (this.#buffered < TLS_READ_BUFFER_BYTES && !this.#closed) this.#tls.resume();
    return copied;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("the connection is closed"));
    }
    if (this.#error) return Promise.reject(this.#error);
    return new Promise((resolve, reject) => {
      this.#tls.write(bytes, (err?: Error | null) => {
        if (err) reject(denoError(err));
        else if (this.#closed) reject(new Deno.errors.Interrupted("the connection was closed"));
        else resolve(bytes.length);
      });
    });
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the connection is already closed");
    this.#closed = true;
    this.#tls.destroy();
    this.#socket.destroy();
    this.#wakeReader();
  }

  #wakeReader(): void {
    this.#wake?.();
  }
}

/** The `Deno.errors` class the session recognises for a `node:net`/`node:tls` error. */
function denoError(err: Error): Error {
  const code = (err as { code?: unknown }).code;
  if (code === "ECONNRESET") return new Deno.errors.ConnectionReset(err.message);
  if (
    code === "EPIPE" || code === "ERR_STREAM_DESTROYED" || code === "ERR_STREAM_WRITE_AFTER_END"
  ) {
    return new Deno.errors.BrokenPipe(err.message);
  }
  // A failed TLS handshake, or bytes that are not TLS.
  return new Deno.errors.InvalidData(err.message);
}
