/**
 * The `list` operation and the check of every entry a server describes:
 * a listing is held whole, so its size is bounded, and a name in it must be
 * one a file system can hold, once.
 *
 * @module
 */

import { ProtocolError } from "../protocol/errors.ts";
import type { Message } from "../protocol/frames.ts";
import { type Entry, field, isMtime, sizeField } from "../protocol/messages.ts";
import { ConnectionError } from "./errors.ts";
import type { Session } from "./session.ts";

/**
 * Most entries one listing may hold: a directory far larger than people
 * keep (about 200 MiB of memory here), far smaller than what an endless
 * stream of entries would take before the client crashed.
 */
export const MAX_LIST_ENTRIES = 1_000_000;

/**
 * Lists a directory ("" for the root), or describes one file. Each entry
 * is checked ({@link decodeEntry}); a listing that breaks the protocol, or
 * holds more than {@link MAX_LIST_ENTRIES}, closes the session (the rest
 * of it cannot be skipped).
 *
 * @example
 * ```ts ignore
 * import { list } from "./list.ts";
 * import { Session } from "./session.ts";
 * const session = await Session.open("127.0.0.1", 7700);
 * for (const entry of await list(session, "")) console.log(entry.name);
 * ```
 */
export async function list(session: Session, name: string): Promise<Entry[]> {
  const id = await session.request({ op: "list", name });
  const entries: Entry[] = [];
  const names = new Set<string>();
  try {
    while (true) {
      const message = await session.next(id);
      if (message.type !== "entries") {
        session.checkFinal(message, id);
        return entries;
      }
      const batch = message.entries;
      if (!Array.isArray(batch)) throw new ProtocolError("entries message without entries");
      if (entries.length + batch.length > MAX_LIST_ENTRIES) {
        throw new ConnectionError(
          `the server listed more than ${MAX_LIST_ENTRIES} entries for ${
            JSON.stringify(name || "/")
          }, the most this client holds; the session was closed`,
        );
      }
      for (const value of batch) {
        const entry = decodeEntry(value);
        // One directory cannot hold one name twice: two downloads would land on one file.
        if (names.has(entry.name)) {
          throw new ProtocolError(
            `the server listed ${JSON.stringify(entry.name)} twice in /${name}`,
          );
        }
        names.add(entry.name);
        entries.push(entry);
      }
    }
  } catch (err) {
    if (err instanceof ProtocolError) {
      session.close();
      throw new ConnectionError(
        `protocol error from the server: ${err.message}; the session was closed`,
        { cause: err },
      );
    }
    if (err instanceof ConnectionError) session.close();
    throw err;
  }
}

const ENTRY_TYPES: ReadonlySet<string> = new Set(["file", "dir", "link", "other"]);

/**
 * Checks one entry a server listed and keeps only its known fields. A name
 * no file system can hold (empty, `.`, `..`, with `/` or NUL) is a protocol
 * violation; other names a server may list (its disk may hold names it
 * would refuse from a client) are kept, and checked where they would become
 * local paths. An unknown type counts as `other`.
 *
 * @example
 * ```ts
 * import { decodeEntry } from "./list.ts";
 * const entry = decodeEntry({ name: "a", type: "socket", size: 0, mtime: 0, extra: 1 });
 * console.assert(entry.type === "other" && !("extra" in entry));
 * ```
 */
export function decodeEntry(value: unknown): Entry {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("a listed entry is not an object");
  }
  const message = value as Message;
  const name = field(message, "name", "string");
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new ProtocolError(`the server listed an impossible name ${JSON.stringify(name)}`);
  }
  const type = field(message, "type", "string");
  const mtime = field(message, "mtime", "number");
  if (!isMtime(mtime)) throw new ProtocolError("a listed mtime is not a time a Date can hold");
  return {
    name,
    type: (ENTRY_TYPES.has(type) ? type : "other") as Entry["type"],
    size: sizeField(message, "size"),
    mtime,
  };
}
