/**
 * Framing: the only code that knows where TCP chunk boundaries fall.
 *
 * A control frame is a 4-byte big-endian body length followed by that many
 * bytes of UTF-8 JSON (one object). File data is not framed: a control message
 * declares its length and exactly that many raw bytes follow.
 *
 * @module
 */

import { digestOnWire } from "./checksum.ts";
import type { ClientMessage } from "./client_messages.ts";
import { ProtocolError } from "./errors.ts";
import { FRAME_HEADER_BYTES, MAX_CONTROL_BYTES } from "./limits.ts";
import type { ServerMessage } from "./server_messages.ts";

/** Anything bytes can be read from, such as a `Deno.Conn` or `Deno.FsFile`. */
export interface ByteSource {
  /** Reads into `buffer`; the count read, or null at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Anything bytes can be written to, such as a `Deno.Conn` or `Deno.FsFile`. */
export interface ByteSink {
  /** Writes some of `bytes`; the count written. */
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * A control message as a frame carries it: a JSON object, not yet checked.
 * `decodeClientMessage` and `decodeServerMessage` (messages.ts) turn it into
 * a typed message.
 */
export type Message = Record<string, unknown>;

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/**
 * Encodes a message a client may send as one frame: the compiler refuses a
 * message the protocol does not define (a misspelt or missing field, an
 * unknown op). A digest is written as a field named after its checksum
 * (`digestOnWire`, checksum.ts). A body over `maxControlBytes` (the smaller
 * of the server's limit and ours) throws a {@link ProtocolError} with
 * `TOO_LARGE`.
 *
 * @example
 * ```ts
 * import { encodeClientMessage } from "./frames.ts";
 * const frame = encodeClientMessage({ type: "request", id: 1, op: "list", name: "" });
 * console.assert(new DataView(frame.buffer).getUint32(0) === frame.length - 4);
 * ```
 */
export function encodeClientMessage(
  message: ClientMessage,
  maxControlBytes = MAX_CONTROL_BYTES,
): Uint8Array {
  return encodeFrame(digestOnWire(message), maxControlBytes);
}

/**
 * Encodes a message a server may send as one frame, as
 * {@link encodeClientMessage} does for the client: `maxControlBytes` is the
 * client's announced limit, within ours.
 *
 * @example
 * ```ts
 * import { encodeServerMessage } from "./frames.ts";
 * const frame = encodeServerMessage({ type: "reply", id: 1, ok: true, count: 0 });
 * console.assert(frame.length > 4);
 * ```
 */
export function encodeServerMessage(
  message: ServerMessage,
  maxControlBytes = MAX_CONTROL_BYTES,
): Uint8Array {
  return encodeFrame(digestOnWire(message), maxControlBytes);
}

/**
 * Encodes any JSON object as a frame, unchecked. fts's own client and server
 * send through {@link encodeClientMessage} and {@link encodeServerMessage};
 * this is for peers that must send what the protocol forbids (the
 * hostile-peer tests), and the typed encoders' one implementation.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./frames.ts";
 * const frame = encodeFrame({ type: "request", id: 1, op: "no-such-op" });
 * console.assert(new DataView(frame.buffer).getUint32(0) === frame.length - 4);
 * ```
 */
export function encodeFrame(message: Message, maxControlBytes = MAX_CONTROL_BYTES): Uint8Array {
  const body = encoder.encode(JSON.stringify(message));
  if (body.length > maxControlBytes) {
    throw new ProtocolError(
      `control message of ${body.length} bytes exceeds the limit of ${maxControlBytes}`,
      "TOO_LARGE",
    );
  }
  const frame = new Uint8Array(FRAME_HEADER_BYTES + body.length);
  new DataView(frame.buffer).setUint32(0, body.length);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/** Writes every byte, however many calls the sink needs. */
export async function writeAll(sink: ByteSink, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    written += await sink.write(bytes.subarray(written));
  }
}

/** Options for {@link FrameReader}. */
export interface FrameReaderOptions {
  /**
   * Largest control frame body accepted; a larger declared length is a
   * protocol error, raised before anything is allocated.
   * @default {MAX_CONTROL_BYTES}
   */
  maxControlBytes?: number;
}

/**
 * Reads whole control messages and exact runs of raw data from a byte stream.
 *
 * @example
 * ```ts
 * import { encodeFrame, FrameReader } from "./frames.ts";
 * const frame = encodeFrame({ type: "hello" });
 * let sent = false;
 * const reader = new FrameReader({
 *   read(buffer) {
 *     if (sent) return Promise.resolve(null);
 *     sent = true;
 *     buffer.set(frame);
 *     return Promise.resolve(frame.length);
 *   },
 * });
 * console.assert((await reader.readMessage())?.type === "hello");
 * ```
 */
export class FrameReader {
  readonly #source: ByteSource;
  readonly #maxControlBytes: number;
  #buffer = new Uint8Array(4096);
  #start = 0;
  #end = 0;

  /** A reader of frames from `source`. */
  constructor(source: ByteSource, options: FrameReaderOptions = {}) {
    this.#source = source;
    this.#maxControlBytes = options.maxControlBytes ?? MAX_CONTROL_BYTES;
  }

  /**
   * Reads the next control message. Returns `null` when the peer closed the
   * connection cleanly between frames; a close inside a frame is a protocol error.
   */
  async readMessage(): Promise<Message | null> {
    if (!await this.#fill(FRAME_HEADER_BYTES, true)) return null;
    const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset + this.#start);
    const length = view.getUint32(0);
    if (length > this.#maxControlBytes) {
      throw new ProtocolError(
        `control frame of ${length} bytes exceeds the limit of ${this.#maxControlBytes}`,
        "TOO_LARGE",
      );
    }
    await this.#fill(FRAME_HEADER_BYTES + length, false);
    const body = this.#buffer.subarray(
      this.#start + FRAME_HEADER_BYTES,
      this.#start + FRAME_HEADER_BYTES + length,
    );
    this.#start += FRAME_HEADER_BYTES + length;
    let message: unknown;
    try {
      message = JSON.parse(decoder.decode(body));
    } catch {
      throw new ProtocolError("control frame is not valid UTF-8 JSON");
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      throw new ProtocolError("control frame is not a JSON object");
    }
    return message as Message;
  }

  /**
   * Takes up to `maxBytes` of the bytes already read past the last frame
   * (the start of a data phase that arrived with its header), or null when
   * none are buffered. The rest of the data is read from {@link source}.
   */
  takeBuffered(maxBytes: number): Uint8Array | null {
    const buffered = Math.min(maxBytes, this.#end - this.#start);
    if (buffered <= 0) return null;
    const chunk = this.#buffer.subarray(this.#start, this.#start + buffered);
    this.#start += buffered;
    return chunk;
  }

  /**
   * Bytes already read past the last frame or data taken: the start of the
   * next message (or of a data phase), there without reading the connection.
   */
  get bufferedBytes(): number {
    return this.#end - this.#start;
  }

  /** The connection frames are read from: a data phase reads it directly, after {@link takeBuffered}. */
  get source(): ByteSource {
    return this.#source;
  }

  /** Ensures `count` bytes are buffered; false at a clean end of stream when `eofAllowed` and nothing is buffered. */
  async #fill(count: number, eofAllowed: boolean): Promise<boolean> {
    if (this.#end - this.#start >= count) return true;
    if (this.#buffer.length - this.#start < count) {
      const size = Math.max(this.#buffer.length, count);
      const grown = size > this.#buffer.length ? new Uint8Array(size) : this.#buffer;
      grown.set(this.#buffer.subarray(this.#start, this.#end));
      this.#end -= this.#start;
      this.#start = 0;
      this.#buffer = grown;
    }
    while (this.#end - this.#start < count) {
      const n = await this.#source.read(this.#buffer.subarray(this.#end));
      if (n === null) {
        if (eofAllowed && this.#end === this.#start) return false;
        throw new ProtocolError("connection closed in the middle of a frame");
      }
      this.#end += n;
    }
    return true;
  }
}
