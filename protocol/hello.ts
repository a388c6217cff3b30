/**
 * The handshake's first two messages: the server's hello, and the client's
 * answer. protocol/README.md, "Handshake", is the specification.
 *
 * @module
 */

import { type ChecksumName, isChecksumName } from "./checksum.ts";
import { ProtocolError } from "./errors.ts";
import { field, sizeField } from "./fields.ts";
import type { Message } from "./frames.ts";

/** Limits a side announces in its hello. */
export interface Limits {
  /** The largest control frame body the announcing side reads, in bytes. */
  maxControlBytes: number;
  /** The largest file the server accepts, in bytes. */
  maxFileBytes: number;
  /** The longest name, in UTF-8 bytes. */
  maxNameBytes: number;
}

/** First message on a connection, from the server. */
export type ServerHello = {
  /** The message type. */
  type: "hello";
  /** The protocol version the server speaks. */
  protocol: number;
  /** The server's software, such as `fts/0.1.0`; at most 100 characters are kept. */
  software: string;
  /** The server's limits: the client keeps within the smaller of these and its own. */
  limits: Limits;
  /** "token" when the client must present a token in its hello, "none" otherwise. */
  auth: "token" | "none";
  /** Optional capabilities, by name, such as `eager-upload`; absent on the wire means none. */
  features: string[];
  /**
   * The checksums the server verifies transfers with, in its order of
   * preference: the client answers with one of them. Absent means
   * `sha256` only, from a server that does not negotiate, and then the
   * client's hello names none. Decoding keeps the names this side knows.
   */
  checksums?: ChecksumName[];
  /**
   * How long the server keeps a session that sends nothing, in
   * milliseconds; absent from a server that does not say.
   */
  idleTimeoutMs?: number;
};

/** The client's answer to the server's hello. */
export type ClientHello = {
  /** The message type. */
  type: "hello";
  /** The protocol version the client speaks. */
  protocol: number;
  /** The client's software, such as `fts/0.1.0`; at most 100 characters are kept. */
  software: string;
  /** The access token, when the server's hello says `auth: "token"`. */
  token?: string;
  /**
   * The client's own limits: the server keeps the frames it sends within
   * them. Decoding keeps only the values that are safe integers, as they
   * came (the server raises a `maxControlBytes` below its floor to it).
   */
  limits?: Partial<Limits>;
  /**
   * The checksum this session's transfers are verified with, one the
   * server's hello offered; absent means `sha256` (a client that does not
   * negotiate).
   */
  checksum?: ChecksumName;
};

/** Longest software string kept from a hello: it is logged and shown, and need not be more. */
const MAX_SOFTWARE_CHARS = 100;

const LIMIT_KEYS = ["maxControlBytes", "maxFileBytes", "maxNameBytes"] as const;

/**
 * Checks a server's hello (its `type` already known to be `hello`): every
 * limit a non-negative integer, `auth` one of its two values, `features`
 * strings (absent means none), `checksums` strings (names this side does
 * not know are dropped; absent stays absent).
 */
export function decodeServerHello(message: Message): ServerHello {
  const limits = field(message, "limits", "object");
  const auth = field(message, "auth", "string");
  if (auth !== "token" && auth !== "none") {
    throw new ProtocolError(`hello field 'auth' must be "token" or "none"`);
  }
  const features = message.features ?? [];
  if (!Array.isArray(features) || !features.every((name) => typeof name === "string")) {
    throw new ProtocolError("hello field 'features' must be a list of names");
  }
  const hello: ServerHello = {
    type: "hello",
    protocol: field(message, "protocol", "number"),
    software: field(message, "software", "string").slice(0, MAX_SOFTWARE_CHARS),
    limits: {
      maxControlBytes: sizeField(limits, "maxControlBytes"),
      maxFileBytes: sizeField(limits, "maxFileBytes"),
      maxNameBytes: sizeField(limits, "maxNameBytes"),
    },
    auth,
    features,
  };
  if (message.checksums !== undefined) {
    const offered = message.checksums;
    if (!Array.isArray(offered) || !offered.every((name) => typeof name === "string")) {
      throw new ProtocolError("hello field 'checksums' must be a list of names");
    }
    // A later server may offer checksums this side does not know.
    hello.checksums = offered.filter(isChecksumName);
  }
  if (message.idleTimeoutMs !== undefined) {
    hello.idleTimeoutMs = sizeField(message, "idleTimeoutMs");
  }
  return hello;
}

/**
 * Checks a client's hello (its `type` already known to be `hello`). A token
 * of any length (the frame limit bounds it) is passed on: one over
 * MAX_TOKEN_CHARS matches no configured token, so it is refused like any
 * wrong token (DENIED, after the throttle's wait), not as a malformed hello.
 * `limits` is advice: a value that is not a safe integer is left out. A
 * `checksum` this side does not know is a {@link ProtocolError} with
 * `UNSUPPORTED`; whether the server offered it is the server's to check.
 */
export function decodeClientHello(message: Message): ClientHello {
  const hello: ClientHello = {
    type: "hello",
    protocol: field(message, "protocol", "number"),
    software: field(message, "software", "string").slice(0, MAX_SOFTWARE_CHARS),
  };
  if (message.token !== undefined) hello.token = field(message, "token", "string");
  if (message.checksum !== undefined) {
    const checksum = field(message, "checksum", "string");
    if (!isChecksumName(checksum)) {
      throw new ProtocolError(
        `hello names an unknown checksum '${checksum.slice(0, 40)}'`,
        "UNSUPPORTED",
      );
    }
    hello.checksum = checksum;
  }
  const announced = message.limits;
  if (typeof announced === "object" && announced !== null && !Array.isArray(announced)) {
    const limits: Partial<Limits> = {};
    for (const key of LIMIT_KEYS) {
      const value = (announced as Message)[key];
      if (typeof value === "number" && Number.isSafeInteger(value)) limits[key] = value;
    }
    hello.limits = limits;
  }
  return hello;
}
