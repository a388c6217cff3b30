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
 * The budget's counts live in shared memory, changed under the root's step
 * lock (shared_lock.ts): every worker of the server claims against the same
 * counts, so that the quota and the reserve hold whichever worker serves an
 * upload. Across processes (several servers on one root) the counts would
 * have to live beside the root, under a lease.
 *
 * @module
 */

import type { DfFields } from "../protocol/server_messages.ts";
import { statfs } from "node:fs/promises";
import { FtsError } from "../protocol/errors.ts";
import { ENTRY_BYTES, fileBytes, treeBytes } from "./entry_cost.ts";
import { logEvent } from "./log.ts";
import { SharedLock } from "./shared_lock.ts";

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

/** Where each of the budget's counts is, in a Float64Array in shared memory. */
const COUNT = {
  /**
   * What the root's entries and the partials held for resumes cost
   * ({@link entryBytes}); measured at start only with a quota.
   */
  used: 0,
  /** Bytes claimed against the quota by uploads and directories in flight: their whole cost. */
  reserved: 1,
  /** Bytes uploads in flight have still to write to the disk: a resume's held bytes are there already. */
  reservedDisk: 2,
  /** When free space was last measured, ms since the epoch; NaN before the first measurement. */
  measuredAtMs: 3,
  /** The file system's free space when last measured. */
  measuredFree: 4,
  /** Bytes of uploads published since the last measurement. */
  committedSinceMeasured: 5,
} as const;

/** Cells in {@link COUNT}. */
const COUNT_CELLS = 6;

/** The budget's shared state: its counts and the step lock they change under. */
export interface SharedSpace {
  /** The counts, from {@link SpaceBudget.allocate}. */
  counts: SharedArrayBuffer;
  /** The root's step lock, this thread's handle on it. */
  lock: SharedLock;
}

/** A clock every worker reads alike: ms since the epoch, from the monotonic clock. */
function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Tracks the root's use against its limits. */
export class SpaceBudget {
  readonly #root: string;
  readonly #limits: SpaceLimits;
  readonly #counts: Float64Array;
  readonly #lock: SharedLock;

  /** Counts for a budget nobody has measured or claimed against yet: hand them to every worker. */
  static allocate(): SharedArrayBuffer {
    const counts = new SharedArrayBuffer(COUNT_CELLS * Float64Array.BYTES_PER_ELEMENT);
    new Float64Array(counts)[COUNT.measuredAtMs] = NaN;
    return counts;
  }

  /**
   * The budget of `root` under `limits` with the counts in `shared`, as they
   * are: a worker joining a server whose root is measured already. See
   * {@link SpaceBudget.open} for the first.
   */
  constructor(root: string, limits: SpaceLimits, shared: SharedSpace) {
    this.#root = root;
    this.#limits = limits;
    this.#counts = new Float64Array(shared.counts);
    this.#lock = shared.lock;
  }

  /**
   * Measures the root (only when there is a quota), skipping the server's
   * state directory but counting the partials held in it, and starts the
   * budget with that use in `shared` (fresh counts by default). Entries it
   * cannot reach (a path past the system's limit, a directory it may not
   * read) are skipped with a warning in the log: a root some local program
   * made unreadable in part is still served.
   */
  static async open(
    root: string,
    limits: SpaceLimits,
    dirs: StateDirs,
    shared: SharedSpace = { counts: SpaceBudget.allocate(), lock: new SharedLock() },
  ): Promise<SpaceBudget> {
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
    const budget = new SpaceBudget(root, limits, shared);
    budget.#lock.hold(() => budget.#counts[COUNT.used] = used);
    return budget;
  }

  /** What the root's entries and held partials cost, as tracked (0 at start without a quota). */
  get usedBytes(): number {
    return this.#lock.hold(() => this.#counts[COUNT.used]!);
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
    const needsFree = reserveBytes > 0 || toWrite > 0;
    // Measured first: the checks below, in one step, then see every claim made meanwhile.
    if (needsFree) await this.#measureFreeIfStale();
    const counts = this.#counts;
    this.#lock.hold(() => {
      const freeBytes = needsFree ? this.#freeBytes() : Infinity;
      this.#checkQuota(what, cost, creditBytes);
      if (freeBytes - counts[COUNT.reservedDisk]! - toWrite < reserveBytes) {
        throw new FtsError(
          "NO_SPACE",
          `${what} would leave less than the server's reserve of ${reserveBytes} free bytes`,
        );
      }
      // A resumed partial's bytes are this claim's from now on: it covers them.
      counts[COUNT.used] = Math.max(0, counts[COUNT.used]! - heldCost);
      counts[COUNT.reserved] = counts[COUNT.reserved]! + cost;
      counts[COUNT.reservedDisk] = counts[COUNT.reservedDisk]! + toWrite;
    });
    const replacingBytes = creditBytes - heldCost;
    let settled = false;
    // Called holding the lock.
    const settle = () => {
      if (settled) return false;
      settled = true;
      counts[COUNT.reserved] = counts[COUNT.reserved]! - cost;
      counts[COUNT.reservedDisk] = counts[COUNT.reservedDisk]! - toWrite;
      return true;
    };
    const commitBytes = (usedBytes: number, writtenBytes: number) =>
      this.#lock.hold(() => {
        if (!settle()) return;
        counts[COUNT.used] = counts[COUNT.used]! + usedBytes;
        counts[COUNT.committedSinceMeasured] = counts[COUNT.committedSinceMeasured]! +
          writtenBytes;
      });
    return {
      assertFits: (replacedBytes) =>
        this.#lock.hold(() => {
          // This claim's cost is among the reserved bytes already.
          if (!settled && replacedBytes < replacingBytes) {
            this.#checkQuota(what, 0, replacedBytes);
          }
        }),
      commit: (replacedBytes) => commitBytes(cost - replacedBytes, toWrite),
      release: () => void this.#lock.hold(settle),
      commitBytes,
    };
  }

  /** A broken upload's `bytes` (more than 0) are kept as a partial for a resume: they count as used. */
  held(bytes: number): void {
    const counts = this.#counts;
    this.#lock.hold(() => {
      counts[COUNT.used] = counts[COUNT.used]! + fileBytes(bytes);
      // Written under a reservation now released: the disk has them even if the measurement is older.
      counts[COUNT.committedSinceMeasured] = counts[COUNT.committedSinceMeasured]! + bytes;
    });
  }

  /**
   * Throws NO_SPACE unless `cost` more bytes fit the quota alongside what is
   * used and in flight, less `creditBytes` that the claim itself frees or
   * already holds; `what` names the claim in the refusal. Called holding the lock.
   */
  #checkQuota(what: string, cost: number, creditBytes: number): void {
    const { quotaBytes } = this.#limits;
    if (quotaBytes === null) return;
    const inUse = this.#counts[COUNT.used]! + this.#counts[COUNT.reserved]! - creditBytes;
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
    await this.#measureFreeIfStale();
    const counts = this.#counts;
    const { free, used } = this.#lock.hold(() => ({
      free: this.#freeBytes() - counts[COUNT.reservedDisk]!,
      used: counts[COUNT.used]! + counts[COUNT.reserved]!,
    }));
    return {
      freeBytes: Math.max(0, Math.floor(free)),
      reserveBytes: this.#limits.reserveBytes,
      quotaBytes: this.#limits.quotaBytes,
      // Without a quota the root is not measured, so what is counted is only what came since: not a use.
      usedBytes: this.#limits.quotaBytes === null ? 0 : used,
    };
  }

  /**
   * Measures the file system's free space unless a measurement (by any
   * worker) is less than {@link FREE_SPACE_MEASURE_INTERVAL_MS} old.
   */
  async #measureFreeIfStale(): Promise<void> {
    const now = sharedNow();
    const counts = this.#counts;
    const fresh = this.#lock.hold(() =>
      now - counts[COUNT.measuredAtMs]! < FREE_SPACE_MEASURE_INTERVAL_MS
    );
    if (fresh) return;
    const info = await statfs(this.#root);
    this.#lock.hold(() => {
      counts[COUNT.measuredAtMs] = now;
      counts[COUNT.measuredFree] = Number(info.bavail) * Number(info.bsize);
      counts[COUNT.committedSinceMeasured] = 0;
    });
  }

  /**
   * Free bytes on the root's file system as last measured; uploads published
   * since the measurement count as used, files removed since do not count as
   * freed. Partials kept since count as used too. (Uploads in flight are
   * reserved for all they have still to write, counted twice at worst as
   * they write it.) Called holding the lock.
   */
  #freeBytes(): number {
    return this.#counts[COUNT.measuredFree]! - this.#counts[COUNT.committedSinceMeasured]!;
  }

  /**
   * An entry, or a held partial, was removed: `bytes` is what it cost
   * ({@link entryBytes}). Only for an entry really gone: a rename onto
   * another name of the same file removes nothing.
   */
  freed(bytes: number): void {
    const counts = this.#counts;
    this.#lock.hold(() => counts[COUNT.used] = Math.max(0, counts[COUNT.used]! - bytes));
  }
}

/** Where the server keeps its state inside the root. */
export interface StateDirs {
  /** The state directory: not the root's files. */
  stateDir: string;
  /** Where partials held for resumes wait, inside the state directory: counted. */
  partialDir: string;
}
