/**
 * The port file: the port number, digits and a newline, which `fts connect`
 * reads to find a server started in the same directory.
 *
 * @module
 */

/** Writes the port file atomically: readers see the old content or the new, never a torn one. */
export async function writePortFile(path: string, port: number): Promise<void> {
  const tmpPath = `${path}.${Deno.pid}.tmp`;
  await Deno.writeTextFile(tmpPath, `${port}\n`);
  await Deno.rename(tmpPath, path);
}

/** Removes the port file if it still names `port` (another server may have replaced it since). */
export async function removePortFile(path: string, port: number): Promise<void> {
  try {
    if ((await Deno.readTextFile(path)).trim() === String(port)) await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
