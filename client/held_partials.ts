/**
 * The `partials` operation: the data of broken uploads the server keeps for
 * a resume, each described checked (protocol/held_partial.ts) and held
 * whole, so the listing's size is bounded.
 *
 * @module
 */

import type { HeldPartial } from "../protocol/messages.ts";
import { ConnectionError } from "./errors.ts";
import type { Session } from "./session.ts";

/**
 * Most partials one listing may hold: each is a broken upload's data a day
 * old at most, so a server holds far fewer; far smaller than what an endless
 * stream would take before the client crashed.
 */
export const MAX_LISTED_PARTIALS = 100_000;

/**
 * Lists the partials the server holds for resumes, as it sends them (sorted
 * by name, then size). A listing that breaks the protocol or holds more than
 * {@link MAX_LISTED_PARTIALS} closes the session.
 *
 * @example
 * ```ts ignore
 * import { listPartials } from "./held_partials.ts";
 * import { Session } from "./session.ts";
 * const session = await Session.open("127.0.0.1", 7700);
 * for (const held of await listPartials(session)) console.log(held.name, held.held);
 * ```
 */
export async function listPartials(session: Session): Promise<HeldPartial[]> {
  const id = await session.request({ op: "partials" });
  const partials: HeldPartial[] = [];
  while (true) {
    const message = await session.next(id);
    if (message.type !== "partials") {
      session.checkFinal(message, id, "partials");
      return partials;
    }
    if (partials.length + message.partials.length > MAX_LISTED_PARTIALS) {
      session.close();
      throw new ConnectionError(
        `the server listed more than ${MAX_LISTED_PARTIALS} partials, the most this client ` +
          "holds; the session was closed",
      );
    }
    partials.push(...message.partials);
  }
}
