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
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import {
  EAGER_UPLOAD_FEATURE,
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  MIN_CONTROL_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import { decodeError, decodeHello, field, SHA256_HEX, sizeField } from "../protocol/messages.ts";
import { readData } from "../io/read_data.ts";
import { formatAddress } from "./address.ts";
import { asConnectionError, breaksSession, ConnectionError, RemoteError } from "./errors.ts";
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
}

/** What the server's hello told us, as the session keeps it. */
interface ServerTerms {
  software: string;
  maxFileBytes: number;
  maxControlBytes: number;
  eagerUploads: boolean;
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
 * const reply = await session.finalReply(await session.request({ op: "mkdir", name: "a" }));
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
  readonly #conn: Deno.Conn;
  /** The connection as every read and write goes through it: bounded by the reply deadline. */
  readonly #io: ReplyDeadline;
  readonly #reader: FrameReader;
  /** The largest control frame this session sends: the smaller of the server's limit and ours. */
  readonly #maxControlBytes: number;
  #nextId = 1;
  /** Closed by us: after a failure mid-transfer, or when done. */
  #closed = false;

  private constructor(conn: Deno.Conn, io: ReplyDeadline, reader: FrameReader, terms: ServerTerms) {
    this.#conn = conn;
    this.#io = io;
    this.#reader = reader;
    this.#maxControlBytes = terms.maxControlBytes;
    this.serverSoftware = terms.software;
    this.maxFileBytes = terms.maxFileBytes;
    this.eagerUploads = terms.eagerUploads;
  }

  /** Connects and completes the handshake, presenting `options.token` if the server asks for one. */
  static async open(
    hostname: string,
    port: number,
    options: ConnectOptions = {},
  ): Promise<Session> {
    const where = formatAddress(hostname, port);
    const conn = await openTransport(hostname, port, options.tls ?? null);
    const io = new ReplyDeadline(conn, options.replyTimeoutMs ?? REPLY_TIMEOUT_MS);
    const reader = new FrameReader(io, { maxControlBytes: MAX_CONTROL_BYTES });
    let silent = false;
    const helloTimer = setTimeout(() => {
      silent = true;
      conn.close();
    }, SERVER_HELLO_TIMEOUT_MS);
    try {
      const hello = await reader.readMessage().finally(() => clearTimeout(helloTimer));
      const terms = await greet(where, io, hello, options.token);
      const session = new Session(conn, io, reader, terms);
      await session.finalReply(0);
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
      if (err instanceof RemoteError) throw new ConnectionError(`${where}: ${err.message}`);
      if (io.expiredMessage !== null) throw new ConnectionError(`${where}: ${io.expiredMessage}`);
      throw asConnectionError(err);
    }
  }

  /** Closed by this side (after a failure mid-transfer, or when done). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Sends a request with the next id and returns that id. */
  async request(fields: Message): Promise<number> {
    const id = this.#nextId++;
    await this.send({ type: "request", id, ...fields });
    return id;
  }

  /** Sends one control message; one over the server's frame limit is refused here with `TOO_LARGE`. */
  async send(message: Message): Promise<void> {
    // Refused before it is sent: the server would end the session for it.
    let frame: Uint8Array;
    try {
      frame = encodeFrame(message, this.#maxControlBytes);
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
   * Reads exactly `size` raw bytes (a download's data) after the last frame,
   * handing them on in chunks; a chunk is valid until its `onChunk` settles.
   */
  async receiveData(
    size: number,
    onChunk: (chunk: Uint8Array) => void | Promise<void>,
  ): Promise<void> {
    try {
      await readData(this.#reader, size, onChunk);
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /** Reads the next message for request `id`; a fatal message or a close is a {@link ConnectionError}. */
  async next(id: number): Promise<Message> {
    let message: Message | null;
    try {
      message = await this.#reader.readMessage();
    } catch (err) {
      throw this.#lost(err);
    }
    if (message === null) throw new ConnectionError("the server closed the connection");
    if (message.type === "fatal") {
      const { code, message: text } = decodeError(message);
      throw new ConnectionError(`the server ended the session: ${code}: ${text}`);
    }
    if (message.id !== id) {
      throw new ConnectionError(`reply for request ${String(message.id)} while waiting for ${id}`);
    }
    return message;
  }

  /** Reads the final reply of `id`: its fields on success, a {@link RemoteError} otherwise. */
  async finalReply(id: number): Promise<Message> {
    const message = await this.next(id);
    this.checkFinal(message, id);
    return message;
  }

  /**
   * Checks that `message` is the final reply of `id` and a success: an
   * error reply throws a {@link RemoteError}, anything else but a reply (or a
   * reply with a malformed `sha256`) a {@link ConnectionError}.
   */
  checkFinal(message: Message, id: number): void {
    if (message.type !== "reply") {
      throw new ConnectionError(`unexpected '${String(message.type)}' message for request ${id}`);
    }
    if (message.ok !== true) {
      const { code, message: text } = decodeError(message);
      throw new RemoteError(code, text);
    }
    if ("sha256" in message && !SHA256_HEX.test(String(message.sha256))) {
      throw new ConnectionError("reply carries a malformed sha256");
    }
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

  /** The error for a failed read or write: the reply deadline's, when it closed the connection. */
  #lost(err: unknown): unknown {
    const expired = this.#io.expiredMessage;
    return expired === null ? asConnectionError(err) : new ConnectionError(expired, { cause: err });
  }
}

/** Checks the server's hello and answers it with ours; what it announced is returned. */
async function greet(
  where: string,
  io: ReplyDeadline,
  hello: Message | null,
  token: string | undefined,
): Promise<ServerTerms> {
  if (hello === null) throw new ConnectionError(`${where} closed the connection at once`);
  if (hello.type === "fatal") {
    const { code, message } = decodeError(hello);
    throw new ConnectionError(`${where} refused the connection: ${code}: ${message}`);
  }
  const server = decodeHello(hello);
  const limits = field(hello, "limits", "object");
  const maxFileBytes = sizeField(limits, "maxFileBytes");
  // Requests stay within the smaller of the server's limit and ours.
  const maxControlBytes = Math.min(
    MAX_CONTROL_BYTES,
    Math.max(MIN_CONTROL_BYTES, sizeField(limits, "maxControlBytes")),
  );
  const features = Array.isArray(hello.features) ? hello.features : [];
  if (hello.auth === "token" && token === undefined) {
    throw new ConnectionError(
      `${where} needs a token: give --token or FTS_TOKEN (on the server's host, ` +
        "connecting through its port file finds it)",
    );
  }
  await writeAll(
    io,
    encodeFrame({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      software: `fts/${SOFTWARE_VERSION}`,
      limits: { maxControlBytes: MAX_CONTROL_BYTES, maxNameBytes: MAX_NAME_BYTES },
      ...(hello.auth === "token" ? { token } : {}),
    }),
  );
  if (server.protocol !== PROTOCOL_VERSION) {
    throw new ConnectionError(
      `${where} speaks fts protocol ${server.protocol} (${server.software}); this client speaks ${PROTOCOL_VERSION}`,
    );
  }
  return {
    software: server.software,
    maxFileBytes,
    maxControlBytes,
    eagerUploads: features.includes(EAGER_UPLOAD_FEATURE),
  };
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch {
    // Already closed.
  }
}
