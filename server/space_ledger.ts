/**
 * The space budget's counts for the root as a whole, in a file beside it
 * (`.fts/space`), so that every server serving the root (several, on one
 * host or on many sharing a file system) claims against the same counts:
 * what the root's entries and held partials cost, what was written since,
 * and each server's claims in flight. Every change is a read, a change and a
 * write of the whole file under its `flock`, a few system calls: a step
 * that counts (space.ts) holds it for no longer than that, and so the quota
 * and the reserve hold across servers as exactly as across the sessions of
 * one.
 *
 * The file is data from disk, not trusted: one that cannot be read as a
 * ledger (torn by a crash, not fts's) counts as no ledger, and the root is
 * measured again. A server's claims are dropped when it ends cleanly, when
 * a server starting takes over what it left, and when its lease is found
 * expired (server_lease.ts): the claims of a server killed at once hold until
 * then, refusing what might not fit rather than letting it through.
 *
 * @module
 */

import { statfsSync } from "node:fs";
import { join } from "node:path";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import { jsonObjectOrNull } from "./_storage_common.ts";
import { logEvent } from "./log.ts";
import { openCreated } from "./open_created.ts";
import { isServerId } from "./server_lease.ts";

/** The ledger's file, in the root. */
export const SPACE_LEDGER_FILE = join(STATE_DIR_NAME, "space");

/**
 * The largest ledger read: each server's entry takes some 80 bytes, so this
 * holds the claims of hundreds of servers at once.
 */
export const MAX_LEDGER_BYTES = 64 * 1024;

/** One server's claims in flight. */
export interface ServerClaims {
  /** Bytes claimed against the quota by its uploads and directories in flight: their whole cost. */
  reserved: number;
  /** Bytes its uploads in flight have still to write to the disk. */
  disk: number;
}

/** What the ledger holds. */
export interface LedgerCounts {
  /**
   * What the root's entries and held partials cost (entry_cost.ts), if
   * {@link LedgerCounts.measured}; otherwise only what changed since the
   * servers began, which means nothing.
   */
  used: number;
  /** Whether `used` started from a measure of the root: a server with a quota needs one. */
  measured: boolean;
  /**
   * Bytes written by every server's publishes and kept partials, in all: a
   * measurement of free space taken when this stood at `w` is short by what
   * it grew since.
   */
  written: number;
  /** Each attached server's claims, by server id. */
  servers: Record<string, ServerClaims>;
}

/** Counts of a root nobody has measured, with no server attached. */
export function emptyCounts(): LedgerCounts {
  return { used: 0, measured: false, written: 0, servers: {} };
}

/** The sum of every server's claims. */
export function claimsOfAll(counts: LedgerCounts): ServerClaims {
  const all = { reserved: 0, disk: 0 };
  for (const claims of Object.values(counts.servers)) {
    all.reserved += claims.reserved;
    all.disk += claims.disk;
  }
  return all;
}

/** A server's claims in `counts`, made (empty) if it has none: the server is attached from then on. */
export function claimsOf(counts: LedgerCounts, id: string): ServerClaims {
  counts.servers[id] ??= { reserved: 0, disk: 0 };
  return counts.servers[id];
}

/**
 * Linux's magic numbers of the file systems one kernel keeps whole in its own
 * cache (ext2/3/4, xfs, btrfs, tmpfs, ramfs, zfs, f2fs, overlayfs): a write
 * there is what the next read through any handle sees. On any other (FUSE
 * such as GlusterFS, NFS, CephFS, or unknown) each change is synced before
 * the lock is let go: GlusterFS's client held a write back past the unlock,
 * and the other mount then read the counts before it (302 of 600 steps of
 * two processes counted, 2026-12-03; with the sync, 1000 of 1000, 3 runs).
 */
const ONE_KERNEL_FILE_SYSTEMS = new Set([
  0xef53,
  0x58465342,
  0x9123683e,
  0x01021994,
  0x858458f6,
  0x2fc12fc1,
  0xf2f52010,
  0x794c7630,
]);

/** Whether changes to a file in `dir` must be synced for another host's client to read them. */
function syncsEachChange(dir: string): boolean {
  if (Deno.build.os !== "linux") return true;
  try {
    return !ONE_KERNEL_FILE_SYSTEMS.has(Number(statfsSync(dir).type));
  } catch {
    return true;
  }
}

/** What pads a shorter text to the length of the one it overwrites. */
const SPACE = 0x20;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One thread's handle on a root's ledger. */
export class SpaceLedger {
  readonly #file: Deno.FsFile;
  /** The length of the last text written or read: a shorter one is padded to it (see {@link #write}). */
  #length = 0;
  readonly #buffer = new Uint8Array(MAX_LEDGER_BYTES);
  /**
   * The counts to go on from when the file is found unreadable while the
   * servers run (only a crash amid a write, or someone else writing it,
   * tears it): the freshest its owner knows, not nothing.
   */
  readonly #fallback: () => LedgerCounts;
  /** The ledger was found unreadable, and said so. */
  #warned = false;

  /** Each change is synced before the lock goes (see {@link ONE_KERNEL_FILE_SYSTEMS}). */
  readonly #syncs: boolean;

  private constructor(file: Deno.FsFile, fallback: () => LedgerCounts, syncs: boolean) {
    this.#file = file;
    this.#fallback = fallback;
    this.#syncs = syncs;
  }

  /**
   * Opens (making it if need be) the ledger of the root whose state
   * directory is `stateDir`; a file found unreadable after the first read
   * counts as `fallback()` (empty counts if not given), with a warning in the
   * log, once.
   */
  static open(stateDir: string, fallback: () => LedgerCounts = emptyCounts): SpaceLedger {
    const path = join(stateDir, "space");
    const file = openCreated(path, { read: true });
    return new SpaceLedger(file, fallback, syncsEachChange(stateDir));
  }

  /**
   * Runs `step` on the counts under the ledger's lock and writes them back
   * if it returns without throwing; returns what it returns. Blocks this
   * thread while another holds the lock: steps are a few system calls long.
   */
  update<T>(step: (counts: LedgerCounts) => T): T {
    this.#file.lockSync(true);
    try {
      const counts = this.#read() ?? this.#damaged();
      const result = step(counts);
      this.#write(counts);
      return result;
    } finally {
      this.#file.unlockSync();
    }
  }

  /** The counts as they are now (no ledger: empty ones). */
  read(): LedgerCounts {
    this.#file.lockSync(false);
    try {
      return this.#read() ?? this.#damaged();
    } finally {
      this.#file.unlockSync();
    }
  }

  /**
   * Runs `step` on the counts holding the lock for as long as it takes (a
   * measure of the root at start: the other servers' steps wait for it),
   * without blocking this thread meanwhile; writes back what it returns.
   */
  async replace(step: (counts: LedgerCounts | null) => Promise<LedgerCounts>): Promise<void> {
    await this.#file.lock(true);
    try {
      this.#write(await step(this.#read()));
    } finally {
      await this.#file.unlock();
    }
  }

  /** Closes this handle. */
  close(): void {
    this.#file.close();
  }

  /** The counts to go on from, the file being unreadable; warns of it once. */
  #damaged(): LedgerCounts {
    if (this.#length > 0 && !this.#warned) {
      this.#warned = true;
      logEvent({
        peer: "-",
        op: "serve",
        result: "warning",
        detail:
          `the root's space ledger (${SPACE_LEDGER_FILE}) could not be read; counting goes on ` +
          `from what this server last counted (a server starting alone on the root measures it again)`,
      });
    }
    return this.#fallback();
  }

  /** The counts in the file, or null if there are none or they cannot be read as a ledger. Holding the lock. */
  #read(): LedgerCounts | null {
    this.#file.seekSync(0, Deno.SeekMode.Start);
    let length = 0;
    while (length < this.#buffer.length) {
      const n = this.#file.readSync(this.#buffer.subarray(length));
      if (n === null) break;
      length += n;
    }
    this.#length = length;
    return parseCounts(decoder.decode(this.#buffer.subarray(0, length)));
  }

  /**
   * Writes `counts` over the file in one write, padded with spaces to the
   * length of what was there: nothing is truncated first, so that a crash
   * midway leaves the old text or a torn one, never an empty file taken for
   * a fresh ledger. Holding the lock.
   */
  #write(counts: LedgerCounts): void {
    const text = encoder.encode(JSON.stringify(counts));
    if (text.length > MAX_LEDGER_BYTES) {
      throw new Error(`the space ledger would pass ${MAX_LEDGER_BYTES} bytes`);
    }
    const bytes = new Uint8Array(Math.max(text.length, this.#length)).fill(SPACE);
    bytes.set(text);
    this.#file.seekSync(0, Deno.SeekMode.Start);
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
    if (this.#syncs) this.#file.syncDataSync();
    this.#length = bytes.length;
  }
}

/**
 * The counts `text` holds, or null if it is not a ledger: built afresh from
 * the fields checked, so that nothing else in the file is kept. Servers
 * under names that are not server ids (server_lease.ts) are left out: their
 * names are never used as paths.
 */
function parseCounts(text: string): LedgerCounts | null {
  const value = jsonObjectOrNull(text);
  if (value === null) return null;
  const { used, measured, written, servers } = value;
  if (!isCount(used) || typeof measured !== "boolean" || !isCount(written)) return null;
  if (typeof servers !== "object" || servers === null || Array.isArray(servers)) return null;
  const counts: LedgerCounts = { used, measured, written, servers: {} };
  for (const [id, claims] of Object.entries(servers)) {
    if (!isServerId(id) || typeof claims !== "object" || claims === null) continue;
    const { reserved, disk } = claims as Record<string, unknown>;
    if (isCount(reserved) && isCount(disk)) counts.servers[id] = { reserved, disk };
  }
  return counts;
}

/** Whether `value` is a count of bytes. */
function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0;
}
