/**
 * One client connection: the handshake and authentication, then a read →
 * dispatch → reply loop. Nothing a peer sends can throw past this connection:
 * a protocol violation closes it, an operation error is a reply and the
 * session goes on. Policy (roles, read-only) is checked here, at dispatch.
 *
 * @module
 */

import { type ErrorCode, FtsError, ProtocolError } from "../protocol/errors.ts";
import { encodeServerMessage, FrameReader, writeAll } from "../protocol/frames.ts";
import {
  EAGER_UPLOAD_FEATURE,
  IF_UNCHANGED_FEATURE,
  KEEPALIVE_FEATURE,
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  MIN_ANNOUNCED_CONTROL_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import {
  type ChecksumName,
  type ClientHello,
  decodeClientMessage,
  type Op,
  type Request,
  type Role,
  roleAllows,
  type ServerMessage,
  UnknownOpError,
  UNNEGOTIATED_CHECKSUM,
} from "../protocol/messages.ts";
import type { ServerLimits } from "./config.ts";
import { commitGroup, MAX_GROUP_BYTES, MAX_GROUP_FILES } from "../io/commit_group.ts";
import { ReadAhead } from "../io/read_ahead.ts";
import { toFtsError } from "./error_codes.ts";
import { DataStreamBrokenError, drainCarriedData } from "./data_phase.ts";
import {
  type HandlerContext,
  handlerFor,
  type HandlerOutcome,
  type RequestFor,
} from "./handlers.ts";
import { logEvent } from "./log.ts";
import { formatPeer, peerHostname } from "./peer_address.ts";
import { idleTimed, isConnectionError, type PeerConn } from "./peer_conn.ts";
import { RateFloor } from "./rate_floor.ts";
import type { AuthBackoff } from "./shared_backoff.ts";
import type { Store } from "./store.ts";
import type { Identity, TokenVerifier } from "./tokens.ts";

/** The connection a session runs on (peer_conn.ts), as the listeners hand it over. */

/** What a session needs from the server it belongs to. */
export interface SessionOptions {
  /** The served root or bucket. */
  storage: Store;
  /** The server's limits and timeouts. */
  limits: ServerLimits;
  /** Checks the hello's token; null when authentication is off. */
  verifier: TokenVerifier | null;
  /** Slows down addresses that keep failing authentication (counted across the server's workers). */
  throttle: AuthBackoff;
  /** Operations whose row mutates are refused (DENIED). */
  readOnly: boolean;
  /** The checksums offered in the hello, in order of preference; a client must use one. */
  checksums: readonly ChecksumName[];
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

/**
 * Most received uploads all sessions of this server hold in their commit
 * groups at once: each keeps its file's descriptor open until its group
 * commits, and a thousand sessions with full groups would hold 64,000.
 * Past it, a session commits its group at once.
 */
export const MAX_HELD_UPLOADS = 4096;

/**
 * Received uploads held in commit groups by every session of this server
 * now: in shared memory once {@link shareHeldUploads} is called, so that the
 * count is the server's, not one worker's.
 */
let heldUploads: Int32Array<ArrayBufferLike> = new Int32Array(1);

/** Counts held uploads in `buffer` (one 32-bit cell), with every worker of the server. */
export function shareHeldUploads(buffer: SharedArrayBuffer): void {
  heldUploads = new Int32Array(buffer, 0, 1);
}

/** A request that has run, its final reply not yet sent. */
interface Answer {
  readonly request: Request;
  /** When it was read, for the log. */
  readonly started: number;
  /** The handler's outcome, or the operation error that stopped it. */
  result: { ok: true; outcome: HandlerOutcome<Op> } | { ok: false; error: unknown };
}

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
  /** The connection's input, which can tell whether more is already waiting. */
  readonly #input: ReadAhead;
  /**
   * Requests that carried their data (eager uploads), run and waiting for
   * their replies: their files are committed as one group when no further
   * input is waiting, or the group is full, or another request comes.
   */
  #held: Answer[] = [];
  /** The data bytes the held requests carried. */
  #heldBytes = 0;

  /** A session on `conn`, not started yet: {@link Session.run} serves it. */
  constructor(conn: PeerConn, options: SessionOptions) {
    this.#conn = conn;
    this.#options = options;
    this.#peer = formatPeer(conn.remoteAddr);
    this.#peerHostname = peerHostname(conn.remoteAddr);
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
    const input = new ReadAhead(conn);
    this.#input = input;
    const timed = idleTimed(
      { read: (buffer) => input.read(buffer), write: (bytes) => conn.write(bytes) },
      options.limits.idleTimeoutMs,
      () => this.#close(),
      rateFloor,
    );
    this.#context = {
      reader: new FrameReader(timed, { maxControlBytes: options.limits.maxControlBytes }),
      conn: timed,
      rateFloor,
      storage: options.storage,
      maxFileBytes: options.limits.maxFileBytes,
      // Within the client's own limit, once its hello has said it.
      send: (message: ServerMessage) =>
        writeAll(timed, encodeServerMessage(message, this.#context.peerMaxControlBytes)),
      peerMaxControlBytes: MAX_CONTROL_BYTES,
      checksum: UNNEGOTIATED_CHECKSUM,
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
        features: [EAGER_UPLOAD_FEATURE, KEEPALIVE_FEATURE, IF_UNCHANGED_FEATURE],
        checksums: [...this.#options.checksums],
        idleTimeoutMs: limits.idleTimeoutMs,
      });
      const message = await this.#context.reader.readMessage();
      if (message === null) return false;
      const hello = decodeClientMessage(message, "hello");
      this.#context.peerMaxControlBytes = Math.min(
        MAX_CONTROL_BYTES,
        Math.max(MIN_ANNOUNCED_CONTROL_BYTES, hello.limits?.maxControlBytes ?? MAX_CONTROL_BYTES),
      );
      if (hello.protocol !== PROTOCOL_VERSION) {
        const text =
          `this server speaks fts protocol ${PROTOCOL_VERSION}, the client speaks ${hello.protocol}`;
        await this.#sendError(0, "VERSION", text);
        logEvent({ peer: this.#peer, op: "hello", result: "VERSION", detail: hello.software });
        return false;
      }
      this.#context.checksum = this.#agreedChecksum(hello);
      const identity = verifier
        ? verifier.verify(hello.token)
        : identityWithoutAuth(this.#peerHostname);
      if (identity === null) {
        const delayMs = await this.#options.throttle.recordFailure(this.#peerHostname);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
        const text = hello.token === undefined
          ? "this server needs a token (--token, FTS_TOKEN)"
          : "the token was not accepted";
        await this.#sendError(0, "DENIED", text);
        logEvent({
          peer: this.#peer,
          op: "auth",
          result: "DENIED",
          detail: `delayed ${delayMs}ms`,
        });
        return false;
      }
      if (verifier) await this.#options.throttle.recordSuccess(this.#peerHostname);
      this.#identity = identity;
      await this.#context.send({ type: "reply", id: 0, ok: true, role: identity.role });
      logEvent({
        peer: this.#peer,
        token: this.#tokenName,
        op: "auth",
        result: identity.role,
        checksum: this.#context.checksum,
      });
      return true;
    } finally {
      clearTimeout(deadline);
    }
  }

  /**
   * The checksum the client's hello chose (sha256 when it names none, as a
   * client from before negotiation does); one this server did not offer is
   * a protocol violation, UNSUPPORTED.
   */
  #agreedChecksum(hello: ClientHello): ChecksumName {
    const checksum = hello.checksum ?? UNNEGOTIATED_CHECKSUM;
    if (this.#options.checksums.includes(checksum)) return checksum;
    const offered = this.#options.checksums.join(", ");
    throw new ProtocolError(
      hello.checksum === undefined
        ? `this server verifies transfers with ${offered} only; the client names no checksum, ` +
          `which means ${UNNEGOTIATED_CHECKSUM} (a client that negotiates one is needed)`
        : `the client chose checksum ${checksum}, which this server did not offer (it offers ${offered})`,
      "UNSUPPORTED",
    );
  }

  /**
   * Reads, runs and answers requests until the session ends. Requests that
   * carry their data (eager uploads) are held unanswered while more input is
   * already waiting, so that their files commit as one group; any other
   * request first has the held ones answered, so that it sees their files
   * and the replies keep the requests' order.
   */
  async #serveRequests(): Promise<void> {
    try {
      while (!this.#stopping) {
        if (this.#held.length > 0 && !await this.#groupStaysOpen()) await this.#answerHeld();
        this.#idle = this.#held.length === 0;
        // A request trickled a byte at a time is held to the rate floor too.
        this.#rateFloor.engageAtNextByte();
        const message = await this.#context.reader.readMessage()
          .finally(() => this.#rateFloor.disengage());
        this.#idle = false;
        if (message === null) return;
        let request: Request;
        try {
          request = decodeClientMessage(message, "request");
        } catch (err) {
          if (!(err instanceof UnknownOpError)) throw err;
          await this.#answerHeld();
          await this.#sendError(err.id, err.code, err.message);
          logEvent({ peer: this.#peer, op: "request", result: err.code, detail: err.message });
          continue;
        }
        const carried = handlerFor(request).carriesData(request);
        if (carried === null) await this.#answerHeld();
        const answer = await this.#dispatch(request);
        this.#held.push(answer);
        this.#heldBytes += carried ?? 0;
        if (answer.result.ok && answer.result.outcome.publish) Atomics.add(heldUploads, 0, 1);
        if (carried !== null) continue;
        const then = await this.#answerHeld();
        if (then === "close") return;
        if (then === "terminate") {
          this.#options.onTerminate();
          await this.#refuseAfterTerminate();
          return;
        }
      }
    } finally {
      await this.#answerHeldAtEnd();
    }
  }

  /**
   * Whether the held uploads' group takes more: it has room (and so has
   * the server, {@link MAX_HELD_UPLOADS}), none of its files has directories
   * to make (their claim on space comes before any later upload's), and the
   * next request is already arriving (never waiting for the network to fill it).
   */
  async #groupStaysOpen(): Promise<boolean> {
    if (this.#held.length >= MAX_GROUP_FILES || this.#heldBytes >= MAX_GROUP_BYTES) return false;
    if (Atomics.load(heldUploads, 0) >= MAX_HELD_UPLOADS) return false;
    if (this.#held.some(({ result }) => result.ok && result.outcome.publish?.makesDirectories)) {
      return false;
    }
    return this.#context.reader.bufferedBytes > 0 || await this.#input.waiting();
  }

  /**
   * Commits the held requests' files as one group, then sends every held
   * reply, in order (a file that failed to commit is discarded and its error
   * replied). Returns what the last request asks of the session next.
   */
  async #answerHeld(): Promise<HandlerOutcome<Op>["then"]> {
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    const publishing = held.flatMap((answer) =>
      answer.result.ok && answer.result.outcome.publish
        ? [{ answer, publish: answer.result.outcome.publish }]
        : []
    );
    Atomics.sub(heldUploads, 0, publishing.length);
    const outcomes = await commitGroup(publishing.map(({ publish }) => publish));
    for (const [index, { answer, publish }] of publishing.entries()) {
      const outcome = outcomes[index]!;
      if (outcome.ok) continue;
      await publish.discard();
      answer.result = { ok: false, error: outcome.error };
    }
    let then: HandlerOutcome<Op>["then"];
    for (const answer of held) then = await this.#reply(answer);
    return then;
  }

  /**
   * When the session ends with requests held (the peer left, or broke the
   * protocol after them): their files were received and verified, so they
   * are committed; their replies go out if the connection still takes them.
   */
  async #answerHeldAtEnd(): Promise<void> {
    try {
      await this.#answerHeld();
    } catch (err) {
      if (!isConnectionError(err)) throw err;
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
          const request = decodeClientMessage(message, "request");
          const carried = handlerFor(request).carriesData(request);
          if (carried !== null) await drainCarriedData(this.#context, request.id, carried);
          id = request.id;
          op = request.op;
        } catch (err) {
          if (!(err instanceof UnknownOpError)) throw err;
          id = err.id;
          op = "request";
        }
        await this.#sendError(id, "BUSY", text);
        logEvent({ peer: this.#peer, token: this.#tokenName, op, result: "BUSY", detail: text });
      }
    } catch (err) {
      if (!isConnectionError(err)) throw err;
    } finally {
      clearTimeout(deadline);
    }
  }

  /**
   * Runs one request; its final reply is {@link #reply}'s to send. An
   * operation error is the answer; anything else (a protocol violation, a
   * broken connection) is thrown.
   */
  async #dispatch(request: Request): Promise<Answer> {
    const started = performance.now();
    try {
      return { request, started, result: { ok: true, outcome: await this.#run(request) } };
    } catch (err) {
      if (this.#slowDetail !== null) {
        // The rate floor closed the connection in the middle of this transfer.
        logEvent({
          ...this.#logged(request),
          durationMs: performance.now() - started,
          result: "slow",
          detail: this.#slowDetail,
        });
        throw err;
      }
      if (
        err instanceof ProtocolError || err instanceof DataStreamBrokenError ||
        isConnectionError(err)
      ) {
        throw err;
      }
      return { request, started, result: { ok: false, error: err } };
    }
  }

  /** Sends a request's final reply and logs it; returns what the request asks of the session next. */
  async #reply(answer: Answer): Promise<HandlerOutcome<Op>["then"]> {
    const { request, started, result } = answer;
    const logged = this.#logged(request);
    if (result.ok) {
      const { outcome } = result;
      await this.#context.send({ type: "reply", id: request.id, ok: true, ...outcome.fields });
      const digest = "digest" in outcome.fields ? outcome.fields.digest : undefined;
      logEvent({
        ...logged,
        bytes: outcome.bytes,
        checksum: digest?.algorithm,
        digest: digest?.hex,
        durationMs: performance.now() - started,
        result: "ok",
      });
      return outcome.then;
    }
    const error = toFtsError(result.error, logged.name ?? request.op);
    await this.#sendError(request.id, error.code, error.message);
    logEvent({
      ...logged,
      durationMs: performance.now() - started,
      result: error.code,
      detail: error.code === "INTERNAL" ? String(result.error) : undefined,
    });
    return undefined;
  }

  /** The log fields that name a request. */
  #logged(request: Request): { peer: string; token?: string; op: Op; name?: string } {
    const name = "name" in request ? request.name : undefined;
    return { peer: this.#peer, token: this.#tokenName, op: request.op, name };
  }

  /**
   * Checks the request against its row's policy and runs its handler. Data
   * the request carries is checked against the announced file limit first,
   * and read past when the request is refused.
   */
  async #run<O extends Op>(request: RequestFor<O>): Promise<HandlerOutcome<O>> {
    const handler = handlerFor(request);
    const carried = handler.carriesData(request);
    const { maxFileBytes } = this.#context;
    if (carried !== null && carried > maxFileBytes) {
      // The hello announced the limit: data sent unasked over it is not worth reading through.
      throw new ProtocolError(
        `${request.op} sending ${carried} bytes unasked, over the server's limit of ${maxFileBytes}`,
        "TOO_LARGE",
      );
    }
    const refusal = this.#policyRefusal(request.op, handler);
    if (refusal) {
      if (carried !== null) await drainCarriedData(this.#context, request.id, carried);
      throw refusal;
    }
    return await handler.handle(request, this.#context);
  }

  /** Sends the error reply for request `id`. */
  #sendError(id: number, code: ErrorCode, message: string): Promise<void> {
    return this.#context.send({ type: "reply", id, ok: false, error: { code, message } });
  }

  /** Why this session may not run the request (its role, a read-only server), or null. */
  #policyRefusal(op: Op, handler: { role: Role; mutates: boolean }): FtsError | null {
    const identity = this.#identity!;
    if (!roleAllows(identity.role, handler.role)) {
      return new FtsError(
        "DENIED",
        this.#options.verifier
          ? `${op} needs the ${handler.role} role; this token has ${identity.role}`
          : `only a client on the server's own host may ${op}`,
      );
    }
    if (handler.mutates && this.#options.readOnly) {
      return new FtsError("DENIED", `this server is read-only: ${op} is refused`);
    }
    return null;
  }

  /** Ends the connection after an error that is not an operation error; returns the log result. */
  async #failConnection(err: unknown): Promise<string> {
    if (this.#slowDetail !== null) return "slow";
    // Data was flowing to the peer: no message can follow it, only the close.
    const streamBroken = err instanceof DataStreamBrokenError;
    if (err instanceof DataStreamBrokenError) err = err.cause;
    if (err instanceof ProtocolError && !streamBroken) {
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

/** Who a peer is when authentication is off: only this host may administer (terminate). */
export function identityWithoutAuth(peerHostname: string): Identity {
  return { name: "-", role: isLoopback(peerHostname) ? "admin" : "write" };
}

/** Reports whether an address is on this host: 127.0.0.0/8, ::1, or IPv4-mapped loopback. */
export function isLoopback(hostname: string): boolean {
  return hostname === "::1" || hostname.startsWith("127.") || hostname.startsWith("::ffff:127.");
}
