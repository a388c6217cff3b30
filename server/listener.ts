/**
 * The accept loop: every connection becomes its own {@link Session} task, so
 * a slow, stuck or failing client never delays another. Connections past the
 * limits (in all, or from one peer address) get BUSY at once.
 *
 * @module
 */

import type net from "node:net";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { encodeFrame, writeAll } from "../protocol/frames.ts";
import { formatAddress, logEvent } from "./log.ts";
import { type PeerConn, Session, type SessionOptions } from "./session.ts";

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
  /** Refused connections whose BUSY message has not gone out yet. */
  #pendingRefusals = 0;

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
        this.#refuse(conn, `the server is at its limit of ${maxConnections} connections`);
        continue;
      }
      if (fromPeer >= maxConnectionsPerPeer) {
        this.#refuse(
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

  /** Refuses a connection with BUSY, or with a bare close when too many refusals are still pending. */
  #refuse(conn: PeerConn, reason: string): void {
    if (this.#pendingRefusals >= MAX_PENDING_BUSY_REFUSALS) {
      close(conn);
      logEvent({
        peer: formatAddress(conn.remoteAddr),
        op: "connect",
        result: "BUSY",
        detail: `closed without a reply: ${MAX_PENDING_BUSY_REFUSALS} refusals already pending`,
      });
      return;
    }
    this.#pendingRefusals += 1;
    void refuseBusy(conn, reason).finally(() => this.#pendingRefusals -= 1);
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

/** The most bytes one read takes from the TCP socket under a TLS connection: sixteen TLS records. */
const TLS_SOCKET_READ_BYTES = 256 * 1024;

/**
 * A TLS listener whose connections always free their socket when closed.
 *
 * `Deno.listenTls` does not: closing a `TlsConn` whose handshake has not
 * finished leaves the handshake running in the runtime with the socket, until
 * the peer sends or closes. A peer that connects and stays silent would hold
 * one descriptor per connection after its session (or its BUSY refusal) has
 * ended, and exhaust them. Here TCP connections are accepted by `Deno.listen`
 * and `node:tls` runs over each one; closing closes the socket itself,
 * handshake or not.
 *
 * Accepting is left to `Deno.listen` rather than `node:net` because a failed
 * accept (out of descriptors) then reaches {@link FtsServer}'s accept loop,
 * which backs off and tries again; `node:net`'s server stopped accepting for
 * good after one.
 */
export class TlsListener implements ConnListener {
  readonly #listener: Deno.TcpListener;
  readonly #context: tls.SecureContext;

  private constructor(listener: Deno.TcpListener, context: tls.SecureContext) {
    this.#listener = listener;
    this.#context = context;
  }

  /** Listens on `hostname:port` with the PEM certificate chain and key. */
  static open(
    options: { hostname: string; port: number; cert: string; key: string },
  ): TlsListener {
    const context = tls.createSecureContext({ cert: options.cert, key: options.key });
    const listener = Deno.listen({ hostname: options.hostname, port: options.port });
    return new TlsListener(listener, context);
  }

  get addr(): Deno.NetAddr {
    return this.#listener.addr;
  }

  /** The next connection, its TLS handshake not yet begun; a failed accept throws as `Deno.listen`'s does. */
  async accept(): Promise<PeerConn> {
    const conn = await this.#listener.accept();
    try {
      conn.setNoDelay(true);
    } catch {
      // The peer already left; the session will notice.
    }
    return new NodeTlsConn(conn, this.#context);
  }

  close(): void {
    this.#listener.close();
  }
}

/**
 * A server-side `node:tls` connection over a `Deno.TcpConn`, with the
 * `read`/`write`/`close` of a `Deno.Conn`. When the socket closes or fails,
 * every pending read and write ends at once: a peer that leaves mid-handshake
 * frees its session (or its BUSY refusal) then, not at a deadline.
 */
class NodeTlsConn implements PeerConn {
  readonly remoteAddr: Deno.NetAddr;
  readonly #socket: Duplex;
  readonly #tls: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  /** How to fail each write still waiting for its callback. */
  readonly #pendingWrites = new Set<(err: Error) => void>();
  #buffered = 0;
  /** Whether reading stopped because {@link TLS_READ_BUFFER_BYTES} are waiting for the session. */
  #paused = false;
  #ended = false;
  #closed = false;
  /** Whether the TLS handshake has finished. */
  #secure = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(conn: Deno.TcpConn, context: tls.SecureContext) {
    this.remoteAddr = conn.remoteAddr;
    this.#socket = duplexOf(conn);
    this.#tls = new tls.TLSSocket(this.#socket as net.Socket, {
      isServer: true,
      secureContext: context,
    });
    this.#tls.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
      if (this.#buffered >= TLS_READ_BUFFER_BYTES && !this.#paused) {
        // Pausing the TLS socket alone does not stop node:tls reading the
        // socket under it (measured: 256 MiB buffered); pausing that does.
        this.#paused = true;
        this.#tls.pause();
        this.#socket.pause();
      }
      this.#wakeReader();
    });
    this.#tls.on("secure", () => this.#secure = true);
    this.#tls.on("end", () => {
      this.#ended = true;
      // A peer that leaves before the handshake has finished can never be
      // written to, and node:tls neither fails nor completes writes queued for
      // it (nor closes): end them and the socket here.
      if (!this.#secure) {
        this.#failWrites(new Deno.errors.BrokenPipe("the peer left during the TLS handshake"));
        this.#socket.destroy();
      }
      this.#wakeReader();
    });
    this.#tls.on("close", () => {
      this.#ended = true;
      this.#failWrites(this.#error ?? new Deno.errors.BrokenPipe("the connection closed"));
      this.#socket.destroy();
      this.#wakeReader();
    });
    this.#tls.on("error", (err: Error) => {
      this.#error ??= denoError(err);
      this.#failWrites(this.#error);
      this.#socket.destroy();
      this.#wakeReader();
    });
    // The socket's own errors also reach the TLS socket; this only keeps them handled.
    this.#socket.on("error", () => {});
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
    if (this.#paused && this.#buffered < TLS_READ_BUFFER_BYTES && !this.#closed) {
      this.#paused = false;
      this.#socket.resume();
      this.#tls.resume();
    }
    return copied;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("the connection is closed"));
    }
    if (this.#error) return Promise.reject(this.#error);
    if (this.#ended) return Promise.reject(new Deno.errors.BrokenPipe("the connection closed"));
    return new Promise((resolve, reject) => {
      const fail = (err: Error) => {
        this.#pendingWrites.delete(fail);
        reject(err);
      };
      this.#pendingWrites.add(fail);
      this.#tls.write(bytes, (err?: Error | null) => {
        if (!this.#pendingWrites.delete(fail)) return; // Already failed by a close or an error.
        if (err) reject(denoError(err));
        else resolve(bytes.length);
      });
    });
  }

  close(): void {
    if (this.#closed) throw new Deno.errors.BadResource("the connection is already closed");
    this.#closed = true;
    this.#failWrites(new Deno.errors.Interrupted("the connection was closed"));
    this.#tls.destroy();
    this.#socket.destroy();
    this.#wakeReader();
  }

  #failWrites(err: Error): void {
    for (const fail of [...this.#pendingWrites]) fail(err);
  }

  #wakeReader(): void {
    this.#wake?.();
  }
}

/**
 * A `Deno.TcpConn` as the `node:stream` duplex that `node:tls` runs over.
 * Reads are pulled (one at a time, when TLS wants bytes), so a TLS connection
 * that stops reading stops reading the socket too. Destroying it closes the
 * connection.
 */
function duplexOf(conn: Deno.TcpConn): Duplex {
  const buffer = new Uint8Array(TLS_SOCKET_READ_BYTES);
  return new Duplex({
    read() {
      conn.read(buffer).then(
        (count) => this.push(count === null ? null : buffer.slice(0, count)),
        (err) => this.destroy(err),
      );
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(conn, chunk).then(() => callback(), callback);
    },
    // TLS records are at most 16 KiB: send those queued together in one write.
    writev(chunks: { chunk: Uint8Array }[], callback) {
      const bytes = chunks.length === 1
        ? chunks[0]!.chunk
        : Buffer.concat(chunks.map((c) => c.chunk));
      writeAll(conn, bytes).then(() => callback(), callback);
    },
    destroy(err, callback) {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      callback(err);
    },
  });
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
