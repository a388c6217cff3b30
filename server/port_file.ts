/**
 * The port file, which `fts connect` reads to find a server started in the
 * same directory: the port number, digits and a newline. Beside it,
 * `FILE.json` (readable by the owner only) carries what a local client needs
 * to connect without flags: a token, and the TLS certificate's fingerprint.
 *
 * @module
 */

/** What `FILE.json` holds. */
export interface LocalConnectInfo {
  /** The local admin token, or null when authentication is off. */
  token: string | null;
  /** The TLS certificate's fingerprint, or null for plain TCP. */
  tls: { fingerprint: string } | null;
}

/** Writes the port file and its companion atomically: readers see old or new, never torn. */
export async function writePortFiles(
  path: string,
  port: number,
  local: LocalConnectInfo,
): Promise<void> {
  await writeAtomically(`${path}.json`, JSON.stringify(local) + "\n", 0o600);
  await writeAtomically(path, `${port}\n`, 0o644);
}

/** Removes the port file and its companion if they still name `port` (another server may have replaced them). */
export async function removePortFiles(path: string, port: number): Promise<void> {
  try {
    if ((await Deno.readTextFile(path)).trim() !== String(port)) return;
    await Deno.remove(path);
    await Deno.remove(`${path}.json`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

/**
 * Writes a fresh temporary file, then renames it onto `path`. The temporary's
 * name is random and created new, so nobody can plant a file or link there
 * beforehand for the token to be written through.
 */
export async function writeAtomically(path: string, text: string, mode: number): Promise<void> {
  const tmpPath = `${path}.${crypto.randomUUID()}.tmp`;
  await Deno.writeTextFile(tmpPath, text, { createNew: true, mode });
  try {
    await Deno.rename(tmpPath, path);
  } catch (err) {
    await Deno.remove(tmpPath).catch(() => {});
    throw err;
  }
}
