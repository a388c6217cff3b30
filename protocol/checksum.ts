/**
 * The checksums a transfer is verified with: their names and order of
 * preference, how a session picks one in the handshake, and how a digest
 * travels (the field's key is the algorithm's name, so that a sha256
 * session's messages are exactly those of a peer from before negotiation).
 * protocol/README.md, "Handshake" and "Checksums", is the specification.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { describeType, field } from "./fields.ts";
import type { Message } from "./frames.ts";

/**
 * Every checksum fts knows, best first: the order a server offers them in
 * unless told otherwise. XXH3-128 catches accidental corruption at several
 * times SHA-256's speed; SHA-256 is there for those who want a
 * cryptographic digest (tampering in transit is TLS's to stop).
 */
export const CHECKSUMS = ["xxh3-128", "sha256"] as const;

/** One of {@link CHECKSUMS}. */
export type ChecksumName = typeof CHECKSUMS[number];

/**
 * The checksum of a session whose peer does not negotiate: a server hello
 * without `checksums`, a client hello without `checksum` (fts before
 * negotiation, which knew SHA-256 only).
 */
export const UNNEGOTIATED_CHECKSUM: ChecksumName = "sha256";

/** How many lowercase hex digits each checksum's digest has on the wire. */
export const CHECKSUM_HEX_DIGITS: Readonly<Record<ChecksumName, number>> = {
  "xxh3-128": 32,
  sha256: 64,
};

/** How messages for people write each checksum's name. */
export const CHECKSUM_TITLES: Readonly<Record<ChecksumName, string>> = {
  "xxh3-128": "XXH3-128",
  sha256: "SHA-256",
};

/** A transfer's digest, with the checksum that made it. */
export interface Digest {
  /** The checksum. */
  algorithm: ChecksumName;
  /** The digest, {@link CHECKSUM_HEX_DIGITS} lowercase hex digits. */
  hex: string;
}

/** Reports whether a value is one of {@link CHECKSUMS}. */
export function isChecksumName(value: unknown): value is ChecksumName {
  return typeof value === "string" && (CHECKSUMS as readonly string[]).includes(value);
}

/** Reports whether `hex` is written as a digest of `algorithm` is on the wire. */
export function isDigestHex(algorithm: ChecksumName, hex: unknown): hex is string {
  return typeof hex === "string" && hex.length === CHECKSUM_HEX_DIGITS[algorithm] &&
    /^[0-9a-f]*$/.test(hex);
}

/**
 * The checksum a client uses with a server that offers `offered` (in the
 * server's order of preference): `wanted` when the user asked for one, if
 * offered; otherwise the server's first choice. Null when nothing fits.
 *
 * @example
 * ```ts
 * import { chooseChecksum } from "./checksum.ts";
 * console.assert(chooseChecksum(["xxh3-128", "sha256"]) === "xxh3-128");
 * console.assert(chooseChecksum(["xxh3-128", "sha256"], "sha256") === "sha256");
 * console.assert(chooseChecksum(["xxh3-128"], "sha256") === null);
 * ```
 */
export function chooseChecksum(
  offered: readonly ChecksumName[],
  wanted?: ChecksumName,
): ChecksumName | null {
  if (wanted !== undefined) return offered.includes(wanted) ? wanted : null;
  return offered[0] ?? null;
}

/**
 * Reads the digest a message carries in a session that uses `algorithm`:
 * the field named after it, with exactly its number of lowercase hex
 * digits. That field missing or malformed, or a field of another checksum
 * present beside it, is a {@link ProtocolError}.
 *
 * @example
 * ```ts
 * import { digestField } from "./checksum.ts";
 * const hex = "99aa06d3014798d86001c324468d497f";
 * const digest = digestField({ type: "trailer", id: 1, "xxh3-128": hex }, "xxh3-128");
 * console.assert(digest.algorithm === "xxh3-128" && digest.hex === hex);
 * ```
 */
export function digestField(message: Message, algorithm: ChecksumName): Digest {
  const hex = field(message, algorithm, "string");
  if (!isDigestHex(algorithm, hex)) {
    throw new ProtocolError(
      `field '${algorithm}' of a '${describeType(message.type)}' message is not ` +
        `${CHECKSUM_HEX_DIGITS[algorithm]} lowercase hex digits`,
    );
  }
  const other = CHECKSUMS.find((name) => name !== algorithm && message[name] !== undefined);
  if (other !== undefined) {
    throw new ProtocolError(
      `a '${
        describeType(message.type)
      }' message of a ${algorithm} session carries a '${other}' digest`,
    );
  }
  return { algorithm, hex };
}

/**
 * A message as the wire writes it: its `digest` (a {@link Digest}), if it
 * has one, becomes a field named after the algorithm, in the same place.
 * The one place a typed message's digest is encoded; {@link digestField}
 * reads it back.
 *
 * @example
 * ```ts
 * import { digestOnWire } from "./checksum.ts";
 * const hex = "99aa06d3014798d86001c324468d497f";
 * const wire = digestOnWire({ type: "trailer", id: 1, digest: { algorithm: "xxh3-128", hex } });
 * console.assert(JSON.stringify(wire) === `{"type":"trailer","id":1,"xxh3-128":"${hex}"}`);
 * ```
 */
export function digestOnWire(message: object): Message {
  if (!("digest" in message)) return message as Message;
  const wire: Message = {};
  for (const [key, value] of Object.entries(message)) {
    if (key === "digest") {
      const { algorithm, hex } = value as Digest;
      wire[algorithm] = hex;
    } else {
      wire[key] = value;
    }
  }
  return wire;
}
