/**
 * Opening for writing a file that several clients of a shared file system
 * may create at the same moment (a lock file every server on a root opens).
 *
 * @module
 */

/**
 * Opens `path` for writing (and reading, with `read`), creating it if it is
 * missing, as `Deno.openSync(path, { write: true, create: true })` does, where no
 * `AlreadyExists` can come of another client's create. An open that may
 * create without insisting (O_CREAT without O_EXCL) never fails with EEXIST
 * by POSIX, yet GlusterFS (10.3, seen here) answered it so when the other
 * mount created the same name at the same moment: once in 200 pairs of such
 * opens through two mounts. The name is there then, so it is opened once
 * more without creating it.
 *
 * @example
 * ```ts
 * import { openCreated } from "./open_created.ts";
 * const dir = Deno.makeTempDirSync();
 * openCreated(`${dir}/replace.lock`).close();
 * console.assert(Deno.statSync(`${dir}/replace.lock`).isFile);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export function openCreated(path: string, { read = false }: { read?: boolean } = {}): Deno.FsFile {
  try {
    return Deno.openSync(path, { read, write: true, create: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    return Deno.openSync(path, { read, write: true });
  }
}
