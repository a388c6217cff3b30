/**
 * The port a root was last served on, kept in the state directory so that a
 * restarted server (without `--port`) listens where it did before and the
 * connect line it printed still works. Kept per root, since each root is
 * its own server: `STATE_DIR/ports/ID`, ID a digest of the root's path, the
 * file holding the port and, for whoever reads it, the root.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { writeAtomically } from "./port_file.ts";

/** The directory in the state directory holding each root's last port. */
export const LAST_PORTS_DIR = "ports";

/** Hex digits of the root's SHA-256 naming its file: 64 bits, no two roots of one user alike. */
const ROOT_ID_HEX_DIGITS = 16;

/**
 * The name a root's kept state goes by in the state directory: a digest of
 * its path, the same for its last port and its kept token.
 *
 * @example
 * ```ts
 * import { rootId } from "./last_port.ts";
 * console.assert(rootId("/srv/a") !== rootId("/srv/b") && rootId("/srv/a").length === 16);
 * ```
 */
export function rootId(root: string): string {
  return createHash("sha256").update(root).digest("hex").slice(0, ROOT_ID_HEX_DIGITS);
}

/** Where the last port of `root` is kept under `stateDir`. */
export function lastPortFile(stateDir: string, root: string): string {
  return join(stateDir, LAST_PORTS_DIR, rootId(root));
}

/**
 * The port `root` was last served on, or null when none is kept (or what is
 * kept is not a port, or names another root).
 *
 * @example
 * ```ts
 * import { keepLastPort, readLastPort } from "./last_port.ts";
 * const state = Deno.makeTempDirSync();
 * await keepLastPort(state, "/srv/a", 4321);
 * console.assert(await readLastPort(state, "/srv/a") === 4321);
 * console.assert(await readLastPort(state, "/srv/b") === null);
 * Deno.removeSync(state, { recursive: true });
 * ```
 */
export async function readLastPort(stateDir: string, root: string): Promise<number | null> {
  let text: string;
  try {
    text = await Deno.readTextFile(lastPortFile(stateDir, root));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  const [portLine, rootLine] = text.split("\n");
  const port = Number(portLine);
  if (rootLine !== root || !Number.isInteger(port) || port < 1 || port > 65535) return null;
  return port;
}

/** Keeps `port` as the port `root` was last served on. */
export async function keepLastPort(stateDir: string, root: string, port: number): Promise<void> {
  await Deno.mkdir(join(stateDir, LAST_PORTS_DIR), { recursive: true, mode: 0o700 });
  await writeAtomically(lastPortFile(stateDir, root), `${port}\n${root}\n`, 0o600);
}

/**
 * Whether `port` on `hostname` is free to listen on now. A check before the
 * workers bind it: if another program takes it in between, the server fails
 * to start with the address in use, as with `--port`.
 */
export function canListen(hostname: string, port: number): boolean {
  try {
    Deno.listen({ hostname, port }).close();
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.AddrInUse || err instanceof Deno.errors.PermissionDenied) {
      return false;
    }
    throw err;
  }
}
