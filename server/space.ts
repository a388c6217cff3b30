/**
 * The root's space budget: an optional quota on what its files use, and a
 * reserve of free space every upload must leave on the file system. Uploads
 * reserve their declared size up front, so concurrent uploads cannot
 * together cross either line; a disk that fills anyway (another program
 * writing) still ends in NO_SPACE, and the partial file is discarded.
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

/** An upload's claim on space, settled when it is published or discarded. */
export interface SpaceReservation {
  /** The upload was published, replacing a file of `replacedBytes` (0 if none). */
  commit(replacedBytes: number): void;
  /** The upload was discarded. */
  release(): void;
}

/** Tracks the root's use against its limits. */
export class SpaceBudget {
  readonly #root: string;
  readonly #limits: SpaceLimits;
  /** Bytes used by the root's files; tracked only with a quota. */
  #usedBytes: number;
  /** Bytes claimed by uploads in flight. */
  #reservedBytes = 0;
  /** The file system's free space when last measured. */
  #measured: { atMs: number; freeBytes: number } | null = null;
  /** Bytes of uploads published since the last measurement. */
  #committedSinceMeasured = 0;

  private constructor(root: string, limits: SpaceLimits, usedBytes: number) {
    this.#root = root;
    this.#limits = limits;
    this.#usedBytes = usedBytes;
  }

  /** Measures the root (only when there is a quota) and starts the budget. */
  static async open(root: string, limits: SpaceLimits, skip: string): Promise<SpaceBudget> {
    const used = limits.quotaBytes === null ? 0 : await treeBytes(root, skip);
    return new SpaceBudget(root, limits, used);
  }

  /** Bytes the root's files use, as tracked (0 without a quota). */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Claims `size` bytes for an upload that will replace a file of
   * `replacingBytes` (0 for a new name), or throws NO_SPACE.
   */
  async reserve(size: number, replacingBytes: number): Promise<SpaceReservation> {
    const { quotaBytes, reserveBytes } = this.#limits;
    // Measured first: the checks below then see every upload that reserved meanwhile.
    const freeBytes = reserveBytes > 0 || size > 0 ? await this.#freeBytes() : Infinity;
    const inUse = this.#usedBytes + this.#reservedBytes - replacingBytes;
    if (quotaBytes !== null && inUse + size > quotaBytes) {
      throw new FtsError(
        "NO_SPACE",
        `an upload of ${size} bytes would exceed the quota of ${quotaBytes} bytes ` +
          `(${inUse} in use or in flight)`,
      );
    }
    if (freeBytes - this.#reservedBytes - size < reserveBytes) {
      throw new FtsError(
        "NO_SPACE",
        `an upload of ${size} bytes would leave less than the server's reserve of ` +
          `${reserveBytes} free bytes`,
      );
    }
    this.#reservedBytes += size;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.#reservedBytes -= size;
      return true;
    };
    return {
      commit: (replacedBytes) => {
        if (!settle()) return;
        this.#usedBytes += size - replacedBytes;
        this.#committedSinceMeasured += size;
      },
      release: () => void settle(),
    };
  }

  /**
   * Free bytes on the root's file system, measured at most every
   * {@link FREE_SPACE_MEASURE_INTERVAL_MS}; uploads published since the
   * measurement count as used, files removed since do not count as freed.
   * (Uploads in flight are reserved in full, counted twice at worst; the
   * data an interrupted upload kept for a resume shows at the next measurement.)
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

  /** A file of `bytes` was removed. */
  freed(bytes: number): void {
    this.#usedBytes = Math.max(0, this.#usedBytes - bytes);
  }
}

/** Total size of the regular files under `dir`, not following links, skipping `skip`. */
async function treeBytes(dir: string, skip: string): Promise<number> {
  let total = 0;
  for await (const entry of Deno.readDir(dir)) {
    const path = join(dir, entry.name);
    if (path === skip) continue;
    if (entry.isDirectory) total += await treeBytes(path, skip);
    else if (entry.isFile) total += (await Deno.lstat(path)).size;
  }
  return total;
}
