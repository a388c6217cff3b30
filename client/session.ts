/**
 * One session with an fts server, below the operations: the transport and
 * the handshake, request ids, the messages about one request in order, the
 * raw data after a frame, and closing. The only client code that reads
 * frames or writes them, and the one place that decides what a failure on
 * the connection means (see ./errors.ts).
 *
 * @module
 */

import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { encodeClientMessage, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import {
  EAGER_UPLOAD_FEATURE,
  IF_UNCHANGED_FEATURE,
  KEEPALIVE_FEATURE,
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  MIN_CONTROL_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import {
  type ChecksumName,
  chooseChecksum,
  type ClientHello,
  type ClientMessage,
  type DecodedServerMessage,
  decodeReplyFields,
  decodeServerMessage,
  OP_IS_IDEMPOTENT,
  type ReplyFields,
  type ReplyOp,
  type RequestBody,
  type UncheckedOkReply,
  UNNEGOTIATED_CHECKSUM,
} from "../protocol/messages.ts";
import {
  receiveData,
  type ReceiveDataOptions,
  type ReceivedData,
  type TransferHash,
} from "../io/verified_transfer.ts";
import { ReadAhead } from "../io/read_ahead.ts";
import { formatAddress } from "./address.ts";
import {
  asConnectionError,
  breaksSession,
  ConnectionError,
  OutOfStepError,
  RefusedError,
  RemoteError,
  remoteErrorFor,
} from "./errors.ts";
import { REPLY_TIMEOUT_MS, ReplyDeadline } from "./reply_deadline.ts";
import { openTransport, type TlsTrust } from "./transport.ts";

/** How long the client waits for the server's hello: a TLS server waits for us and says nothing. */
export const SERVER_HELLO_TIMEOUT_MS = 10_000;

/** How to reach and prove ourselves to a server. */
export interface ConnectOptions {
  /** The access token, for servers with authentication. */
  token?: string;
  /** TLS and how to verify the server; plain TCP when absent. */
  tls?: TlsTrust | null;
  /**
   * How long to wait on the server without a byte moving before giving up.
   * @default {REPLY_TIMEOUT_MS}
   */
  replyTimeoutMs?: number;
  /**
   * The checksum to verify transfers with, when the user asked for one
   * (`--checksum`): a server that does not offer it is refused. Without it,
   * the server's first choice.
   */
  checksum?: ChecksumName;
}

/** A message about one request, as {@link Session.next} returns it: anything but a hello or a fatal. */
export type RequestMessage = Exclude<DecodedServerMessage, { type: "hello" | "fatal" }>;

/** What the server's hello told us, as the session keeps it. */
interface ServerTerms {
  software: string;
  maxFileBytes: number;
  maxControlBytes: number;
  eagerUploads: boolean;
  /** The server honours an upload's `ifUnchanged` (`if-unchanged`). */
  ifUnchangedUploads: boolean;
  checksum: ChecksumName;
  idleTimeoutMs: number | null;
}

/**
 * A session after its handshake. Every read and write goes through the
 * reply deadline (./reply_deadline.ts); every failure of one comes out as a
 * {@link ConnectionError}, and a server's error reply as a {@link RemoteError}.
 *
 * @example
 * ```ts ignore
 * import { Session } from "./session.ts";
 * const session = await Session.open("127.0.0.1", 7700, { token: "…" });
 * await session.finalReply(await session.request({ op: "mkdir", name: "a" }), "mkdir");
 * session.close();
 * ```
 */
export class Session {
  /** The server's software, from its hello, such as `fts/0.1.0`. */
  readonly serverSoftware: string;
  /** The largest file the server accepts. */
  readonly maxFileBytes: number;
  /** The server takes an upload's data straight after its request (`eager-upload`). */
  readonly eagerUploads: boolean;
  /**
   * The server replaces a file only if it is still the version an upload's
   * `ifUnchanged` names (`if-unchanged`); without it the check cannot be asked for.
   */
  readonly ifUnchangedUploads: boolean;
  /** The checksum this session's transfers are verified with, as the handshake agreed. */
  readonly checksum: ChecksumName;
  /**
   * How long the server keeps a session that sends nothing, when it answers
   * `ping` and says (the `keepalive` feature); null otherwise.
   */
  readonly idleTimeoutMs: number | null;
  readonly #conn: Deno.Conn;
  /** The connection as every read and write goes through it: bounded by the reply deadline. */
  readonly #io: ReplyDeadline;
  readonly #reader: FrameReader;
  /** The connection's input, which can tell whether more is already waiting. */
  readonly #input: ReadAhead;
  /** The largest control frame this session sends: the smaller of the server's limit and ours. */
  readonly #maxControlBytes: number;
  #nextId = 1;
  /** Requests sent so far for ops that may not be repeated (protocol/ops.ts). */
  #nonIdempotentRequests = 0;
  /** Closed by us: after a failure mid-transfer, or when done. */
  #closed = false;

  private constructor(
    conn: Deno.Conn,
    io: ReplyDeadline,
    input: ReadAhead,
    reader: FrameReader,
    terms: ServerTerms,
  ) {
    this.#conn = conn;
    this.#io = io;
    this.#input = input;
    this.#reader = reader;
    this.#maxControlBytes = terms.maxControlBytes;
    this.serverSoftware = terms.software;
    this.maxFileBytes = terms.maxFileBytes;
    this.eagerUploads = terms.eagerUploads;
    this.ifUnchangedUploads = terms.ifUnchangedUploads;
    this.idleTimeoutMs = terms.idleTimeoutMs;
    this.checksum = terms.checksum;
  }

  /** Connects and completes the handshake, presenting `options.token` if the server asks for one. */
  static async open(
    hostname: string,
    port: number,
    options: ConnectOptions = {},
  ): Promise<Session> {
    const where = formatAddress(hostname, port);
    const conn = await openTransport(hostname, port, options.tls ?? null);
    // Below the deadline: a look ahead left pending is no wait on the server.
    const input = new ReadAhead(conn);
    const io = new ReplyDeadline(
      {
        read: (buffer) => input.read(buffer),
        write: (bytes) => conn.write(bytes),
        close: () => conn.close(),
      },
      options.replyTimeoutMs ?? REPLY_TIMEOUT_MS,
    );
    const reader = new FrameReader(io, { maxControlBytes: MAX_CONTROL_BYTES });
    let silent = false;
    const helloTimer = setTimeout(() => {
      silent = true;
      conn.close();
    }, SERVER_HELLO_TIMEOUT_MS);
    try {
      const hello = await reader.readMessage().finally(() => clearTimeout(helloTimer));
      const terms = await greet(where, io, hello, options);
      const session = new Session(conn, io, input, reader, terms);
      await session.finalReply(0, "hello");
      return session;
    } catch (err) {
      if (silent) {
        throw new ConnectionError(
          `${where} sent no greeting within ${SERVER_HELLO_TIMEOUT_MS / 1000} s; ` +
            "if the server uses TLS, connect with --tls",
        );
      }
      io.stop();
      closeQuietly(conn);
      // The server answered our hello with a refusal (a token not accepted, another version).
      if (err instanceof RemoteError) {
        const text = `${where}: ${err.message}`;
        throw err.code === "BUSY" ? new ConnectionError(text) : new RefusedError(text);
      }
      if (io.expiredMessage !== null) throw new ConnectionError(`${where}: ${io.expiredMessage}`);
      if (err instanceof ProtocolError) {
        throw new RefusedError(`protocol error from ${where}: ${err.message}`, { cause: err });
      }
      throw asConnectionError(err);
    }
  }

  /**
   * How many requests this session has sent (or begun to send) for ops that
   * may not be repeated ({@link OP_IS_IDEMPOTENT}): a command that sent none
   * can be run again after the connection dropped.
   */
  get nonIdempotentRequests(): number {
    return this.#nonIdempotentRequests;
  }

  /** Closed by this side (after a failure mid-transfer, or when done). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a request with the next id and returns that id. */
  async request(body: RequestBody): Promise<number> {
    const id = this.#nextId++;
    if (!OP_IS_IDEMPOTENT[body.op]) this.#nonIdempotentRequests += 1;
    await this.send({ type: "request", id, ...body });
    return id;
  }

  /** Sends one control message; one over the server's frame limit is refused here with `TOO_LARGE`. */
  async send(message: ClientMessage): Promise<void> {
    // Refused before it is sent: the server would end the session for it.
    let frame: Uint8Array;
    try {
      frame = encodeClientMessage(message, this.#maxControlBytes);
    } catch (err) {
      if (err instanceof ProtocolError) throw new FtsError("TOO_LARGE", err.message);
      throw err;
    }
    await this.sendData(frame);
  }

  /** Writes raw bytes (an upload's data) to the server. */
  async sendData(bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(this.#io, bytes);
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /**
   * Reads exactly `bytes` raw bytes (a download's data) after the last
   * frame, feeding them to `hash` and writing them to `sink` (null: drop
   * them) as {@link receiveData} in io/ does; a failed write is returned,
   * a failed read thrown as a {@link ConnectionError}.
   */
  async receiveData(
    bytes: number,
    sink: ((chunk: Uint8Array) => Promise<void>) | null,
    hash: TransferHash,
    options: ReceiveDataOptions = {},
  ): Promise<ReceivedData> {
    try {
      return await receiveData(this.#reader, bytes, sink, hash, options);
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /**
   * Reads and decodes the next message, which must be about request `id`.
   * A fatal message, a close, a failed read, or a message that breaks the
   * protocol is a {@link ConnectionError}, and the session is closed: it is
   * out of step or gone.
   */
  async next(id: number): Promise<RequestMessage> {
    let raw: Message | null;
    try {
      raw = await this.#reader.readMessage();
    } catch (err) {
      this.close();
      throw this.#lost(err);
    }
    if (raw === null) throw this.#ended("the server closed the connection");
    const message = this.#decoded(() => decodeServerMessage(raw));
    if (message.type === "fatal") {
      this.close();
      throw new OutOfStepError(
        `the server ended the session: ${message.code}: ${message.message}`,
      );
    }
    if (message.type === "hello") throw this.outOfStep(`a second hello while waiting for ${id}`);
    if (message.id !== id) {
      this.close();
      throw new OutOfStepError(`reply for request ${message.id} while waiting for ${id}`);
    }
    return message;
  }

  /**
   * Reads the final reply of `id`, a request for `op`: its fields on
   * success, a {@link RemoteError} otherwise.
   */
  async finalReply<O extends ReplyOp>(id: number, op: O): Promise<ReplyFields[O]> {
    const reply = this.checkFinal(await this.next(id), id, op);
    return this.#decoded(() => decodeReplyFields(op, reply, this.checksum));
  }

  /**
   * Checks that `message` is the final reply of `id` (a request for `op`)
   * and a success, and returns it; its fields are for
   * {@link finalReply} to read. An error reply throws a {@link RemoteError},
   * with this client's advice for `op` ({@link remoteErrorFor}); any other
   * message breaks the session.
   */
  checkFinal(message: RequestMessage, id: number, op: ReplyOp): UncheckedOkReply {
    if (message.type !== "reply") {
      throw this.outOfStep(`unexpected '${message.type}' message for request ${id}`);
    }
    if (!message.ok) throw remoteErrorFor(op, message.error);
    return message;
  }

  /**
   * Closes the session because the server broke the protocol (`reason`),
   * and returns the {@link ConnectionError} to throw: nobody knows where
   * its next frame starts.
   */
  outOfStep(reason: string, options?: ErrorOptions): OutOfStepError {
    this.close();
    return new OutOfStepError(
      `protocol error from the server: ${reason}; the session was closed`,
      options,
    );
  }

  /**
   * Whether more of the server's messages are already here or arriving,
   * asked without waiting for the server (io/read_ahead.ts): a group of
   * downloads is committed when none are.
   */
  async inputWaiting(): Promise<boolean> {
    return this.#reader.bufferedBytes > 0 || await this.#input.waiting();
  }

  /** Whether `err` left this session unusable: the peer is out of step or gone, or we closed it. */
  isBroken(err: unknown): boolean {
    return breaksSession(err) || this.#closed;
  }

  /**
   * Closes the session after `err` stopped a transfer the server was
   * counting bytes of, and returns the error to throw: the session cannot go
   * on, so anything but an operation error of this side becomes a
   * {@link ConnectionError}.
   */
  abandon(err: unknown): unknown {
    this.close();
    return asConnectionError(err);
  }

  /** Closes the connection. */
  close(): void {
    this.#closed = true;
    this.#io.stop();
    closeQuietly(this.#conn);
  }

  /** Closes the session, which the server ended or left, and returns the error saying why. */
  #ended(reason: string): ConnectionError {
    this.close();
    return new ConnectionError(reason);
  }

  /** What `decode` returns; a {@link ProtocolError} from it breaks the session. */
  #decoded<T>(decode: () => T): T {
    try {
      return decode();
    } catch (err) {
      if (err instanceof ProtocolError) throw this.outOfStep(err.message, { cause: err });
      throw err;
    }
  }

  /** The error for a failed read or write: the reply deadline's, when it closed the connection. */
  #lost(err: unknown): unknown {
    const expired = this.#io.expiredMessage;
    return expired === null ? asConnectionError(err) : new ConnectionError(expired, { cause: err });
  }
}

/**
 * Checks the server's hello and answers it with ours, naming the checksum
 * chosen (none to a server that offers none: it knows only sha256); what it
 * announced is returned.
 */
async function greet(
  where: string,
  io: ReplyDeadline,
  raw: Message | null,
  options: Pick<ConnectOptions, "token" | "checksum">,
): Promise<ServerTerms> {
  const { token } = options;
  if (raw === null) {
    // An fts server greets or refuses first; a TLS server's handshake timeout closes it silently.
    throw new ConnectionError(
      `${where} closed the connection without a greeting; if the server uses TLS, connect with --tls`,
    );
  }
  const hello = decodeServerMessage(raw);
  if (hello.type === "fatal") {
    const text = `${where} refused the connection: ${hello.code}: ${hello.message}`;
    // BUSY: too many connections just now, which may not be so in a moment.
    throw hello.code === "BUSY" ? new ConnectionError(text) : new RefusedError(text);
  }
  if (hello.type !== "hello") throw new ProtocolError(`'${hello.type}' instead of a hello`);
  if (hello.auth === "token" && token === undefined) {
    throw new RefusedError(
      `${where} needs a token: give FTS_TOKEN, --token-file or --token (on the server's host, ` +
        "connecting through its port file finds it)",
    );
  }
  const offered = hello.checksums ?? [UNNEGOTIATED_CHECKSUM];
  const checksum = chooseChecksum(offered, options.checksum);
  // (A server of another version is told so below, whatever it offers.)
  if (checksum === null && hello.protocol === PROTOCOL_VERSION) {
    throw new RefusedError(noChecksumMessage(where, offered, options.checksum));
  }
  const answer: ClientHello = {
    type: "hello",
    protocol: PROTOCOL_VERSION,
    software: `fts/${SOFTWARE_VERSION}`,
    limits: { maxControlBytes: MAX_CONTROL_BYTES, maxNameBytes: MAX_NAME_BYTES },
  };
  if (hello.auth === "token") answer.token = token;
  if (hello.checksums !== undefined && checksum !== null) answer.checksum = checksum;
  await writeAll(io, encodeClientMessage(answer));
  if (hello.protocol !== PROTOCOL_VERSION) {
    throw new RefusedError(
      `${where} speaks fts protocol ${hello.protocol} (${hello.software}); this client speaks ${PROTOCOL_VERSION}`,
    );
  }
  return {
    software: hello.software,
    maxFileBytes: hello.limits.maxFileBytes,
    // Requests stay within the smaller of the server's limit and ours.
    maxControlBytes: Math.min(
      MAX_CONTROL_BYTES,
      Math.max(MIN_CONTROL_BYTES, hello.limits.maxControlBytes),
    ),
    eagerUploads: hello.features.includes(EAGER_UPLOAD_FEATURE),
    ifUnchangedUploads: hello.features.includes(IF_UNCHANGED_FEATURE),
    checksum: checksum!,
    idleTimeoutMs: hello.features.includes(KEEPALIVE_FEATURE) && hello.idleTimeoutMs !== undefined
      ? hello.idleTimeoutMs
      : null,
  };
}

/** Why no checksum fits: what the server offers, and what the user asked for, if anything. */
function noChecksumMessage(
  where: string,
  offered: readonly ChecksumName[],
  wanted: ChecksumName | undefined,
): string {
  if (offered.length === 0) return `${where} offers no checksum this client knows`;
  return `${where} verifies transfers with ${offered.join(", ")} only, not ${wanted} ` +
    `(--checksum ${wanted}); connect without --checksum to use what it offers`;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
