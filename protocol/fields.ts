/**
 * Readers for the fields of a control message as it arrived: each returns the
 * value with its type, or throws a {@link ProtocolError} naming the field. Both
 * directions' decoders are built from these, so a field is checked one way.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import type { Message } from "./frames.ts";
import { MAX_MTIME_MS } from "./limits.ts";

/** A SHA-256 digest as the wire carries it: 64 lowercase hex digits. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

/** The JSON types a field may be required to have. */
export type FieldKind = "string" | "number" | "boolean" | "object";

/** The TypeScript type {@link field} returns for each {@link FieldKind}. */
export type FieldValue<K extends FieldKind> = K extends "string" ? string
  : K extends "number" ? number
  : K extends "boolean" ? boolean
  : Message;

/**
 * Reads a required field of the given JSON type, or throws a protocol error.
 * An `object` is any JSON object that is not an array.
 *
 * @example
 * ```ts
 * import { field } from "./fields.ts";
 * console.assert(field({ type: "request", name: "a" }, "name", "string") === "a");
 * ```
 */
export function field<K extends FieldKind>(message: Message, key: string, kind: K): FieldValue<K> {
  const value = message[key];
  if (typeof value !== kind || value === null || (kind === "object" && Array.isArray(value))) {
    throw new ProtocolError(
      `'${describeType(message.type)}' message needs ${kind} field '${key}'`,
    );
  }
  return value as FieldValue<K>;
}

/** Reads a field that must be a non-negative safe integer: an id, a size, an offset. */
export function sizeField(message: Message, key: string): number {
  const value = field(message, key, "number");
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new ProtocolError(`field '${key}' must be a non-negative integer, got ${value}`);
  }
  return value;
}

/** Reads a {@link sizeField} that may be absent, which means `absent`. */
export function optionalSizeField(message: Message, key: string, absent: number): number {
  return message[key] === undefined ? absent : sizeField(message, key);
}

/** Reports whether a number is a modification time a `Date` can hold: whole ms, before or after 1970. */
export function isMtime(value: number): boolean {
  return Number.isInteger(value) && Math.abs(value) <= MAX_MTIME_MS;
}

/** The message for an mtime out of the range {@link isMtime} accepts. */
export function mtimeRangeMessage(key: string, value: number): string {
  return `field '${key}' must be whole milliseconds within ${MAX_MTIME_MS} of the epoch, got ${value}`;
}

/**
 * Reads a field that must be a modification time in ms since the epoch
 * (negative before 1970), within the range of a `Date`.
 */
export function mtimeField(message: Message, key: string): number {
  const value = field(message, key, "number");
  if (!isMtime(value)) throw new ProtocolError(mtimeRangeMessage(key, value));
  return value;
}

/** Reads a field that must be a SHA-256 digest as {@link SHA256_HEX} writes it. */
export function sha256Field(message: Message, key: string): string {
  const value = field(message, key, "string");
  if (!SHA256_HEX.test(value)) {
    throw new ProtocolError(
      `field '${key}' of a '${describeType(message.type)}' message is not 64 lowercase hex digits`,
    );
  }
  return value;
}

/** Reads a value that must be a JSON object, such as one entry of a listing. */
export function asObject(value: unknown, what: string): Message {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError(`${what} is not an object`);
  }
  return value as Message;
}

/** A peer's `type` field as an error message quotes it (the log escapes and shortens it). */
export function describeType(type: unknown): string {
  return String(type);
}
