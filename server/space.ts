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
 * The budget's counts are the root's, in its ledger (space_ledger.ts),
 * changed under the root's step lock (shared_lock.ts) and the ledger's own:
 * every worker of every server serving the root claims against the same
 * counts, so that the quota and the reserve hold whichever worker of
 * whichever server serves an upload. Only the last measurement of free
 * space is the server's own, in shared memory.
 *
 * @module
 */

import type { DfFields } from "../protocol/server_messages.ts";
import { statfs } from "node:fs/promises";
import { FtsError } from "../protocol/errors.ts";
import { ENTRY_BYTES, fileBytes, treeBytes } from "./entry_cost.ts";
import { logEvent } from "./log.ts";
import {
  LEASE_EXPIRY_MS,
  LEASE_REFRESH_MS,
  type LeaseRecord,
  lockPath,
  readLease,
} from "./server_lease.ts";
import { SharedLock } from "./shared_lock.ts";
import {
  claimsOf,
  claimsOfAll,
  type LedgerCounts,
  type ServerClaims,
  SpaceLedger,
} from "./space_ledger.ts";

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

/** Where each of the server's own cells is, in a Float64Array in shared memory. */
const COUNT = {
  /** When free space was last measured, ms since the epoch; NaN before the first measurement. */
  measuredAtMs: 0,
  /** The file system's free space when last measured. */
  measuredFree: 1,
  /** What the ledger's `written` stood at when free space was last measured. */
  writtenAtMeasure: 2,
  /** When the other servers' leases were last looked at, ms since the epoch (see {@link SpaceBudget.dropServersGone}). */
  serversCheckedAtMs: 3,
  /**
   * This server's claims against the quota, and on the disk, as it keeps
   * them: written into the ledger at every step, so that a ledger rebuilt
   * (found torn, or this server taken for gone by mistake) has them again.
   */
  ownReserved: 4,
  ownDisk: 5,
  /** The ledger's counts as any worker of this server last read them whole: what a torn one goes on from. */
  lastUsed: 6,
  lastWritten: 7,
  /** 1 if the last counts read had been measured. */
  lastMeasured: 8,
} as const;

/** Cells in {@link COUNT}. */
const COUNT_CELLS = 9;

/** The budget's shared state: its counts and the step lock they change under. */
export interface SharedSpace {
  /** The server's own cells, from {@link SpaceBudget.allocate}. */
  counts: SharedArrayBuffer;
  /** The root's step lock, this thread's handle on it. */
  lock: SharedLock;
  /** The id of the server counting (server_lease.ts): its claims are kept under it. */
  serverId: string;
}

/** What a server starting on a root knows of the servers before it (server_lease.ts). */
export interface ServersBefore {
  /** The servers whose lease had expired: their claims are dropped. */
  expired: string[];
  /** What the partials recovered from their temporaries cost: those count as used from now on. */
  recoveredBytes: number;
}

/** A clock every worker reads alike: ms since the epoch, from the monotonic clock. */
function sharedNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Tracks the root's use against its limits. */
export class SpaceBudget {
  readonly #root: string;
  readonly #limits: SpaceLimits;
  readonly #cells: Float64Array;
  readonly #lock: SharedLock;
  readonly #ledger: SpaceLedger;
  readonly #serverId: string;

  /** The server's own cells, before anything is measured: hand them to every worker. */
  static allocate(): SharedArrayBuffer {
    const cells = new SharedArrayBuffer(COUNT_CELLS * Float64Array.BYTES_PER_ELEMENT);
    new Float64Array(cells)[COUNT.measuredAtMs] = NaN;
    // The servers were looked at as the budget opened.
    new Float64Array(cells)[COUNT.serversCheckedAtMs] = Date.now();
    return cells;
  }

  /**
   * The budget of `root` under `limits`, counted in the ledger in its state
   * directory `stateDir`, as it is: a worker joining a server whose first
   * worker has opened the budget. See {@link SpaceBudget.open} for the first.
   */
  constructor(root: string, limits: SpaceLimits, stateDir: string, shared: SharedSpace) {
    this.#root = root;
    this.#limits = limits;
    this.#cells = new Float64Array(shared.counts);
    this.#lock = shared.lock;
    this.#serverId = shared.serverId;
    const cells = this.#cells;
    this.#ledger = SpaceLedger.open(stateDir, () => ({
      used: cells[COUNT.lastUsed]!,
      measured: cells[COUNT.lastMeasured] === 1,
      written: cells[COUNT.lastWritten]!,
      servers: {},
    }));
  }

  /**
   * Opens the root's budget for a server starting on it. When other servers
   * serve it already, their ledger holds the root's counts: the server
   * attaches to them, dropping the claims of the servers it takes over
   * (`before.expired`) and counting the partials recovered from them.
   * Otherwise it measures the root (only when there is a quota), skipping
   * the state directory but counting the partials held in it, and starts
   * the ledger over with that use, holding the ledger's lock meanwhile so
   * that a server starting at the same moment attaches to what it measured.
   * Entries it cannot reach (a path past the system's limit, a directory it
   * may not read) are skipped with a warning in the log: a root some local
   * program made unreadable in part is still served.
   */
  static async open(
    root: string,
    limits: SpaceLimits,
    dirs: StateDirs,
    shared: SharedSpace = {
      counts: SpaceBudget.allocate(),
      lock: new SharedLock(),
      serverId: "0".repeat(32),
    },
    before: ServersBefore = { expired: [], recoveredBytes: 0 },
  ): Promise<SpaceBudget> {
    const budget = new SpaceBudget(root, limits, dirs.stateDir, shared);
    const self = shared.serverId;
    await budget.#ledger.replace(async (found) => {
      const live = Object.keys(found?.servers ?? {}).filter((id) =>
        id !== self && !before.expired.includes(id) && leaseOrNull(root, id) !== null
      );
      const measuring = limits.quotaBytes !== null;
      let counts: LedgerCounts;
      if (found !== null && live.length > 0 && (found.measured || !measuring)) {
        counts = found;
        counts.used += before.recoveredBytes;
      } else {
        counts = {
          used: measuring ? await measureRoot(root, dirs) : 0,
          measured: measuring,
          written: found?.written ?? 0,
          servers: {},
        };
      }
      counts.servers = Object.fromEntries(
        live.map((id) => [id, found!.servers[id]!] as const),
      );
      claimsOf(counts, self);
      budget.#remember(counts);
      return counts;
    });
    return budget;
  }

  /** What the root's entries and held partials cost, as counted (0 at start without a quota). */
  get usedBytes(): number {
    return this.#read().used;
  }

  /** The root's counts now, remembered (see {@link #remember}). */
  #read(): LedgerCounts {
    return this.#lock.hold(() => {
      const counts = this.#ledger.read();
      this.#remember(counts);
      return counts;
    });
  }

  /** Keeps `counts`, just read or written, in this server's memory: a ledger found torn goes on from them. */
  #remember(counts: LedgerCounts): void {
    this.#cells[COUNT.lastUsed] = counts.used;
    this.#cells[COUNT.lastWritten] = counts.written;
    this.#cells[COUNT.lastMeasured] = counts.measured ? 1 : 0;
  }

  /**
   * Runs `step` on the root's counts and this server's claims among them,
   * holding the root's step lock and the ledger's lock, and records what it
   * changed.
   */
  #count(step: (counts: LedgerCounts, own: ServerClaims) => unknown): void {
    const cells = this.#cells;
    this.#lock.hold(() => {
      this.#ledger.update((counts) => {
        const own = claimsOf(counts, this.#serverId);
        own.reserved = cells[COUNT.ownReserved]!;
        own.disk = cells[COUNT.ownDisk]!;
        step(counts, own);
        cells[COUNT.ownReserved] = own.reserved;
        cells[COUNT.ownDisk] = own.disk;
        this.#remember(counts);
      });
    });
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
    this.#dropServersGoneIfDue();
    // Measured first: the checks below, in one step, then see every claim made meanwhile.
    if (needsFree) await this.#measureFreeIfStale();
    this.#count((counts, own) => {
      const freeBytes = needsFree ? this.#freeBytes(counts) : Infinity;
      this.#checkQuota(counts, what, cost, creditBytes);
      if (freeBytes - claimsOfAll(counts).disk - toWrite < reserveBytes) {
        throw new FtsError(
          "NO_SPACE",
          `${what} would leave less than the server's reserve of ${reserveBytes} free bytes`,
        );
      }
      // A resumed partial's bytes are this claim's from now on: it covers them.
      counts.used = Math.max(0, counts.used - heldCost);
      own.reserved += cost;
      own.disk += toWrite;
    });
    const replacingBytes = creditBytes - heldCost;
    let settled = false;
    // Called holding the locks.
    const settle = (own: ServerClaims) => {
      if (settled) return false;
      settled = true;
      own.reserved -= cost;
      own.disk -= toWrite;
      return true;
    };
    const commitBytes = (usedBytes: number, writtenBytes: number) =>
      this.#count((counts, own) => {
        if (!settle(own)) return;
        counts.used += usedBytes;
        counts.written += writtenBytes;
      });
    return {
      assertFits: (replacedBytes) => {
        // This claim's cost is among the reserved bytes already.
        if (settled || replacedBytes >= replacingBytes) return;
        this.#count((counts) => this.#checkQuota(counts, what, 0, replacedBytes));
      },
      commit: (replacedBytes) => commitBytes(cost - replacedBytes, toWrite),
      release: () => this.#count((_counts, own) => settle(own)),
      commitBytes,
    };
  }

  /** A broken upload's `bytes` (more than 0) are kept as a partial for a resume: they count as used. */
  held(bytes: number): void {
    this.#count((counts) => {
      counts.used += fileBytes(bytes);
      // Written under a reservation now released: the disk has them even if the measurement is older.
      counts.written += bytes;
    });
  }

  /**
   * Throws NO_SPACE unless `cost` more bytes fit the quota alongside what is
   * used and in flight on every server, less `creditBytes` that the claim
   * itself frees or already holds; `what` names the claim in the refusal.
   * Called holding the locks.
   */
  #checkQuota(counts: LedgerCounts, what: string, cost: number, creditBytes: number): void {
    const { quotaBytes } = this.#limits;
    if (quotaBytes === null) return;
    const inUse = counts.used + claimsOfAll(counts).reserved - creditBytes;
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
    const { free, used } = this.#lock.hold(() => {
      const counts = this.#read();
      const all = claimsOfAll(counts);
      return { free: this.#freeBytes(counts) - all.disk, used: counts.used + all.reserved };
    });
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
    const cells = this.#cells;
    const fresh = this.#lock.hold(() =>
      now - cells[COUNT.measuredAtMs]! < FREE_SPACE_MEASURE_INTERVAL_MS
    );
    if (fresh) return;
    // What was written before the measurement is in it (or counted twice, at worst).
    const written = this.#lock.hold(() => this.#read().written);
    const info = await statfs(this.#root);
    this.#lock.hold(() => {
      cells[COUNT.measuredAtMs] = now;
      cells[COUNT.measuredFree] = Number(info.bavail) * Number(info.bsize);
      cells[COUNT.writtenAtMeasure] = written;
    });
  }

  /**
   * Free bytes on the root's file system as last measured; what any server
   * published or kept as a partial since counts as used, what was removed
   * since does not count as freed. (Uploads in flight are reserved for all
   * they have still to write, counted twice at worst as they write it.)
   * Called holding the locks.
   */
  #freeBytes(counts: LedgerCounts): number {
    const writtenSince = Math.max(0, counts.written - this.#cells[COUNT.writtenAtMeasure]!);
    return this.#cells[COUNT.measuredFree]! - writtenSince;
  }

  /**
   * An entry, or a held partial, was removed: `bytes` is what it cost
   * ({@link entryBytes}). Only for an entry really gone: a rename onto
   * another name of the same file removes nothing.
   */
  freed(bytes: number): void {
    this.#count((counts) => counts.used = Math.max(0, counts.used - bytes));
  }

  /**
   * Drops the claims of the servers whose lease is gone (they stopped) or
   * expired at `nowMs` (server_lease.ts): what they had in flight no longer
   * holds room. Returns their ids.
   */
  dropServersGone(nowMs: number): string[] {
    const others = Object.keys(this.#read().servers).filter((id) => id !== this.#serverId);
    const gone = others.filter((id) => {
      const lease = leaseOrNull(this.#root, id);
      // A lease being rewritten may be missing for a moment; its lock file is not rewritten.
      if (lease === null) return !existsNow(lockPath(this.#root, id));
      return nowMs - lease.refreshedAt > LEASE_EXPIRY_MS;
    });
    if (gone.length > 0) {
      this.#count((counts) => {
        for (const id of gone) delete counts.servers[id];
      });
    }
    return gone;
  }

  /**
   * {@link dropServersGone}, unless any worker of this server did within
   * {@link LEASE_REFRESH_MS}: a lease changes no faster.
   */
  #dropServersGoneIfDue(): void {
    const now = Date.now();
    const cells = this.#cells;
    const due = this.#lock.hold(() => {
      if (now - cells[COUNT.serversCheckedAtMs]! < LEASE_REFRESH_MS) return false;
      cells[COUNT.serversCheckedAtMs] = now;
      return true;
    });
    if (due) this.dropServersGone(now);
  }

  /** Closes this thread's handle on the ledger. */
  close(): void {
    this.#ledger.close();
  }
}

/** The lease of server `id` on `root`, or null if it has none that can be read (server_lease.ts). */
function leaseOrNull(root: string, id: string): LeaseRecord | null {
  try {
    return readLease(root, id);
  } catch {
    return null;
  }
}

/** Whether anything is at `path` now. */
function existsNow(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * What `root`'s entries and the partials held in its state directory cost,
 * measured; entries it cannot reach count {@link ENTRY_BYTES} each, with a
 * warning in the log.
 */
async function measureRoot(root: string, dirs: StateDirs): Promise<number> {
  const skipped: string[] = [];
  const used = await treeBytes(root, dirs.stateDir, skipped) +
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
  return used;
}

/** Where the server keeps its state inside the root. */
export interface StateDirs {
  /** The state directory: not the root's files. */
  stateDir: string;
  /** Where partials held for resumes wait, inside the state directory: counted. */
  partialDir: string;
}
