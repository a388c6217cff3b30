/**
 * The root's space budget: an optional quota on what its files use, and a
 * reserve of free space every upload must leave on the file system. Uploads
 * reserve their declared size up front, so concurrent uploads cannot
 * together cross either line; a disk that fills anyway (another program
 * writing) still ends in NO_SPACE, and the partial file is discarded.
 * The bytes a broken resumable upload keeps for a resume count as used until
 * they expire or are resumed: a peer cannot park data beyond the quota.
 *
 * What each entry costs is entry_cost.ts's rule (at least `ENTRY_BYTES`);
 * directories are created under a claim of that charge, against the quota and
 * the reserve alike.
 *
 * @module
 */

import type { DfFields } from "../protocol/server_messages.ts";
import { statfs } from "node:fs/promises";
import { FtsError } from "../protocol/errors.ts";
import { ENTRY_BYTES, fileBytes, treeBytes } from "./entry_cost.ts";
import { logEvent } from "./log.ts";

// Kept here for the tests that import it from space.ts.

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
   * Cost ({@link entryBytes}) of the entry the upload will replace, credited
   * against the quota; 0 if none.
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
   * Throws NO_SPACE if the upload, published now over an entry costing
   * `replacedBytes` (0 if none), would exceed the quota: possible only when
   * that is less than the reservation credited (the file was renamed or
   * deleted meanwhile), and then checked with what is really replaced.
   */
  assertFits(replacedBytes: number): void;
  /** The upload was published, replacing an entry costing `replacedBytes` (0 if none). */
  commit(replacedBytes: number): void;
  /** The upload was discarded, or kept as a partial (see {@link SpaceBudget.held}). */
  release(): void;
}

/** A claim on space for directories about to be made, settled once they are. */
export interface DirectoriesReservation {
  /** `made` of the directories claimed were created (0 if none): they count as used, the rest is given back. */
  settle(made: number): void;
}

/** A claim as the budget holds it: settled as a reservation, or with what it used and wrote. */
interface Claim extends SpaceReservation {
  /** Settles the claim: `usedBytes` now count as used, `writtenBytes` as written to the disk. */
  commitBytes(usedBytes: number, writtenBytes: number): void;
}

/** Tracks the root's use against its limits. */
export class SpaceBudget {
  readonly #root: string;
  readonly #limits: SpaceLimits;
  /**
   * What the root's entries and the partials held for resumes cost
   * ({@link entryBytes}); measured at start only with a quota.
   */
  #usedBytes: number;
  /** Bytes claimed against the quota by uploads and directories in flight: their whole cost. */
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
   * state directory but counting the partials held in it, and starts the
   * budget. Entries it cannot reach (a path past the system's limit, a
   * directory it may not read) are skipped with a warning in the log: a
   * root some local program made unreadable in part is still served.
   */
  static async open(root: string, limits: SpaceLimits, dirs: StateDirs): Promise<SpaceBudget> {
    let used = 0;
    if (limits.quotaBytes !== null) {
      const skipped: string[] = [];
      used = await treeBytes(root, dirs.stateDir, skipped) +
        await treeBytes(dirs.partialDir, null, skipped);
      if (skipped.length > 0) {
        logEvent({
          peer: "-",
          op: "serve",
          result: "warning",
          detail: `${skipped.length} entries under the served directory could not be measured ` +
            `for the quota and count only ${ENTRY_BYTES} bytes each (the first: ${skipped[0]})`,
        });
      }
    }
    return new SpaceBudget(root, limits, used);
  }

  /** What the root's entries and held partials cost, as tracked (0 at start without a quota). */
  get usedBytes(): number {
    return this.#usedBytes;
  }

  /**
   * Claims an upload of `size` bytes, or throws NO_SPACE. Against the quota
   * its whole {@link fileBytes} counts, less the entry it replaces and the
   * partial held for it; against free space only the bytes still to be
   * written (a fresh file's at least {@link ENTRY_BYTES}).
   */
  reserve(size: number, options: ReserveOptions = {}): Promise<SpaceReservation> {
    const { replacingBytes = 0, heldBytes = 0 } = options;
    const heldCost = heldBytes > 0 ? fileBytes(heldBytes) : 0;
    const toWrite = heldBytes > 0 ? size - heldBytes : fileBytes(size);
    return this.#claim(`an upload of ${size} bytes`, fileBytes(size), toWrite, {
      creditBytes: replacingBytes + heldCost,
      heldCost,
    });
  }

  /**
   * Claims {@link ENTRY_BYTES} for each of `count` directories about to be
   * created, at once, against the quota and the reserve like an upload of
   * that size, or throws NO_SPACE: claimed one at a time, concurrent nested
   * mkdirs would each hold part of the room and all fail. Settle it with
   * the number made once they exist (a level another session made meanwhile
   * is not), or with 0 if none was.
   */
  async reserveDirectories(count: number): Promise<DirectoriesReservation> {
    const bytes = count * ENTRY_BYTES;
    const what = count === 1
      ? `a directory (${bytes} bytes)`
      : `${count} directories (${bytes} bytes)`;
    const claim = await this.#claim(what, bytes, bytes, { creditBytes: 0, heldCost: 0 });
    return {
      settle: (made) => claim.commitBytes(made * ENTRY_BYTES, made * ENTRY_BYTES),
    };
  }

  /**
   * Claims `cost` bytes against the quota (less `creditBytes`) and `toWrite`
   * against free space; `heldCost`, a resumed partial's, passes from used to
   * the claim. `what` names the claim in a refusal.
   */
  async #claim(
    what: string,
    cost: number,
    toWrite: number,
    { creditBytes, heldCost }: { creditBytes: number; heldCost: number },
  ): Promise<Claim> {
    const { reserveBytes } = this.#limits;
    // Measured first: the checks below then see every claim made meanwhile.
    const freeBytes = reserveBytes > 0 || toWrite > 0 ? await this.#freeBytes() : Infinity;
    this.#checkQuota(what, cost, creditBytes);
    if (freeBytes - this.#reservedDiskBytes - toWrite < reserveBytes) {
      throw new FtsError(
        "NO_SPACE",
        `${what} would leave less than the server's reserve of ${reserveBytes} free bytes`,
      );
    }
    const replacingBytes = creditBytes - heldCost;
    // A resumed partial's bytes are this claim's from now on: it covers them.
    this.#usedBytes = Math.max(0, this.#usedBytes - heldCost);
    this.#reservedBytes += cost;
    this.#reservedDiskBytes += toWrite;
    let settled = false;
    const settle = () => {
      if (settled) return false;
      settled = true;
      this.#reservedBytes -= cost;
      this.#reservedDiskBytes -= toWrite;
      return true;
    };
    const commitBytes = (usedBytes: number, writtenBytes: number) => {
      if (!settle()) return;
      this.#usedBytes += usedBytes;
      this.#committedSinceMeasured += writtenBytes;
    };
    return {
      assertFits: (replacedBytes) => {
        // This claim's cost is among the reserved bytes already.
        if (!settled && replacedBytes < replacingBytes) this.#checkQuota(what, 0, replacedBytes);
      },
      commit: (replacedBytes) => commitBytes(cost - replacedBytes, toWrite),
      release: () => void settle(),
      commitBytes,
    };
  }

  /** A broken upload's `bytes` (more than 0) are kept as a partial for a resume: they count as used. */
  held(bytes: number): void {
    this.#usedBytes += fileBytes(bytes);
    // Written under a reservation now released: the disk has them even if the measurement is older.
    this.#committedSinceMeasured += bytes;
  }

  /**
   * Throws NO_SPACE unless `cost` more bytes fit the quota alongside what is
   * used and in flight, less `creditBytes` that the claim itself frees or
   * already holds; `what` names the claim in the refusal.
   */
  #checkQuota(what: string, cost: number, creditBytes: number): void {
    const { quotaBytes } = this.#limits;
    if (quotaBytes === null) return;
    const inUse = this.#usedBytes + this.#reservedBytes - creditBytes;
    if (inUse + cost > quotaBytes) {
      throw new FtsError(
        "NO_SPACE",
        `${what} would exceed the quota of ${quotaBytes} bytes ` +
          `(${inUse} in use, held for resumes, or in flight)`,
      );
    }
  }

  /** The root's space as `df` reports it: free bytes (less uploads in flight), reserve, quota. */
  async report(): Promise<DfFields> {
    const free = await this.#freeBytes() - this.#reservedDiskBytes;
    return {
      freeBytes: Math.max(0, Math.floor(free)),
      reserveBytes: this.#limits.reserveBytes,
      quotaBytes: this.#limits.quotaBytes,
      usedBytes: this.#usedBytes + this.#reservedBytes,
    };
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

  /**
   * An entry, or a held partial, was removed: `bytes` is what it cost
   * ({@link entryBytes}). Only for an entry really gone: a rename onto
   * another name of the same file removes nothing.
   */
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
