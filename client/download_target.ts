/**
 * The local side of one download: the temporary file the data goes into
 * (./partial_download.ts), the digest of the whole file (held bytes and
 * received ones), the first local failure, and the publish as a member of
 * a commit group: fsync, rename onto the real name, fsync of the directory.
 * Readers never see a partial file under the real name: the rename is
 * atomic within one file system.
 * The stages are io/verified_transfer.ts's, which the server uses too.
 *
 * @module
 */

import { dirname } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { CHECKSUM_TITLES, type ChecksumName, type Digest } from "../protocol/checksum.ts";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import type { CommitMember } from "../io/commit_group.ts";
import {
  finishWritten,
  hashHeldPrefix,
  placeFile,
  type TransferHash,
  writeToFile,
} from "../io/verified_transfer.ts";
import { createTransferHash } from "../io/hash_threads.ts";
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
 * import { commitGroup } from "../io/commit_group.ts";
 * import { DownloadTarget } from "./download_target.ts";
 * const dir = Deno.makeTempDirSync();
 * const bytes = new TextEncoder().encode("hello\n");
 * const partial = join(dir, ".a.fts-partial");
 * const size = bytes.length;
 * const target = await DownloadTarget.open(join(dir, "a"), partial, { offset: 0, size }, "sha256");
 * await target.hash.update(bytes);
 * await target.sink?.(bytes);
 * target.endOfData(null);
 * const hex = createHash("sha256").update(bytes).digest("hex");
 * const digest = await target.verified({ algorithm: "sha256", hex });
 * const member = target.commitMember(undefined, undefined, { beforePlace() {}, onPlaced() {} });
 * const [outcome] = await commitGroup([member]);
 * console.assert(outcome?.ok);
 * console.assert(Deno.readTextFileSync(join(dir, "a")) === "hello\n" && digest.hex === hex);
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
  /** The digest of the whole file being computed: the held bytes, then every byte received. */
  readonly hash: TransferHash;
  #file: Deno.FsFile | null = null;
  #failure: unknown = null;
  /** The temporary file is ours to remove: we made it, or opened the one held for us. */
  #owned = false;
  #dataComplete = false;

  private constructor(
    localPath: string,
    partialPath: string,
    offset: number,
    hash: TransferHash,
  ) {
    this.localPath = localPath;
    this.partialPath = partialPath;
    this.offset = offset;
    this.hash = hash;
  }

  /**
   * Opens the temporary file, never through a link, keeping its first
   * `offset` bytes (hashed now with `checksum`, the session's) and dropping
   * the rest. `refusal`, when given, is why nothing may be written (it is
   * kept like a local failure).
   */
  static async open(
    localPath: string,
    partialPath: string,
    { offset, size }: { offset: number; size: number },
    checksum: ChecksumName,
    refusal: FtsError | null = null,
  ): Promise<DownloadTarget> {
    const hash = await createTransferHash(checksum, size);
    const target = new DownloadTarget(localPath, partialPath, offset, hash);
    try {
      if (refusal !== null) throw refusal;
      const file = openPartialDownload(partialPath, offset > 0);
      target.#file = file;
      target.#owned = true;
      // The held bytes count towards the whole file's hash; the rest is appended.
      await hashHeldPrefix(file, offset, target.hash, {
        onShrink: () => new Error("partial download shrank while being read"),
      });
      file.truncateSync(offset);
      file.seekSync(offset, Deno.SeekMode.Start);
    } catch (err) {
      target.#failure = err instanceof FtsError ? err : cannotWrite(localPath, err);
    }
    return target;
  }

  /** Where the received bytes go: the temporary file, or nowhere (null) after a local failure. */
  get sink(): ((chunk: Uint8Array) => Promise<void>) | null {
    return this.#failure === null && this.#file !== null ? writeToFile(this.#file) : null;
  }

  /**
   * Marks every byte of the data as received, keeping `writeFailure` (the
   * first failed write, or null): from here a broken session leaves nothing to resume.
   */
  endOfData(writeFailure: unknown): void {
    this.#failure ??= writeFailure;
    this.#dataComplete = true;
  }

  /**
   * The whole file's digest, once it equals `expected` (the server's, of
   * the same checksum: decoding saw to that); throws the first local
   * failure, or `INTEGRITY` when the digests differ.
   */
  async verified(expected: Digest): Promise<Digest> {
    if (this.#failure !== null) throw this.#failure;
    const digest = await this.hash.digest();
    if (expected.hex !== digest.hex) {
      throw new FtsError(
        "INTEGRITY",
        `received data has ${CHECKSUM_TITLES[digest.algorithm]} ${digest.hex}, ` +
          `the server sent ${expected.hex}; nothing was saved` +
          (this.offset > 0 ? " (the partial download was stale: retry without --resume)" : ""),
      );
    }
    return digest;
  }

  /**
   * The verified file as a member of a commit group (io/commit_group.ts):
   * settling gives it `mtimeMs` (when given) and makes it durable; placing
   * calls `beforePlace` (which may refuse by throwing: nothing is replaced),
   * renames it onto {@link localPath}, calls `onPlaced` (the file has its
   * name now), and names its directory for the group's fsync. Neither waits
   * for a disk that is memory anyway.
   */
  commitMember(
    mtimeMs: number | undefined,
    modeBits: number | undefined,
    { beforePlace, onPlaced }: { beforePlace(): void; onPlaced(): void },
  ): CommitMember {
    let durable = true;
    return {
      settle: async () => {
        durable = !await isInMemoryFileSystem(dirname(this.partialPath));
        const file = this.#file!;
        this.#file = null;
        // The partial file was made here fresh (create-new): no link stands in its place.
        if (modeBits !== undefined) Deno.chmodSync(this.partialPath, modeBits);
        await finishWritten(file, { mtime: mtimeMs, durable });
      },
      place: () => {
        beforePlace();
        placeFile(this.partialPath, this.localPath, { overwrite: true });
        onPlaced();
        return durable ? dirname(this.localPath) : null;
      },
    };
  }

  /**
   * Cleans up after `err` stopped the download: closes the file, and removes
   * it unless data cut off part-way by a broken session stays for a resume.
   */
  async discard(err: unknown): Promise<void> {
    this.hash[Symbol.dispose]();
    this.#file?.close();
    this.#file = null;
    if (this.#owned && (this.#dataComplete || !(err instanceof ConnectionError))) {
      await Deno.remove(this.partialPath).catch(() => {});
    }
  }
}

/**
 * Why `localPath` cannot be written, named by the path the user gave (not
 * the hidden partial file beside it), with a stable code where the file
 * system's error has one: a missing local directory is `NOT_FOUND`.
 */
function cannotWrite(localPath: string, err: unknown): Error {
  const code = err instanceof Deno.errors.NotFound
    ? "NOT_FOUND"
    : err instanceof Deno.errors.PermissionDenied
    ? "DENIED"
    : (err as { code?: unknown }).code === "ENOSPC"
    ? "NO_SPACE"
    : null;
  if (code === "NOT_FOUND") {
    return new FtsError(code, `no local directory ${dirname(localPath)} to write ${localPath} in`, {
      cause: err,
    });
  }
  const why = (err as Error).message.replace(/ \(os error \d+\).*$/, "").toLowerCase();
  return code === null
    ? new Error(`cannot write ${localPath}: ${(err as Error).message}`, { cause: err })
    : new FtsError(code, `cannot write ${localPath}: ${why}`, { cause: err });
}
