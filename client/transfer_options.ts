/**
 * What a transfer is asked to do and what it reports: the types uploads and
 * downloads share, one file or many.
 *
 * @module
 */

import type { Digest } from "../protocol/checksum.ts";

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
  /** Called as data moves, with the bytes of the file done so far and its size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** One file of a many-file transfer. */
export interface TransferJob {
  /** The local path. */
  local: string;
  /** The remote name. */
  remote: string;
}

/** Options for a many-file transfer: those of each file, and reports per file. */
export interface ManyTransferOptions extends Omit<TransferOptions, "onProgress"> {
  /** Called as data moves, with the file, its bytes done so far and its size. */
  onProgress?: (job: TransferJob, doneBytes: number, totalBytes: number) => void;
  /** Called as each file completes, in order. */
  onFileDone?: (index: number, result: TransferResult) => void;
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
    onProgress: options.onProgress && ((done, total) => options.onProgress!(job, done, total)),
  };
}
