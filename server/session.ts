/**
 * One client connection: the handshake, then a read → dispatch → reply loop.
 * Nothing a peer sends can throw past this connection: a protocol violation
 * closes it, an operation error is a reply and the session goes on.
 *
 * @module
 */

import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import {
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import {
  decodeHello,
  decodeRequest,
  errorReply,
  type Request,
  UnknownOpError,
} from "../protocol/messages.ts";
import { toFtsError } from "./error_codes.ts";
import { type HandlerContext, type HandlerResult, HANDLERS } from "./handlers.ts";
import { formatAddress, logEvent } from "./log.ts";
import type { Storage } from "./storage.ts";

/** How long a new connection has to complete the handshake: a silent peer cannot hold a slot. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;

/** What a session needs from the server it belongs to. */
export interface SessionOptions {
  storage: Storage;
  maxFileBytes: number;
  /** Called when a permitted client asks the server to terminate. */
  onTerminate(): void;
}

/** One connection's lifetime. */
export class Session {
  readonly #conn: Deno.Conn;
  readonly #options: SessionOptions;
  readonly #peer: string;
  readonly #peerHostname: string;
  readonly #context: HandlerContext;
  #idle = true;
  #stopping = false;

  constructor(conn: Deno.Conn, options: SessionOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#peer = formatAddress(conn.remoteAddr);
    this.#peerHostname = (conn.remoteAddr as Deno.NetAddr).hostname ?? "";
    const send = (message: Message) => writeAll(conn, encodeFrame(message));
    this.#context = {
      reader: new FrameReader(conn, { maxControlBytes: MAX_CONTROL_BYTES }),
      conn,
      storage: options.storage,
      maxFileBytes: options.maxFileBytes,
      send,
      midStream: false,
    };
  }

  /** Serves the connection until it ends. Never throws. */
  async run(): Promise<void> {
    logEvent({ peer: this.#peer, op: "connect", result: "ok" });
    let result = "closed";
    try {
      if (await this.#handshake()) await this.#serveRequests();
    } catch (err) {
      result = await this.#failConnection(err);
    } finally {
      this.#close();
      logEvent({ peer: this.#peer, op: "disconnect", result });
    }
  }

  /**
   * Ends the session at the next point where no request is in flight: at
   * once if it is waiting for a request, otherwise after the current one.
   */
  stopWhenIdle(): void {
    this.#stopping = true;
    if (this.#idle) this.#close();
  }

  /** Closes the connection now, whatever it is doing. */
  forceClose(): void {
    this.#close();
  }

  async #handshake(): Promise<boolean> {
    const deadline = setTimeout(() => this.#close(), HANDSHAKE_TIMEOUT_MS);
    try {
      await this.#context.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        software: `fts/${SOFTWARE_VERSION}`,
        limits: {
          maxControlBytes: MAX_CONTROL_BYTES,
          maxFileBytes: this.#options.maxFileBytes,
          maxNameBytes: MAX_NAME_BYTES,
        },
        features: [],
      });
      const message = await this.#context.reader.readMessage();
      if (message === null) return false;
      const hello = decodeHello(message);
      if (hello.protocol !== PROTOCOL_VERSION) {
        const text =
          `this server speaks fts protocol ${PROTOCOL_VERSION}, the client speaks ${hello.protocol}`;
        await this.#context.send(errorReply(0, "VERSION", text));
        logEvent({ peer: this.#peer, op: "hello", result: "VERSION", detail: hello.software });
        return false;
      }
      await this.#context.send({ type: "reply", id: 0, ok: true });
      return true;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #serveRequests(): Promise<void> {
    while (!this.#stopping) {
      this.#idle = true;
      const message = await this.#context.reader.readMessage();
      this.#idle = false;
      if (message === null) return;
      let request: Request;
      try {
        request = decodeRequest(message);
      } catch (err) {
        if (!(err instanceof UnknownOpError)) throw err;
        await this.#context.send(errorReply(err.id, err.code, err.message));
        logEvent({ peer: this.#peer, op: "request", result: err.code, detail: err.message });
        continue;
      }
      const then = await this.#dispatch(request);
      if (then === "close") return;
      if (then === "terminate") this.#options.onTerminate();
    }
  }

  async #dispatch(request: Request): Promise<HandlerResult["then"]> {
    const started = performance.now();
    const name = "name" in request ? request.name : undefined;
    const handler = HANDLERS[request.op];
    try {
      if (handler.loopbackOnly && !isLoopback(this.#peerHostname)) {
        throw new FtsError("DENIED", `only a client on the server's own host may ${request.op}`);
      }
      // The table's rows are typed per operation; `request.op` selects the matching one.
      const result = await (handler.handle as (
        r: Request,
        c: HandlerContext,
      ) => Promise<HandlerResult>)(request, this.#context);
      await this.#context.send({ type: "reply", id: request.id, ok: true, ...result.fields });
      logEvent({
        peer: this.#peer,
        op: request.op,
        name,
        bytes: result.bytes,
        durationMs: performance.now() - started,
        result: "ok",
      });
      return result.then;
    } catch (err) {
      if (this.#context.midStream || err instanceof ProtocolError || isConnectionError(err)) {
        throw err;
      }
      const error = toFtsError(err, name ?? request.op);
      await this.#context.send(errorReply(request.id, error.code, error.message));
      logEvent({
        peer: this.#peer,
        op: request.op,
        name,
        durationMs: performance.now() - started,
        result: error.code,
        detail: error.code === "INTERNAL" ? String(err) : undefined,
      });
      return undefined;
    }
  }

  /** Ends the connection after an error that is not an operation error; returns the log result. */
  async #failConnection(err: unknown): Promise<string> {
    if (err instanceof ProtocolError && !this.#context.midStream) {
      // Best effort: the peer may already be gone.
      await this.#context.send({ type: "fatal", code: err.code, message: err.message })
        .catch(() => {});
      logEvent({ peer: this.#peer, op: "protocol", result: err.code, detail: err.message });
      return "closed";
    }
    if (isConnectionError(err) || err instanceof ProtocolError) return "dropped";
    logEvent({ peer: this.#peer, op: "session", result: "INTERNAL", detail: String(err) });
    return "INTERNAL";
  }

  #close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Reports whether an address is on this host: 127.0.0.0/8, ::1, or IPv4-mapped loopback. */
export function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") || hostname.startsWith("::ffff:127.");
}

function isConnectionError(err: unknown): boolean {
  return err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.ConnectionAborted ||
    err instanceof Deno.errors.BadResource ||
    err instanceof Deno.errors.Interrupted ||
    err instanceof Deno.errors.NotConnected;
}
