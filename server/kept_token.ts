/**
 * The generated admin token, kept in the state directory (beside `--tls`'s
 * certificate) so that a restarted server takes the connect line it printed
 * before; `--new-token` replaces it. One per root: the connect line of one
 * served directory gives no access to another the same user serves.
 *
 * @module
 */

import { join } from "node:path";
import { rootId } from "./last_port.ts";
import { writeAtomically } from "./port_file.ts";
import { checkToken } from "./tokens.ts";

/** The directory of the kept tokens in the state directory, one file per root, readable by its owner only. */
export const KEPT_TOKENS_DIR = "tokens";

/**
 * The token kept in `stateDir` for `root`, or, when there is none, none
 * usable, or `renew` is set, `fresh`, written there for the next start.
 */
export async function keptToken(
  stateDir: string,
  root: string,
  fresh: string,
  renew: boolean,
): Promise<string> {
  const path = join(stateDir, KEPT_TOKENS_DIR, rootId(root));
  if (!renew) {
    try {
      const kept = (await Deno.readTextFile(path)).trim();
      checkToken(kept, path);
      return kept;
    } catch (err) {
      if (err instanceof Deno.errors.PermissionDenied) throw err;
      // Missing or not a token: make the fresh one the kept one.
    }
  }
  await Deno.mkdir(join(stateDir, KEPT_TOKENS_DIR), { recursive: true, mode: 0o700 });
  await writeAtomically(path, `${fresh}\n`, 0o600);
  return fresh;
}
