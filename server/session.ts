/**
 * One client connection: the handshake and authentication, then a read →
 * dispatch → reply loop. Nothing a peer sends can throw past this connection:
 * a protocol violation closes it, an operation error is a reply and the
 * session goes on. Policy (roles, read-only) is checked here, at dispatch.
 *
 * @module
 */

import { FtsError, ProtocolError } from "../protocol/errors.ts";
import {
  type ByteSink,
  type ByteSource,
  encodeFrame,
  FrameReader,
  type Message,
  writeAll,
} from "../protocol/frames.ts";
import {
  EAGER_UPLOAD_FEATURE,
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  MIN_ANNOUNCED_CONTROL_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import {
  decodeHello,
  decodeRequest,
  errorReply,
  type Request,
  type Role,
  roleAllows,
  UnknownOpError,
} from "../protocol/messages.ts";
import type { AuthThrottle } from "./auth_throttle.ts";
import type { ServerLimits } from "./config.ts";
import { toFtsError } from "./error_codes.ts";
import { type HandlerContext, type HandlerResult, HANDLERS, skipEagerUpload } from "./handlers.ts";
import { formatAddress, logEvent } from "./log.ts";
import { RateFloor } from "./rate_floor.ts";
import type { Storage } from "./storage.ts";
import type { Identity, TokenVerifier } from "./tokens.ts";

/**
 * What a session uses of its connection: a `Deno.Conn`, or the TLS connection
 * of {@link https://nodejs.org/api/tls.html node:tls} that listener.ts adapts.
 */
export type PeerConn = Pick<Deno.Conn, "read" | "write" | "close" | "remoteAddr">;

/** What a session needs from the server it belongs to. */
export interface SessionOptions {
  storage: Storage;
  limits: ServerLimits;
  /** Null when authentication is off. */
  verifier: TokenVerifier | null;
  throttle: AuthThrottle;
  readOnly: boolean;
  /** Called when a permitted client asks the server to terminate. */
  onTerminate(): void;
}

/**
 * After a `terminate`, requests the client had already sent on that
 * connection are each answered BUSY for up to this long, then it closes: long
 * enough to read what was pipelined, short enough not to hold the exit up.
 */
const TERMINATE_DRAIN_MS = 1_000;

/** At most this many requests are answered that way. */
const TERMINATE_DRAIN_MAX_REQUESTS = 1_000;

/** One connection's lifetime. */
export class Session {
  readonly #conn: PeerConn;
  readonly #options: SessionOptions;
  readonly #peer: string;
  readonly #peerHostname: string;
  readonly #context: HandlerContext;
  #identity: Identity | null = null;
  #idle = true;
  #stopping = false;
  /** Why the rate floor closed the connection, for the log; null unless it did. */
  #slowDetail: string | null = null;
  readonly #rateFloor: RateFloor;

  constructor(conn: PeerConn, options: SessionOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#peer = formatAddress(conn.remoteAddr);
    this.#peerHostname = (conn.remoteAddr as Deno.NetAddr).hostname ?? "";
    const { minRateBytesPerSecond, minRateWindowMs } = options.limits;
    const rateFloor = new RateFloor({
      minBytesPerSecond: minRateBytesPerSecond,
      windowMs: minRateWindowMs,
      onSlow: (bytesPerSecond) => {
        this.#slowDetail = `${bytesPerSecond} B/s over the last ${minRateWindowMs / 1000} s, ` +
          `under the --min-rate floor of ${minRateBytesPerSecond} B/s`;
        this.#close();
      },
    });
    this.#rateFloor = rateFloor;
    const timed = idleTimed(conn, options.limits.idleTimeoutMs, () => this.#close(), rateFloor);
    this.#context = {
      reader: new FrameReader(timed, { maxControlBytes: options.limits.maxControlBytes }),
      conn: timed,
      rateFloor,
      storage: options.storage,
      maxFileBytes: options.limits.maxFileBytes,
      // Within the client's own limit, once its hello has said it.
      send: (message: Message) =>
        writeAll(timed, encodeFrame(message, this.#context.peerMaxControlBytes)),
      peerMaxControlBytes: MAX_CONTROL_BYTES,
      midStream: false,
    };
  }

  /** The name of the token this session authenticated with, for the log; none without authentication. */
  get #tokenName(): string | undefined {
    return this.#options.verifier ? this.#identity?.name : undefined;
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
      logEvent({
        peer: this.#peer,
        token: this.#tokenName,
        op: "disconnect",
        result,
        detail: this.#slowDetail ?? undefined,
      });
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

  /** Hello, version check, authentication; all within the handshake deadline. */
  async #handshake(): Promise<boolean> {
    const { limits, verifier } = this.#options;
    const deadline = setTimeout(() => this.#close(), limits.handshakeTimeoutMs);
    try {
      await this.#context.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        software: `fts/${SOFTWARE_VERSION}`,
        limits: {
          maxControlBytes: limits.maxControlBytes,
          maxFileBytes: limits.maxFileBytes,
          maxNameBytes: MAX_NAME_BYTES,
        },
        auth: verifier ? "token" : "none",
        features: [EAGER_UPLOAD_FEATURE],
      });
      const message = await this.#context.reader.readMessage();
      if (message === null) return false;
      const hello = decodeHello(message);
      this.#context.peerMaxControlBytes = Math.min(
        MAX_CONTROL_BYTES,
        Math.max(MIN_ANNOUNCED_CONTROL_BYTES, hello.maxControlBytes ?? MAX_CONTROL_BYTES),
      );
      if (hello.protocol !== PROTOCOL_VERSION) {
        const text =
          `this server speaks fts protocol ${PROTOCOL_VERSION}, the client speaks ${hello.protocol}`;
        await this.#context.send(errorReply(0, "VERSION", text));
        logEvent({ peer: this.#peer, op: "hello", result: "VERSION", detail: hello.software });
        return false;
      }
      const identity = verifier
        ? verifier.verify(hello.token)
        : identityWithoutAuth(this.#peerHostname);
      if (identity === null) {
        const delayMs = this.#options.throttle.recordFailure(this.#peerHostname);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        const text = hello.token === undefined
          ? "this server needs a token (--token, FTS_TOKEN)"
          : "the token was not accepted";
        await this.#context.send(errorReply(0, "DENIED", text));
        logEvent({
          peer: this.#peer,
          op: "auth",
          result: "DENIED",
          detail: `delayed ${delayMs}ms`,
        });
        return false;
      }
      if (verifier) this.#options.throttle.recordSuccess(this.#peerHostname);
      this.#identity = identity;
      await this.#context.send({ type: "reply", id: 0, ok: true, role: identity.role });
      logEvent({ peer: this.#peer, token: this.#tokenName, op: "auth", result: identity.role });
      return true;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #serveRequests(): Promise<void> {
    while (!this.#stopping) {
      this.#idle = true;
      // A request trickled a byte at a time is held to the rate floor too.
      this.#rateFloor.engageAtNextByte();
      const message = await this.#context.reader.readMessage()
        .finally(() => this.#rateFloor.disengage());
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
      if (then === "terminate") {
        this.#options.onTerminate();
        await this.#refuseAfterTerminate();
        return;
      }
    }
  }

  /** Answers the requests pipelined behind a `terminate` with BUSY, so none goes unanswered. */
  async #refuseAfterTerminate(): Promise<void> {
    const deadline = setTimeout(() => this.#close(), TERMINATE_DRAIN_MS);
    const text = "the server is shutting down (terminate)";
    try {
      for (let i = 0; i < TERMINATE_DRAIN_MAX_REQUESTS; i++) {
        const message = await this.#context.reader.readMessage();
        if (message === null) return;
        let id: number;
        let op: string;
        try {
          const request = decodeRequest(message);
          if (request.op === "upload" && request.eager) {
            await skipEagerUpload(request, this.#context);
          }
          id = request.id;
          op = request.op;
        } catch (err) {
          if (!(err instanceof UnknownOpError)) throw err;
          id = err.id;
          op = "request";
        }
        await this.#context.send(errorReply(id, "BUSY", text));
        logEvent({ peer: this.#peer, token: this.#tokenName, op, result: "BUSY", detail: text });
      }
    } catch (err) {
      if (!isConnectionError(err)) throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  async #dispatch(request: Request): Promise<HandlerResult["then"]> {
    const started = performance.now();
    const name = "name" in request ? request.name : undefined;
    const handler = HANDLERS[request.op];
    const logged = { peer: this.#peer, token: this.#tokenName, op: request.op, name };
    try {
      if (request.op === "upload" && request.eager && request.size > this.#context.maxFileBytes) {
        // The hello announced the limit: eager data over it is not worth reading through.
        throw new ProtocolError(
          `eager upload of ${request.size} bytes over the server's limit of ${this.#context.maxFileBytes}`,
          "TOO_LARGE",
        );
      }
      const refusal = this.#policyRefusal(request, handler);
      if (refusal) {
        if (request.op === "upload" && request.eager) {
          await skipEagerUpload(request, this.#context);
        }
        throw refusal;
      }
      // The table's rows are typed per operation; `request.op` selects the matching one.
      const result = await (handler.handle as (
        r: Request,
        c: HandlerContext,
      ) => Promise<HandlerResult>)(request, this.#context);
      await this.#context.send({ type: "reply", id: request.id, ok: true, ...result.fields });
      logEvent({
        ...logged,
        bytes: result.bytes,
        durationMs: performance.now() - started,
        result: "ok",
      });
      return result.then;
    } catch (err) {
      if (this.#slowDetail !== null) {
        // The rate floor closed the connection in the middle of this transfer.
        logEvent({
          ...logged,
          durationMs: performance.now() - started,
          result: "slow",
          detail: this.#slowDetail,
        });
        throw err;
      }
      if (this.#context.midStream || err instanceof ProtocolError || isConnectionError(err)) {
        throw err;
      }
      const error = toFtsError(err, name ?? request.op);
      await this.#context.send(errorReply(request.id, error.code, error.message));
      logEvent({
        ...logged,
        durationMs: performance.now() - started,
        result: error.code,
        detail: error.code === "INTERNAL" ? String(err) : undefined,
      });
      return undefined;
    }
  }

  /** Why this session may not run the request (its role, a read-only server), or null. */
  #policyRefusal(request: Request, handler: { role: Role; mutates: boolean }): FtsError | null {
    const identity = this.#identity!;
    if (!roleAllows(identity.role, handler.role)) {
      return new FtsError(
        "DENIED",
        this.#options.verifier
          ? `${request.op} needs the ${handler.role} role; this token has ${identity.role}`
          : `only a client on the server's own host may ${request.op}`,
      );
    }
    if (handler.mutates && this.#options.readOnly) {
      return new FtsError("DENIED", `this server is read-only: ${request.op} is refused`);
    }
    return null;
  }

  /** Ends the connection after an error that is not an operation error; returns the log result. */
  async #failConnection(err: unknown): Promise<string> {
    if (this.#slowDetail !== null) return "slow";
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

/**
 * The connection with the idle timeout applied to every read and write: a
 * peer that stops sending (between requests or in the middle of a transfer)
 * or stops reading is closed after `idleMs`, so it cannot hold a slot. Every
 * byte moved is counted for the rate floor, which catches the peer that
 * restarts the idle timer with a byte at a time.
 */
function idleTimed(
  conn: PeerConn,
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

/** Who a peer is when authentication is off: only this host may administer (terminate). */
export function identityWithoutAuth(peerHostname: string): Identity {
  return { name: "-", role: isLoopback(peerHostname) ? "admin" : "write" };
}

/** Reports whether an address is on this host: 127.0.0.0/8, ::1, or IPv4-mapped loopback. */
export function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") || hostname.startsWith("::ffff:127.");
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
