/**
 * The `digests` operation: the content digests of a remote directory's
 * files, of the session's checksum, as the server sends them in batches
 * (hashing only what changed since it last did). Bounded like a listing.
 *
 * @module
 */

import type { FileDigest } from "../protocol/messages.ts";
import { MAX_LIST_ENTRIES } from "./list.ts";
import type { Session } from "./session.ts";

/**
 * The digests of the files in remote directory `name` ("" for the top), by
 * file name. A server that sends another checksum than the session's, a name
 * twice, or more than {@link MAX_LIST_ENTRIES} breaks the protocol.
 *
 * @example
 * ```ts ignore
 * import { remoteDigests } from "./remote_digests.ts";
 * declare const session: import("./session.ts").Session;
 * for (const [name, file] of await remoteDigests(session, "docs")) console.log(name, file.hex);
 * ```
 */
export async function remoteDigests(
  session: Session,
  name: string,
): Promise<Map<string, FileDigest>> {
  const id = await session.request({ op: "digests", name });
  const digests = new Map<string, FileDigest>();
  while (true) {
    const message = await session.next(id);
    if (message.type !== "digests") {
      session.checkFinal(message, id, "digests");
      return digests;
    }
    if (message.checksum !== session.checksum) {
      throw session.outOfStep(
        `the server sent ${message.checksum} digests in a ${session.checksum} session`,
      );
    }
    if (digests.size + message.digests.length > MAX_LIST_ENTRIES) {
      throw session.outOfStep(
        `the server sent more than ${MAX_LIST_ENTRIES} digests for ${JSON.stringify(name || "/")}`,
      );
    }
    for (const file of message.digests) {
      if (digests.has(file.name)) {
        throw session.outOfStep(`the server sent a digest of ${JSON.stringify(file.name)} twice`);
      }
      digests.set(file.name, file);
    }
  }
}
