/**
 * What a transfer is asked to do and what it reports: the types uploads and
 * downloads share, one file or many.
 *
 * @module
 */

import type { Digest } from "../protocol/checksum.ts";
import type { FileVersion } from "../protocol/client_messages.ts";

/** What a finished transfer reports. */
export interface TransferResult {
  /** The whole file's size in bytes. */
  size: number;
  /** The digest of the whole file, as both sides computed it, with the session's checksum. */
  digest: Digest;
  /** Bytes that were already there from an interrupted transfer, and not sent again. */
  resumedFrom: number;
}

/** Options for a transfer. */
export interface TransferOptions {
  /**
   * Replace an existing file at the destination.
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Continue an interrupted transfer from the bytes already transferred.
   * @default {false}
   */
  resume?: boolean;
  /**
   * Give the destination the source's modification time.
   * @default {false}
   */
  preserveMtime?: boolean;
  /**
   * Replace the destination only if it is still this version (size and
   * mtime): checked by the server as it publishes an upload (`CHANGED`
   * otherwise), and here just before a download is renamed into place.
   * Implies overwrite.
   */
  ifUnchanged?: FileVersion;
  /** Called as data moves, with the bytes of the file done so far and its size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** One file of a many-file transfer. */
export interface TransferJob {
  /** The local path. */
  local: string;
  /** The remote name. */
  remote: string;
  /** This file's {@link TransferOptions.ifUnchanged}, over the transfer's. */
  ifUnchanged?: FileVersion;
  /** This file's {@link TransferOptions.resume}, over the transfer's. */
  resume?: boolean;
}

/** Options for a many-file transfer: those of each file, and reports per file. */
export interface ManyTransferOptions extends Omit<TransferOptions, "onProgress"> {
  /** Called as data moves, with the file, its bytes done so far and its size. */
  onProgress?: (job: TransferJob, doneBytes: number, totalBytes: number) => void;
  /** Called as each file completes, in order. */
  onFileDone?: (index: number, result: TransferResult) => void;
  /**
   * Called when a file is refused (an error reply, or a local check) while
   * the session stays sound: true counts it as left out, and the transfer
   * goes on with the other files; false (or no callback) makes it the
   * transfer's failure, after which no further file is sent.
   */
  onFileRefused?: (index: number, error: unknown) => boolean;
}

/**
 * The options of one file of a many-file transfer: its progress reported with the file.
 *
 * @example
 * ```ts
 * import { jobOptions } from "./transfer_options.ts";
 * const job = { local: "a", remote: "a" };
 * let seen = "";
 * jobOptions(job, { onProgress: (j, done) => void (seen = `${j.local}:${done}`) }).onProgress!(3, 9);
 * console.assert(seen === "a:3");
 * ```
 */
export function jobOptions(job: TransferJob, options: ManyTransferOptions): TransferOptions {
  return {
    ...options,
    ...(job.ifUnchanged === undefined ? {} : { ifUnchanged: job.ifUnchanged }),
    ...(job.resume === undefined ? {} : { resume: job.resume }),
    onProgress: options.onProgress && ((done, total) => options.onProgress!(job, done, total)),
  };
}
