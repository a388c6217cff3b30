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
 *   partials, data, reply, fatal), {@link ReplyFields} per op, and
 *   {@link decodeServerMessage} and {@link decodeReplyFields}, which the
 *   client reads with;
 * - frames.ts: `encodeClientMessage` and `encodeServerMessage`, which send
 *   nothing else;
 * - checksum.ts: the checksums a session negotiates, and {@link Digest},
 *   the digest a trailer and a transfer's reply carry.
 *
 * @module
 */

export * from "./checksum.ts";
export * from "./client_messages.ts";
export * from "./entry.ts";
export * from "./file_digest.ts";
export * from "./held_partial.ts";
export * from "./hello.ts";
export * from "./ops.ts";
export * from "./server_messages.ts";
