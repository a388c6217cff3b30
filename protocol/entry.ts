/**
 * One directory entry, as a listing (`entries`) and a `stat` reply carry it,
 * and its validation on the receiving side.
 *
 * @module
 */

import { ProtocolError } from "./errors.ts";
import { asObject, field, mtimeField, sha256Field, sizeField } from "./fields.ts";

/** The kinds of entry a listing names. */
export const ENTRY_TYPES = ["file", "dir", "link", "other"] as const;

/** One of {@link ENTRY_TYPES}. */
export type EntryType = typeof ENTRY_TYPES[number];

/** One directory entry in a listing. */
export interface Entry {
  /** The entry's name within its directory: one segment. */
  name: string;
  /** What it is; a type this side does not know is read as `other`. */
  type: EntryType;
  /** Size in bytes. */
  size: number;
  /** Modification time, milliseconds since the Unix epoch (negative before 1970). */
  mtime: number;
}

/** The entry a `stat` reply carries: for a file also its permission bits and SHA-256. */
export type StatEntry = Entry & {
  /** Permission bits (such as 0o644), for a file. */
  mode?: number;
  /** SHA-256 of the file's content, computed when it was asked for, for a file. */
  sha256?: string;
};

/**
 * Checks one entry a peer listed and keeps only its known fields. A name no
 * file system can hold (empty, `.`, `..`, with `/` or NUL) is a protocol
 * violation; other names a server may list (its disk may hold names it would
 * refuse from a client) are kept, and checked where they become local paths.
 * An unknown type counts as `other`, so that a later server may add types.
 *
 * @example
 * ```ts
 * import { decodeEntry } from "./entry.ts";
 * const entry = decodeEntry({ name: "a.txt", type: "socket", size: 0, mtime: 0, extra: 1 });
 * console.assert(entry.type === "other" && !("extra" in entry));
 * ```
 */
export function decodeEntry(value: unknown): Entry {
  const message = asObject(value, "a listed entry");
  const name = field(message, "name", "string");
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new ProtocolError(`the server listed an impossible name ${JSON.stringify(name)}`);
  }
  const type = field(message, "type", "string");
  return {
    name,
    type: isEntryType(type) ? type : "other",
    size: sizeField(message, "size"),
    mtime: mtimeField(message, "mtime"),
  };
}

/** Checks the entry of a `stat` reply: an {@link Entry}, and `mode` and `sha256` when present. */
export function decodeStatEntry(value: unknown): StatEntry {
  const message = asObject(value, "a stat reply's entry");
  const entry: StatEntry = decodeEntry(message);
  if (message.mode !== undefined) entry.mode = sizeField(message, "mode");
  if (message.sha256 !== undefined) entry.sha256 = sha256Field(message, "sha256");
  return entry;
}

function isEntryType(value: string): value is EntryType {
  return (ENTRY_TYPES as readonly string[]).includes(value);
}
