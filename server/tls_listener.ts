/**
 * The TLS listener: TCP connections accepted by `Deno.listen`, with
 * `node:tls` run over each one, so that closing a connection always frees its
 * socket, handshake finished or not.
 *
 * @module
 */

import type net from "node:net";
import { Buffer } from "node:buffer";
import { Duplex } from "node:stream";
import tls from "node:tls";
import { writeAll } from "../protocol/frames.ts";
import type { ConnListener } from "./listener.ts";
import type { PeerConn } from "./peer_conn.ts";

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
 * accept (out of descriptors) then reaches the accept loop (FtsServer, ./listener.ts),
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

  /**
   * Listens on `hostname:port` with the PEM certificate chain and key; with
   * `reusePort`, sharing the port with other listeners (Linux, `--unstable-net`).
   */
  static open(
    options: { hostname: string; port: number; cert: string; key: string; reusePort?: boolean },
  ): TlsListener {
    const context = tls.createSecureContext({ cert: options.cert, key: options.key });
    const listener = Deno.listen({
      hostname: options.hostname,
      port: options.port,
      reusePort: options.reusePort ?? false,
    });
    return new TlsListener(listener, context);
  }

  /** The address it listens on. */
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

  /** Stops listening; connections already accepted go on. */
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
