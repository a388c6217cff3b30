/**
 * A server's lease on the root it serves: several servers, on one host or on
 * many, may serve one root at once (a shared file system), each keeping its
 * temporaries in a directory of its own (`.fts/tmp/ID/`) and saying that it
 * runs with a small file, `.fts/servers/ID`, that it rewrites every
 * {@link LEASE_REFRESH_MS} while it runs: its host, pid, start and refresh
 * times. A server that starts takes over (storage.ts) the temporaries of the
 * servers whose lease has expired, and of none other: it was not refreshed
 * for {@link LEASE_EXPIRY_MS}, or it names this host and its server's
 * process is gone, seen at once: each server holds its `.fts/servers/ID.lock`
 * locked (flock) while it runs, and the system releases that lock when the
 * process ends, however it ends.
 *
 * The lease is the main thread's: the sandboxed workers may not ask the
 * host's name.
 *
 * @module
 */

import { join } from "node:path";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import { jsonObjectOrNull } from "./_storage_common.ts";
import { SpaceLedger } from "./space_ledger.ts";

/**
 * How often a running server rewrites its lease: one small write and a
 * rename every 10 s costs nothing, and leaves room for several missed
 * refreshes within {@link LEASE_EXPIRY_MS}.
 */
export const LEASE_REFRESH_MS = 10_000;

/**
 * How long after its last refresh a lease counts as expired: six refreshes
 * missed, so a server that a loaded host or a slow file system delays for
 * seconds keeps its lease, and clocks that differ by less than this much do
 * not end a live one. A server killed on another host has its uploads in
 * flight taken over this long after it died.
 */
export const LEASE_EXPIRY_MS = 60_000;

/** The directory of the leases, one file per server, in the state directory. */
export const SERVERS_DIR = join(STATE_DIR_NAME, "servers");

/** The directory of the servers' temporary directories, one per server. */
export const SERVERS_TMP_DIR = join(STATE_DIR_NAME, "tmp");

/** The largest lease file read back: its fields take a few hundred bytes. */
const MAX_LEASE_BYTES = 4096;

/** What a lease file holds. */
export interface LeaseRecord {
  /** The server's id: names its lease and its temporary directory. */
  id: string;
  /** The host's name, for whoever reads the lease. */
  host: string;
  /** The server's process id on its host, for whoever reads the lease. */
  pid: number;
  /** When the server started, ms since the epoch. */
  startedAt: number;
  /** When the lease was last written, ms since the epoch, by the server's clock. */
  refreshedAt: number;
}

/**
 * Whether `text` has the form of a server id (32 lowercase hex digits).
 *
 * @example
 * ```ts
 * import { isServerId, newServerId } from "./server_lease.ts";
 * console.assert(isServerId(newServerId()));
 * console.assert(!isServerId("../x"));
 * ```
 */
export function isServerId(text: string): boolean {
  return /^[0-9a-f]{32}$/.test(text);
}

/** A fresh server id: random, so that no two servers of any host take one. */
export function newServerId(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/** This host's name, as a lease records it; "unknown" where the system will not tell. */
export function thisHost(): string {
  try {
    return Deno.hostname();
  } catch {
    return "unknown";
  }
}

/**
 * Whether the lease `record` has expired at `nowMs` for a server on `host`:
 * not refreshed for {@link LEASE_EXPIRY_MS}, or written on this host by a
 * server whose process is gone (`processGone`, asked only then: whether its
 * lock could be taken).
 *
 * @example
 * ```ts
 * import { leaseExpired, LEASE_EXPIRY_MS } from "./server_lease.ts";
 * const lease = { id: "0".repeat(32), host: "a", pid: 1, startedAt: 0, refreshedAt: 1000 };
 * const running = () => false;
 * console.assert(!leaseExpired(lease, 1000 + LEASE_EXPIRY_MS, "a", running));
 * console.assert(leaseExpired(lease, 1001 + LEASE_EXPIRY_MS, "a", running));
 * console.assert(leaseExpired(lease, 1000, "a", () => true));
 * console.assert(!leaseExpired(lease, 1000, "b", () => true)); // Another host's: its lock may be local.
 * ```
 */
export function leaseExpired(
  record: LeaseRecord,
  nowMs: number,
  host: string,
  processGone: () => boolean,
): boolean {
  if (nowMs - record.refreshedAt > LEASE_EXPIRY_MS) return true;
  return record.host === host && processGone();
}

/**
 * Whether the server of lease `id` in `root` is gone: its lock file can be
 * locked now (released by the system when its process ended). No lock file
 * (a lease not written by a server of this kind) says nothing: false.
 */
function lockReleased(root: string, id: string): boolean {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(lockPath(root, id), { write: true });
  } catch {
    return false;
  }
  try {
    return file.tryLockSync(true);
  } finally {
    file.close();
  }
}

/** The lock file a running server holds locked, beside its lease. */
export function lockPath(root: string, id: string): string {
  return join(root, SERVERS_DIR, `${id}.lock`);
}

/**
 * The lease file of server `id` in `root`, read back: null when there is
 * none, or it does not hold a lease of that id. A file that cannot be read
 * as a lease is data from disk, not trusted: see {@link ServerLease.take}.
 */
export function readLease(root: string, id: string): LeaseRecord | null {
  let text: string;
  try {
    const path = join(root, SERVERS_DIR, id);
    const info = Deno.lstatSync(path);
    if (!info.isFile || info.size > MAX_LEASE_BYTES) return null;
    text = Deno.readTextFileSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
  return parseLease(text, id);
}

function parseLease(text: string, id: string): LeaseRecord | null {
  const record = jsonObjectOrNull(text);
  if (
    record === null || record.id !== id || typeof record.host !== "string" ||
    !Number.isSafeInteger(record.pid) ||
    !Number.isSafeInteger(record.startedAt) || !Number.isSafeInteger(record.refreshedAt)
  ) {
    return null;
  }
  return record as unknown as LeaseRecord;
}

/**
 * This server's lease on one root, from {@link ServerLease.take} until
 * {@link ServerLease.end}.
 */
export class ServerLease {
  /** The served root. */
  readonly root: string;
  /** This server's id. */
  readonly id: string;
  /**
   * The servers whose lease had expired when this one started: their
   * temporaries are this server's to take over (storage.ts), then their leases.
   */
  readonly expired: string[];
  readonly #record: LeaseRecord;
  /** This server's lock file, held locked while it runs. */
  readonly #lock: Deno.FsFile;
  #timer: ReturnType<typeof setInterval> | null = null;

  private constructor(root: string, record: LeaseRecord, lock: Deno.FsFile) {
    this.root = root;
    this.id = record.id;
    this.#record = record;
    this.#lock = lock;
    this.expired = [];
  }

  /** Where this server's temporaries go. */
  get tmpDir(): string {
    return join(this.root, SERVERS_TMP_DIR, this.id);
  }

  /**
   * Writes a new server's lease on `root` (a resolved absolute path) and
   * finds the leases that have expired. A lease file that is not a lease
   * (torn, or not fts's) counts as expired once its file is older than
   * {@link LEASE_EXPIRY_MS}.
   */
  static async take(root: string, nowMs = Date.now()): Promise<ServerLease> {
    const host = thisHost();
    const record: LeaseRecord = {
      id: newServerId(),
      host,
      pid: Deno.pid,
      startedAt: nowMs,
      refreshedAt: nowMs,
    };
    const dir = join(root, SERVERS_DIR);
    await Deno.mkdir(dir, { recursive: true });
    const lock = await Deno.open(lockPath(root, record.id), { write: true, createNew: true });
    if (!await lock.tryLock(true)) {
      lock.close();
      throw new Error(`could not lock this server's lock file in ${dir}`);
    }
    const lease = new ServerLease(root, record, lock);
    await lease.#write();
    for await (const entry of Deno.readDir(dir)) {
      if (!isServerId(entry.name) || entry.name === record.id) continue;
      const other = readLease(root, entry.name);
      const expired = other === null
        ? nowMs - mtimeOf(join(dir, entry.name)) > LEASE_EXPIRY_MS
        : leaseExpired(other, nowMs, host, () => lockReleased(root, entry.name));
      if (expired) lease.expired.push(entry.name);
    }
    return lease;
  }

  /**
   * Rewrites the lease every {@link LEASE_REFRESH_MS} until {@link end};
   * `warn` hears of a refresh that failed, or of a lease that another server
   * had taken for expired (its temporaries may be gone: uploads in flight
   * then fail, and nothing partial is ever published).
   */
  keepRefreshed(warn: (message: string) => void): void {
    const timer = setInterval(async () => {
      try {
        if (readLease(this.root, this.id) === null) {
          warn(`this server's lease on ${this.root} was taken for expired by another server`);
          await Deno.mkdir(this.tmpDir, { recursive: true });
        }
        this.#record.refreshedAt = Date.now();
        await this.#write();
      } catch (err) {
        warn(`could not refresh this server's lease: ${(err as Error).message}`);
      }
    }, LEASE_REFRESH_MS);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /**
   * The server has stopped: its temporary directory goes, and then its
   * lease, if nothing is left in the directory. Otherwise (the server was
   * stopped at once, uploads in flight) both stay, for the next server that
   * starts to take over: on this host it sees at once that this one is gone.
   */
  async end(): Promise<void> {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    try {
      await Deno.remove(this.tmpDir);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) return this.#lock.close();
    }
    this.#dropClaims();
    await Deno.remove(join(this.root, SERVERS_DIR, this.id)).catch(() => {});
    await Deno.remove(lockPath(this.root, this.id)).catch(() => {});
    this.#lock.close();
  }

  /** Takes this server off the root's space ledger (space_ledger.ts): nothing of it is in flight. */
  #dropClaims(): void {
    try {
      const ledger = SpaceLedger.open(join(this.root, STATE_DIR_NAME));
      try {
        ledger.update((counts) => void delete counts.servers[this.id]);
      } finally {
        ledger.close();
      }
    } catch {
      // The others drop it once they find its lease gone.
    }
  }

  /** Writes the lease: to a fresh temporary, renamed into place, so that a reader sees it whole. */
  async #write(): Promise<void> {
    const path = join(this.root, SERVERS_DIR, this.id);
    const tmpPath = `${path}.${crypto.randomUUID()}.tmp`;
    await Deno.writeTextFile(tmpPath, JSON.stringify(this.#record) + "\n", {
      createNew: true,
      mode: 0o644,
    });
    try {
      await Deno.rename(tmpPath, path);
    } catch (err) {
      await Deno.remove(tmpPath).catch(() => {});
      throw err;
    }
  }
}

/** A file's modification time, ms since the epoch; 0 if it has none or is gone. */
function mtimeOf(path: string): number {
  try {
    return Deno.lstatSync(path).mtime?.getTime() ?? 0;
  } catch {
    return 0;
  }
}
