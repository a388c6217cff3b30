/**
 * The root's space budget: an optional quota on what its files use, and a
 * reserve of free space every upload must leave on the file system. Uploads
 * reserve their declared size up front, so concurrent uploads cannot
 * together cross either line; a disk that fills anyway (another program
 * writing) still ends in NO_SPACE, and the partial file is discarded.
 * The bytes a broken resumable upload keeps for a resume count as used until
 * they expire or are resumed: a peer cannot park data beyond the quota.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";

/**
 * How long a measurement of free space stands in for a new one: a statfs
 * per upload would cost more than a small file's write, and in 100 ms the
 * uploads published meanwhile are counted anyway.
 */
export const FREE_SPACE_MEASURE_INTERVAL_MS = 100;

/** Space limits of one root. */
export interface SpaceLimits {
  /** Bytes the root's files may use in all, or null for no quota. */
  quotaBytes: number | null;
  /** Free bytes an upload must leave on the file system. */
  reserveBytes: number;
}

/** What an upload's claim on space starts from. */
export interface ReserveOptions {
  /**
   * Size of the file the upload will replace, credited against the quota.
   * @default {0}
   */
  replacingBytes?: number;
  /**
   * Bytes already held for it from a broken upload (a resume): counted as
   * used already, and already on the disk.
   * @default {0}
   */
  heldBytes?: number;
}

/** An upload's claim on space, settled when it is published or discarded. */
export interface SpaceReservation {
  /**
   * Throws NO_SPACE if the upload, published now over a file of
   * `replacedBytes` (0 if none), would exceed the quota: possible only when
   * that is less than the reservation credited (the file was renamed or
   * deleted meanwhile), and then checked with what is really replaced.
   */
  assertFits(replacedBytes: number): void;
  /** The upload was published, replacing a file of `replacedBytes` (0 if none). */
  commit(replacedBytes: number): void;
  /** The upload was discarded, or kept as a partial (see {@link SpaceBudget.held}). */
  release(): void;
}

/** Tracks the root's use against its limits. */
export class SpaceBudget {
  readonly #root: string;
  readonly #limits: SpaceLimits;
  /**
   * Bytes used by the root's files and by the partials held for resumes;
   * measured at start only with a quota.
   */
  #usedBytes: number;
  /** Bytes claimed against the quota by uploads in flight: their whole size. */
  #reservedBytes = 0;
  /** Bytes uploads in flight have still to write to the disk: a resume's held bytes are there already. */
  #reservedDiskBytes = 0;
  /** The file system's free space when last measured. */
  #measured: { atMs: number; freeBytes: number } | null = null;
  /** Bytes of uploads published since the last measurement. */
  #committedSinceMeasured = 0;

  private constructor(root: string, limits: SpaceLimits, usedBytes: number) {
    this.#root = root;
    this.#limits = limits;
    this.#usedBytes = usedBytes;
  }

  /**
   * Measures the root (only when there is a quota), skipping the server's
   * state directory but counting the partials held in it, and starts the budget.
   */
  static async open(root: string, limits: SpaceLimits, dirs: StateDirs): Promise<SpaceBudget> {
    const used = limits.quotaBytes === null
      ? 0
      : await treeBytes(root, dirs.stateDir) + await treeBytes(dirs.partialDir, null);
    return new SpaceBudget(root, limits, used);
  }

  /** Bytes the root's files and held partials use, as tracked (0 at start without a quota). */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Claims `size` bytes for an upload, or throws NO_SPACE. Against the quota
   * the whole size counts, less the file it replaces and the bytes held for
   * it; against free space only the bytes still to be written.
   */
  async reserve(size: number, options: ReserveOptions = {}): Promise<SpaceReservation> {
    const { replacingBytes = 0, heldBytes = 0 } = options;
    const toWrite = size - heldBytes;
    const { reserveBytes } = this.#limits;
    // Measured first: the checks below then see every upload that reserved meanwhile.
    const freeBytes = reserveBytes > 0 || toWrite > 0 ? await this.#freeBytes() : Infinity;
    this.#checkQuota(size, replacingBytes + heldBytes);
    if (freeBytes - this.#reservedDiskBytes - toWrite < reserveBytes) {
      throw new FtsError(
        "NO_SPACE",
        `an upload of ${toWrite} bytes would leave less than the server's reserve of ` +
          `${reserveBytes} free bytes`,
      );
    }
    // The held bytes are this upload's from now on: its reservation covers them.
    this.#usedBytes = Math.max(0, this.#usedBytes - heldBytes);
    this.#reservedBytes += size;
    this.#reservedDiskBytes += toWrite;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.#reservedBytes -= size;
      this.#reservedDiskBytes -= toWrite;
      return true;
    };
    return {
      assertFits: (replacedBytes) => {
        // This upload's size is among the reserved bytes already.
        if (!settled && replacedBytes < replacingBytes) this.#checkQuota(0, replacedBytes);
      },
      commit: (replacedBytes) => {
        if (!settle()) return;
        this.#usedBytes += size - replacedBytes;
        this.#committedSinceMeasured += toWrite;
      },
      release: () => void settle(),
    };
  }

  /** A broken upload's `bytes` are kept as a partial for a resume: they count as used. */
  held(bytes: number): void {
    this.#usedBytes += bytes;
    // Written under a reservation now released: the disk has them even if the measurement is older.
    this.#committedSinceMeasured += bytes;
  }

  /**
   * Throws NO_SPACE unless `size` more bytes fit the quota alongside what is
   * used and in flight, less `creditBytes` that the upload itself frees or already holds.
   */
  #checkQuota(size: number, creditBytes: number): void {
    const { quotaBytes } = this.#limits;
    if (quotaBytes === null) return;
    const inUse = this.#usedBytes + this.#reservedBytes - creditBytes;
    if (inUse + size > quotaBytes) {
      throw new FtsError(
        "NO_SPACE",
        `an upload of ${size} bytes would exceed the quota of ${quotaBytes} bytes ` +
          `(${inUse} in use, held for resumes, or in flight)`,
      );
    }
  }

  /**
   * Free bytes on the root's file system, measured at most every
   * {@link FREE_SPACE_MEASURE_INTERVAL_MS}; uploads published since the
   * measurement count as used, files removed since do not count as freed.
   * Partials kept since count as used too. (Uploads in flight are reserved
   * for all they have still to write, counted twice at worst as they write it.)
   */
  async #freeBytes(): Promise<number> {
    const now = performance.now();
    if (this.#measured === null || now - this.#measured.atMs >= FREE_SPACE_MEASURE_INTERVAL_MS) {
      const info = await statfs(this.#root);
      this.#measured = { atMs: now, freeBytes: Number(info.bavail) * Number(info.bsize) };
      this.#committedSinceMeasured = 0;
    }
    return this.#measured.freeBytes - this.#committedSinceMeasured;
  }

  /** A file, or a held partial, of `bytes` was removed. */
  freed(bytes: number): void {
    this.#usedBytes = Math.max(0, this.#usedBytes - bytes);
  }
}

/** Where the server keeps its state inside the root. */
export interface StateDirs {
  /** The state directory: not the root's files. */
  stateDir: string;
  /** Where partials held for resumes wait, inside the state directory: counted. */
  partialDir: string;
}

/** Total size of the regular files under `dir`, not following links, skipping `skip`. */
async function treeBytes(dir: string, skip: string | null): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (path === skip) continue;
    if (entry.isDirectory) total += await treeBytes(path, skip);
    else if (entry.isFile) total += (await Deno.lstat(path)).size;
  }
  return total;
}
