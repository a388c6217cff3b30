/**
 * The local side of one download: the temporary file the data goes into
 * (./partial_download.ts), the SHA-256 of the whole file (held bytes and
 * received ones), the first local failure, and the publish: fsync, rename
 * onto the real name, fsync of the directory. Readers never see a partial
 * file under the real name: the rename is atomic within one file system.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { writeAll } from "../protocol/frames.ts";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import { pumpExactly } from "../io/pump.ts";
import { fileSink } from "../io/small_file_io.ts";
import { syncDirectory } from "../io/sync_directory.ts";
import { ConnectionError } from "./errors.ts";
import { openPartialDownload } from "./partial_download.ts";

/**
 * A download's temporary file while its data arrives. A local failure
 * (the file cannot be opened or written) does not stop the data being
 * read, so the session stays in step; it is thrown once the reply is in.
 *
 * @example
 * ```ts
 * import { createHash } from "node:crypto";
 * import { join } from "node:path";
 * import { DownloadTarget } from "./download_target.ts";
 * const dir = Deno.makeTempDirSync();
 * const bytes = new TextEncoder().encode("hello\n");
 * const target = await DownloadTarget.open(join(dir, "a"), join(dir, ".a.fts-partial"), 0);
 * await target.write(bytes);
 * target.endOfData();
 * const sha256 = target.verified(createHash("sha256").update(bytes).digest("hex"));
 * await target.publish(null);
 * console.assert(Deno.readTextFileSync(join(dir, "a")) === "hello\n" && sha256.length === 64);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class DownloadTarget {
  /** Where the file lands once verified. */
  readonly localPath: string;
  /** The temporary file it is received into. */
  readonly partialPath: string;
  /** Bytes held in the temporary file from an earlier download, kept and hashed. */
  readonly offset: number;
  readonly #hash = createHash("sha256");
  #file: Deno.FsFile | null = null;
  #failure: unknown = null;
  /** The temporary file is ours to remove: we made it, or opened the one held for us. */
  #owned = false;
  #dataComplete = false;

  private constructor(localPath: string, partialPath: string, offset: number) {
    this.localPath = localPath;
    this.partialPath = partialPath;
    this.offset = offset;
  }

  /**
   * Opens the temporary file, never through a link, keeping its first
   * `offset` bytes (hashed now) and dropping the rest. `refusal`, when given,
   * is why nothing may be written (it is kept like a local failure).
   */
  static async open(
    localPath: string,
    partialPath: string,
    offset: number,
    refusal: FtsError | null = null,
  ): Promise<DownloadTarget> {
    const target = new DownloadTarget(localPath, partialPath, offset);
    try {
      if (refusal !== null) throw refusal;
      const file = openPartialDownload(partialPath, offset > 0);
      target.#file = file;
      target.#owned = true;
      // The held bytes count towards the whole file's hash; the rest is appended.
      await pumpExactly(
        file,
        offset,
        (chunk) => void target.#hash.update(chunk),
        () => new Error("partial download shrank while being read"),
      );
      file.truncateSync(offset);
      file.seekSync(offset, Deno.SeekMode.Start);
    } catch (err) {
      target.#failure = err instanceof FtsError
        ? err
        : new Error(`cannot write ${localPath}: ${(err as Error).message}`, { cause: err });
    }
    return target;
  }

  /** Hashes a received chunk and appends it, unless a local failure came first. */
  async write(chunk: Uint8Array): Promise<void> {
    this.#hash.update(chunk);
    if (this.#failure !== null || this.#file === null) return;
    try {
      await writeAll(fileSink(this.#file, chunk.length), chunk);
    } catch (err) {
      this.#failure = err;
    }
  }

  /** Marks every byte of the data as received: from here a broken session leaves nothing to resume. */
  endOfData(): void {
    this.#dataComplete = true;
  }

  /**
   * The whole file's SHA-256, once it equals `expected` (the server's);
   * throws the first local failure, or `INTEGRITY` when the digests differ.
   */
  verified(expected: unknown): string {
    if (this.#failure !== null) throw this.#failure;
    const sha256 = this.#hash.digest("hex");
    if (expected !== sha256) {
      throw new FtsError(
        "INTEGRITY",
        `received data has SHA-256 ${sha256}, the server sent ${expected}; nothing was saved` +
          (this.offset > 0 ? " (the partial download was stale: retry without --resume)" : ""),
      );
    }
    return sha256;
  }

  /**
   * Gives the file `mtimeMs` (when not null), makes it durable, renames it
   * onto {@link localPath}, and makes the name durable, unless the disk is
   * memory anyway.
   */
  async publish(mtimeMs: number | null): Promise<void> {
    const file = this.#file!;
    if (mtimeMs !== null) await file.utime(new Date(), new Date(mtimeMs));
    const onDisk = !await isInMemoryFileSystem(dirname(this.partialPath));
    if (onDisk) await file.sync();
    file.close();
    this.#file = null;
    Deno.renameSync(this.partialPath, this.localPath);
    if (onDisk) await syncDirectory(dirname(this.localPath));
  }

  /**
   * Cleans up after `err` stopped the download: closes the file, and removes
   * it unless data cut off part-way by a broken session stays for a resume.
   */
  async discard(err: unknown): Promise<void> {
    this.#file?.close();
    this.#file = null;
    if (this.#owned && (this.#dataComplete || !(err instanceof ConnectionError))) {
      await Deno.remove(this.partialPath).catch(() => {});
    }
  }
}
