/**
 * The `list` operation and the check of every entry a server describes:
 * a listing is held whole, so its size is bounded, and a name in it must be
 * one a file system can hold, once.
 *
 * @module
 */

import type { Entry } from "../protocol/messages.ts";
import { OutOfStepError } from "./errors.ts";
import type { Session } from "./session.ts";

/**
 * Most entries one listing may hold: a directory far larger than people
 * keep (about 200 MiB of memory here), far smaller than what an endless
 * stream of entries would take before the client crashed.
 */
export const MAX_LIST_ENTRIES = 1_000_000;

/**
 * Lists a directory ("" for the root), or describes one file. Each entry
 * comes checked (protocol/entry.ts); a listing that breaks the protocol
 * (a name twice), or holds more than {@link MAX_LIST_ENTRIES}, closes the
 * session (the rest of it cannot be skipped).
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
  while (true) {
    const message = await session.next(id);
    if (message.type !== "entries") {
      // The reply's count is not needed: the entries were counted as they came.
      session.checkFinal(message, id, "list");
      return entries;
    }
    if (entries.length + message.entries.length > MAX_LIST_ENTRIES) {
      session.close();
      throw new OutOfStepError(
        `the server listed more than ${MAX_LIST_ENTRIES} entries for ${
          JSON.stringify(name || "/")
        }, the most this client holds; the session was closed`,
      );
    }
    for (const entry of message.entries) {
      // One directory cannot hold one name twice: two downloads would land on one file.
      if (names.has(entry.name)) {
        throw session.outOfStep(
          `the server listed ${JSON.stringify(entry.name)} twice in /${name}`,
        );
      }
      names.add(entry.name);
      entries.push(entry);
    }
  }
}
