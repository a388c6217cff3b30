/**
 * Publishing a received file: readers never see a partial file, because it
 * is written under a temporary name and takes its real name in one step
 * (rename is atomic within one file system), and the data is fsynced before
 * the name and the directory after it, so a crash leaves the old file or the
 * whole new one. Both sides publish this way: the server its uploads (with
 * its quota and swap checks around {@link placeFile}), the client its
 * downloads ({@link publishFile}).
 *
 * @module
 */

import { dirname } from "node:path";
import { syncDirectory } from "./sync_directory.ts";

/**
 * Thrown by {@link placeFile} without overwrite when the name is already
 * taken; the server replies EXISTS for it. Nothing was changed.
 */
export class NameTakenError extends Error {
  /** The name that exists, as given to {@link placeFile}. */
  readonly path: string;

  /** An error for `path`, with the file system's error as its cause. */
  constructor(path: string, options?: ErrorOptions) {
    super(`${path} already exists`, options);
    this.name = "NameTakenError";
    this.path = path;
  }
}

/** Options for {@link closeWritten}. */
export interface CloseWrittenOptions {
  /** Modification time to give the file, ms since the epoch; left as it is when absent. */
  mtime?: number;
  /**
   * Fsync the file. False on a file system in memory (see
   * io/in_memory_fs.ts), where there is no stable storage to wait for.
   */
  durable: boolean;
}

/**
 * The first step of a publish: sets the mtime (if given), fsyncs (if
 * durable), and closes `file`, which is closed when this returns or throws
 * (the caller must not close it again). Returns the file's stat from just
 * before the close, whose dev/ino let a caller check that the name it is
 * about to take still leads to this file.
 *
 * @example
 * ```ts
 * import { closeWritten } from "./publish.ts";
 * const path = await Deno.makeTempFile();
 * const file = await Deno.open(path, { write: true });
 * await file.write(new Uint8Array([1, 2, 3]));
 * const written = await closeWritten(file, { mtime: 0, durable: true });
 * console.assert(written.size === 3 && written.mtime?.getTime() === 0);
 * await Deno.remove(path);
 * ```
 */
export function closeWritten(
  file: Deno.FsFile,
  options: CloseWrittenOptions,
): Promise<Deno.FileInfo> {
  return settleWritten(file, options, () => file.statSync());
}

/**
 * {@link closeWritten} without the stat, for a caller that needs no
 * identity or already holds it: an open file's dev/ino never change, so the
 * stat taken when it was created still names it. A stat in a sandboxed
 * worker costs a path resolution besides the call (Deno checks the
 * permission on the file's path).
 *
 * @example
 * ```ts
 * import { finishWritten } from "./publish.ts";
 * const path = await Deno.makeTempFile();
 * const file = await Deno.open(path, { write: true });
 * await file.write(new Uint8Array([1, 2, 3]));
 * await finishWritten(file, { mtime: 0, durable: false });
 * console.assert(Deno.statSync(path).mtime?.getTime() === 0);
 * await Deno.remove(path);
 * ```
 */
export async function finishWritten(
  file: Deno.FsFile,
  options: CloseWrittenOptions,
): Promise<void> {
  await settleWritten(file, options, () => {});
}

/** Sets the mtime, fsyncs if durable, runs `beforeClose`, and closes `file` whatever happens. */
async function settleWritten<T>(
  file: Deno.FsFile,
  options: CloseWrittenOptions,
  beforeClose: () => T,
): Promise<T> {
  try {
    if (options.mtime !== undefined) file.utimeSync(new Date(), new Date(options.mtime));
    if (options.durable) await file.sync();
    return beforeClose();
  } finally {
    file.close();
  }
}

/** Options for {@link placeFile}. */
export interface PlaceFileOptions {
  /** Replace a file already at the name (rename); without it an existing name is refused (link). */
  overwrite: boolean;
  /**
   * Runs right after the file has taken its name and before anything else
   * (with overwrite, the replaced file is already gone; without, the
   * temporary name still exists): a check that the name leads where it
   * should. It may call `undo` to take the name back (rename back onto the
   * temporary name, or unlink the new name) and then throw; its error
   * propagates, and the temporary file, if still there, is the caller's to remove.
   */
  verify?(undo: () => void): void;
}

/**
 * The second step of a publish, synchronous so that nothing runs between a
 * caller's last look at `targetPath` and the move: the file at `tmpPath`
 * takes the name `targetPath`, atomically. With overwrite it is renamed onto
 * the name, replacing what was there; without, it is hard-linked to the name
 * (link() refuses an existing name, where rename() would replace it; a
 * {@link NameTakenError} then, and nothing changed) and the temporary name
 * removed. Both paths must be on one file system. The name is durable only
 * once its directory is fsynced ({@link syncDirectory}): the caller's next step.
 *
 * @example
 * ```ts
 * import { NameTakenError, placeFile } from "./publish.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/new.tmp`, "new");
 * await Deno.writeTextFile(`${dir}/taken`, "old");
 * try {
 *   placeFile(`${dir}/new.tmp`, `${dir}/taken`, { overwrite: false });
 * } catch (err) {
 *   console.assert(err instanceof NameTakenError);
 * }
 * placeFile(`${dir}/new.tmp`, `${dir}/free`, { overwrite: false });
 * console.assert(Deno.readTextFileSync(`${dir}/free`) === "new");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function placeFile(tmpPath: string, targetPath: string, options: PlaceFileOptions): void {
  if (options.overwrite) {
    Deno.renameSync(tmpPath, targetPath);
    options.verify?.(() => Deno.renameSync(targetPath, tmpPath));
    return;
  }
  try {
    Deno.linkSync(tmpPath, targetPath);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) {
      throw new NameTakenError(targetPath, { cause: err });
    }
    throw err;
  }
  options.verify?.(() => Deno.removeSync(targetPath));
  Deno.removeSync(tmpPath);
}

/** Options for {@link publishFile}. */
export interface PublishFileOptions {
  /** Replace a file already at the target name; without it, {@link NameTakenError}. */
  overwrite: boolean;
  /** Modification time to give the file, ms since the epoch; left as it is when absent. */
  mtime?: number;
  /** Fsync the file and the target's directory; false on a file system in memory. */
  durable: boolean;
}

/**
 * Publishes a file written at `tmpPath` (still open as `file`) under
 * `targetPath`: {@link closeWritten}, then {@link placeFile}, then the
 * target's directory fsynced if durable. `file` is closed when this returns
 * or throws. On failure the temporary file, if still there, is the caller's
 * to remove (or keep for a resume).
 *
 * @example
 * ```ts
 * import { publishFile } from "./publish.ts";
 * const dir = await Deno.makeTempDir();
 * const file = await Deno.open(`${dir}/report.tmp`, { write: true, createNew: true });
 * await file.write(new TextEncoder().encode("done"));
 * await publishFile(file, `${dir}/report.tmp`, `${dir}/report`, {
 *   overwrite: true,
 *   durable: true,
 * });
 * console.assert(Deno.readTextFileSync(`${dir}/report`) === "done");
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function publishFile(
  file: Deno.FsFile,
  tmpPath: string,
  targetPath: string,
  options: PublishFileOptions,
): Promise<void> {
  await finishWritten(file, options);
  placeFile(tmpPath, targetPath, options);
  if (options.durable) await syncDirectory(dirname(targetPath));
}
