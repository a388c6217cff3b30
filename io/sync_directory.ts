/**
 * Making a rename durable: the new name lives in its directory, so the
 * directory itself is fsynced after an upload or a download is published
 * (and after a mkdir, rename or delete on the server).
 *
 * @module
 */

/**
 * Fsyncs `directory` (opened read-only, then synced), so that a name just
 * renamed into it survives a crash. Windows has no directory fsync: there
 * it does nothing.
 *
 * @example
 * ```ts
 * import { syncDirectory } from "./sync_directory.ts";
 * await syncDirectory(".");
 * ```
 */
export async function syncDirectory(directory: string): Promise<void> {
  if (Deno.build.os === "windows") return;
  // Opened in place: a thread hop for the open would cost more than the open.
  const handle = Deno.openSync(directory, { read: true });
  try {
    await handle.sync();
  } finally {
    handle.close();
  }
}
