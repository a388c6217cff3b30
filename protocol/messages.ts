/**
 * The control messages of the fts protocol, one module to import them from.
 * Every message is a JSON object with a `type`; unknown fields are ignored,
 * so that later versions can add fields without a version change.
 * protocol/README.md is the specification.
 *
 * The contract, by direction:
 * - client_messages.ts: {@link ClientMessage} (hello, a request per op,
 *   trailer) and {@link decodeClientMessage}, which the server reads with;
 * - server_messages.ts: {@link ServerMessage} (hello, continue, entries,
 *   data, reply, fatal), {@link ReplyFields} per op, and
 *   {@link decodeServerMessage} and {@link decodeReplyFields}, which the
 *   client reads with;
 * - frames.ts: `encodeClientMessage` and `encodeServerMessage`, which send
 *   nothing else.
 *
 * The functions at the end of this file are the earlier, piecemeal API, kept
 * until both sides use the contract.
 *
 * @module
 */

import { type ErrorCode, ProtocolError } from "./errors.ts";
import { decodeClientMessage, type Request, type Trailer } from "./client_messages.ts";
import { decodeReplyError, type ErrorReply, type ReplyError } from "./server_messages.ts";
import type { Message } from "./frames.ts";
import { MIN_ANNOUNCED_CONTROL_BYTES } from "./limits.ts";

export * from "./client_messages.ts";
export * from "./entry.ts";
export * from "./hello.ts";
export * from "./ops.ts";
export * from "./server_messages.ts";
export { field, isMtime, mtimeField, SHA256_HEX, sizeField } from "./fields.ts";

/**
 * Validates a client's request message, as {@link decodeClientMessage} with
 * `"request"` does.
 *
 * Kept until both sides use the contract: use `decodeClientMessage(raw, "request")`.
 */
export function decodeRequest(message: Message): Request {
  return decodeClientMessage(message, "request");
}

/**
 * Validates an upload trailer for request `id`.
 *
 * Kept until both sides use the contract: use `decodeClientMessage(raw,
 * "trailer")` and compare its `id`.
 */
export function decodeTrailer(message: Message, id: number): Trailer {
  if (message.type !== "trailer" || message.id !== id) {
    throw new ProtocolError(`expected the trailer of request ${id}`);
  }
  return decodeClientMessage(message, "trailer");
}

/**
 * Validates a hello (either side's) as far as both share it: its protocol
 * version, software, the client's token if any, and the announced
 * `maxControlBytes`, raised to {@link MIN_ANNOUNCED_CONTROL_BYTES}.
 *
 * Kept until both sides use the contract: the server uses
 * `decodeClientMessage(raw, "hello")`, the client `decodeServerMessage(raw)`.
 */
export function decodeHello(
  message: Message,
): { protocol: number; software: string; token?: string; maxControlBytes?: number } {
  const { protocol, software, token, limits } = decodeClientMessage(message, "hello");
  const hello: { protocol: number; software: string; token?: string; maxControlBytes?: number } = {
    protocol,
    software,
  };
  if (token !== undefined) hello.token = token;
  if (limits?.maxControlBytes !== undefined) {
    hello.maxControlBytes = Math.max(MIN_ANNOUNCED_CONTROL_BYTES, limits.maxControlBytes);
  }
  return hello;
}

/**
 * Builds an error reply.
 *
 * Kept until both sides use the contract: send the {@link ErrorReply}
 * literal through `encodeServerMessage`.
 */
export function errorReply(id: number, code: ErrorCode, message: string): ErrorReply {
  return { type: "reply", id, ok: false, error: { code, message } };
}

/**
 * Reads the error out of an error reply or a fatal message, tolerating unknown codes.
 *
 * Kept until both sides use the contract: `decodeServerMessage` returns both
 * already read.
 */
export function decodeError(message: Message): ReplyError {
  const body = message.type === "fatal" ? message : message.error;
  if (typeof body !== "object" || body === null) {
    throw new ProtocolError("error reply has no error");
  }
  return decodeReplyError(body as Message);
}
