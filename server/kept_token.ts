/**
 * The generated admin token, kept in the state directory (beside `--tls`'s
 * certificate) so that a restarted server takes the connect line it printed
 * before; `--new-token` replaces it.
 *
 * @module
 */

import { join } from "node:path";
import { writeAtomically } from "./port_file.ts";
import { checkToken } from "./tokens.ts";

/** The kept token's file in the state directory, readable by its owner only. */
export const KEPT_TOKEN_FILE = "token";

/**
 * The token kept in `stateDir`, or, when there is none, none usable, or
 * `renew` is set, `fresh`, written there for the next start.
 */
export async function keptToken(stateDir: string, fresh: string, renew: boolean): Promise<string> {
  const path = join(stateDir, KEPT_TOKEN_FILE);
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
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writeAtomically(path, `${fresh}\n`, 0o600);
  return fresh;
}
