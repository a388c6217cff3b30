/**
 * Partials: the data a broken resumable upload leaves for a resume, kept out
 * of sight in the state directory, one file per name and size. Their bytes
 * count against the quota until they are resumed or expire
 * ({@link PARTIAL_EXPIRY_MS}), so that a peer cannot park data beyond it.
 * Each step that moves a partial and counts it holds the root's step lock
 * (shared_lock.ts), so that workers taking, keeping and sweeping the same
 * partial at once count it once.
 *
 * Each partial's name is kept beside it (partial_names.ts), for listing. An
 * upload of at least {@link RECOVERABLE_UPLOAD_MIN_BYTES} records its name
 * as it begins, and its temporary file's name carries its key: if the server
 * stops without finishing it (a crash, `kill -9`), the next start makes what
 * it had written the partial of that name and size ({@link HeldPartials.recoverInFlight}).
 * Those bytes may never have been fsynced, and a power loss may tear them:
 * a resume is verified end to end anyway (the whole file's digest), and a
 * partial that does not match is discarded.
 *
 * @module
 */

import { basename, dirname, join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import { lstatOrNull } from "./_storage_common.ts";
import { entryBytes, fileBytes } from "./entry_cost.ts";
import {
  isPartialKey,
  nameHash,
  partialKey,
  type PartialName,
  PartialNames,
} from "./partial_names.ts";
import { SharedLock } from "./shared_lock.ts";
import type { SpaceBudget } from "./space.ts";

export { partialKey };

/**
 * The least declared size of a resumable upload that survives a restart of
 * the server: below it the upload writes no name file as it begins (one
 * write and a rename, which would cost a small upload a good part of its
 * time), and what a crash loses of it takes under a second to send again.
 */
export const RECOVERABLE_UPLOAD_MIN_BYTES = 4 * 1024 * 1024;

/**
 * A temporary file's name that carries the partial key of its upload, so
 * that a start after a crash knows whose data it is: `KEY.UUID`.
 */
const RECOVERABLE_TMP_NAME = /^([0-9a-f]{64}-[0-9]{1,16})\.[0-9a-f-]{36}$/;

/**
 * The partial key an upload's temporary file name carries (an upload that
 * is to survive a restart), or null for any other name.
 *
 * @example
 * ```ts
 * import { inFlightKey, partialKey } from "./partials.ts";
 * const key = partialKey(["big.bin"], 5 * 1024 * 1024);
 * console.assert(inFlightKey(`${key}.${crypto.randomUUID()}`) === key);
 * console.assert(inFlightKey(crypto.randomUUID()) === null);
 * ```
 */
export function inFlightKey(tmpName: string): string | null {
  const key = RECOVERABLE_TMP_NAME.exec(tmpName)?.[1];
  return key !== undefined && isPartialKey(key) ? key : null;
}

/** A partial as a listing reports it. */
export interface ListedPartial extends PartialName {
  /** Bytes held. */
  held: number;
  /** When they were last written, ms since the epoch. */
  mtime: number;
}

/** What {@link HeldPartials.recoverInFlight} made partials of. */
export interface Recovered {
  /** How many uploads in flight became partials. */
  count: number;
  /** What they cost against the quota, less what the partials they replaced did. */
  bytes: number;
}

/** What a drop removed. */
export interface DroppedPartials {
  /** How many partials were removed. */
  count: number;
  /** The bytes they held. */
  bytes: number;
}

/**
 * How old a name file without its partial must be for a start to remove it:
 * a minute is far longer than an upload takes from recording its name to
 * creating its temporary file (the same synchronous step), and stale names
 * cost a few bytes each until then.
 */
export const NAME_CLEANUP_AGE_MS = 60_000;

/**
 * How often a running server sweeps expired partials: an hour late is little against a day's expiry,
 * and one scan of the partial directory an hour costs nothing.
 */
export const PARTIAL_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The partials held in one directory, and what they count against the space
 * budget.
 *
 * @example
 * ```ts
 * import { HeldPartials } from "./partials.ts";
 * const dir = Deno.makeTempDirSync();
 * const partials = new HeldPartials(dir);
 * Deno.writeFileSync(partials.pathFor(["a.bin"], 100), new Uint8Array(40));
 * console.assert(partials.heldBytes(["a.bin"], 100) === 40);
 * console.assert(partials.heldBytes(["a.bin"], 99) === 0); // Another size: another upload.
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class HeldPartials {
  /** The directory the partials are in. */
  readonly dir: string;
  /** The names of the partials, for listing. */
  readonly names: PartialNames;
  /**
   * The budget their bytes count against; null until it is open (the sweep at
   * start runs before the budget has counted anything).
   */
  budget: SpaceBudget | null = null;
  /** When expired partials were last swept, ms since the epoch. */
  #lastSweepMs = -Infinity;
  readonly #lock: SharedLock;

  /**
   * The partials in `dir`, moved and counted under `lock` (the root's step
   * lock; this thread's own if not given), their names in `namesDir`
   * (`partial-names` beside `dir` if not given).
   */
  constructor(
    dir: string,
    lock: SharedLock = new SharedLock(),
    namesDir = join(dirname(dir), "partial-names"),
  ) {
    this.dir = dir;
    this.#lock = lock;
    this.names = new PartialNames(namesDir);
  }

  /** Where the partial of an upload of `segments` with `size` bytes is kept. */
  pathFor(segments: string[], size: number): string {
    return join(this.dir, partialKey(segments, size));
  }

  /**
   * Bytes kept from a broken upload of `segments` with `size` bytes, which an
   * upload with `resume` would continue from; 0 when there are none or they expired.
   */
  heldBytes(segments: string[], size: number): number {
    const info = lstatOrNull(this.pathFor(segments, size));
    const fresh = info?.isFile && Date.now() - (info.mtime?.getTime() ?? 0) <= PARTIAL_EXPIRY_MS;
    return fresh && info.size <= size ? info.size : 0;
  }

  /**
   * Moves the partial at `partialPath` to `tmpPath` and returns its size: 0 if
   * there is none, or if it is empty or larger than the upload of `size`
   * bytes (then it is removed). A rename, so that two resumers never share it.
   */
  take(partialPath: string, tmpPath: string, size: number): number {
    return this.#lock.hold(() => {
      try {
        Deno.renameSync(partialPath, tmpPath);
      } catch {
        return 0;
      }
      const held = Deno.lstatSync(tmpPath).size;
      if (held > 0 && held <= size) return held;
      Deno.removeSync(tmpPath);
      this.budget?.freed(fileBytes(held));
      return 0;
    });
  }

  /**
   * Keeps the `bytes` at `tmpPath` as the partial at `partialPath`, for a
   * resume; a partial already there (an earlier break of the same name and
   * size) is replaced. From then they count as held. With `name`, the
   * upload's name is kept beside it, for listing.
   */
  keep(tmpPath: string, partialPath: string, bytes: number, name?: PartialName): void {
    if (name) this.names.record(name.segments, name.size);
    this.#lock.hold(() => {
      const replaced = lstatOrNull(partialPath);
      try {
        Deno.renameSync(tmpPath, partialPath);
      } catch {
        removeTemporary(tmpPath);
        return;
      }
      this.budget?.held(bytes);
      if (replaced) this.budget?.freed(entryBytes(replaced));
    });
  }

  /**
   * An upload broke off: {@link keep} what `tmpPath` holds. An upload cut off
   * before its first byte keeps nothing: an empty partial resumes nothing,
   * and would cost `ENTRY_BYTES` for it.
   */
  keepInterrupted(tmpPath: string, partialPath: string, name?: PartialName): void {
    const bytes = lstatOrNull(tmpPath)?.size;
    if (bytes === undefined) return;
    if (bytes > 0) return this.keep(tmpPath, partialPath, bytes, name);
    removeTemporary(tmpPath);
  }

  /** Removes partials older than {@link PARTIAL_EXPIRY_MS} at `nowMs`. */
  async removeExpired(nowMs: number): Promise<void> {
    for await (const entry of Deno.readDir(this.dir)) {
      const path = join(this.dir, entry.name);
      // What is removed is what was measured: a partial kept over it meanwhile is fresh.
      this.#lock.hold(() => {
        let info: Deno.FileInfo;
        try {
          info = Deno.lstatSync(path);
          if (nowMs - (info.mtime?.getTime() ?? 0) <= PARTIAL_EXPIRY_MS) return;
          Deno.removeSync(path);
        } catch {
          return; // Gone meanwhile, or not ours to remove.
        }
        // Before the budget exists (at open), it has not counted them yet.
        this.budget?.freed(entryBytes(info));
        this.names.remove(entry.name);
      });
    }
  }

  /**
   * The temporary file's name for an upload of `name`: a fresh one, which
   * for an upload that is to survive a restart (see {@link recordInFlight})
   * carries its partial key.
   */
  temporaryName(name: PartialName, recoverable: boolean): string {
    const fresh = crypto.randomUUID();
    return recoverable ? `${partialKey(name.segments, name.size)}.${fresh}` : fresh;
  }

  /**
   * An upload of `name` that is to survive a restart begins: its name is
   * recorded (once per name and size) before its first byte is written.
   */
  recordInFlight(name: PartialName): void {
    this.names.record(name.segments, name.size);
  }

  /**
   * An upload that recorded its name ended (published or discarded): the
   * name file goes too, unless a partial of the same name and size is held.
   */
  releaseName(partialPath: string): void {
    this.#lock.hold(() => {
      if (lstatOrNull(partialPath) === null) this.names.remove(basename(partialPath));
    });
  }

  /**
   * At start, before the temporary directory `tmpDir` of a server gone
   * before is removed: each upload that was in flight in it when that server
   * stopped and that recorded its name becomes the partial of its name and
   * size (unless one as large is held already), for a resume. Returns how
   * how many did and what they cost against the quota, less the partials
   * they replaced ({@link entryBytes}). Another server taking over the same
   * directory at once may move a file first: it is then its. The budget is
   * opened after this, and counts them.
   */
  async recoverInFlight(tmpDir: string): Promise<Recovered> {
    const recovered = { count: 0, bytes: 0 };
    for await (const entry of Deno.readDir(tmpDir)) {
      const key = inFlightKey(entry.name);
      if (key === null || !entry.isFile) continue;
      const name = this.names.read(key);
      const tmpPath = join(tmpDir, entry.name);
      const info = lstatOrNull(tmpPath);
      if (name === null || !info?.isFile || info.size === 0 || info.size > name.size) continue;
      const partialPath = join(this.dir, key);
      const replaced = lstatOrNull(partialPath);
      if ((replaced?.size ?? 0) >= info.size) continue;
      try {
        Deno.renameSync(tmpPath, partialPath);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) continue;
        throw err;
      }
      recovered.count++;
      recovered.bytes += fileBytes(info.size) - (replaced ? entryBytes(replaced) : 0);
    }
    return recovered;
  }

  /**
   * At start, once partials are recovered and swept: removes name files
   * whose partial is gone, and temporaries a crash left among them. Kept are
   * the names of `inFlight` keys (uploads in flight on the servers serving
   * the root) and those written or recorded again within
   * {@link NAME_CLEANUP_AGE_MS}: an upload another server begins meanwhile
   * records its name before its temporary file appears.
   */
  async removeStaleNames(inFlight: Set<string> = new Set(), nowMs = Date.now()): Promise<void> {
    const held = new Set<string>(inFlight);
    for await (const entry of Deno.readDir(this.dir)) held.add(entry.name);
    await this.names.removeAllBut(held, nowMs - NAME_CLEANUP_AGE_MS);
  }

  /**
   * The partials held and not expired at `nowMs` whose name is known, sorted
   * by name, then size. (A partial kept by a server from before names were
   * kept is not listed; it can still be resumed, or dropped by name.)
   */
  async list(nowMs: number): Promise<ListedPartial[]> {
    const listed: ListedPartial[] = [];
    for await (const entry of Deno.readDir(this.dir)) {
      if (!isPartialKey(entry.name)) continue;
      const info = lstatOrNull(join(this.dir, entry.name));
      const mtime = info?.mtime?.getTime() ?? 0;
      if (!info?.isFile || info.size === 0 || nowMs - mtime > PARTIAL_EXPIRY_MS) continue;
      const name = this.names.read(entry.name);
      if (name === null || info.size > name.size) continue;
      listed.push({ ...name, held: info.size, mtime });
    }
    const nameOf = (partial: ListedPartial) => partial.segments.join("/");
    return listed.sort((a, b) =>
      nameOf(a) < nameOf(b) ? -1 : nameOf(a) > nameOf(b) ? 1 : a.size - b.size
    );
  }

  /**
   * Removes the partials held for an upload of `segments` with `size`
   * bytes, or of any size when `size` is null, and frees what they cost.
   */
  async drop(segments: string[], size: number | null): Promise<DroppedPartials> {
    const keys: string[] = [];
    if (size !== null) {
      keys.push(partialKey(segments, size));
    } else {
      const prefix = `${nameHash(segments)}-`;
      for await (const entry of Deno.readDir(this.dir)) {
        if (entry.name.startsWith(prefix) && isPartialKey(entry.name)) keys.push(entry.name);
      }
    }
    const dropped: DroppedPartials = { count: 0, bytes: 0 };
    for (const key of keys) {
      const path = join(this.dir, key);
      this.#lock.hold(() => {
        const info = lstatOrNull(path);
        if (!info?.isFile) return;
        Deno.removeSync(path);
        this.budget?.freed(entryBytes(info));
        this.names.remove(key);
        dropped.count++;
        dropped.bytes += info.size;
      });
    }
    return dropped;
  }

  /**
   * Whether a sweep of expired partials is due at `nowMs`: none began in the
   * {@link PARTIAL_SWEEP_INTERVAL_MS} before it. A sweep due counts as begun
   * (the caller then runs {@link removeExpired}), so that uploads beginning
   * meanwhile do not start another.
   */
  beginSweep(nowMs: number): boolean {
    if (nowMs - this.#lastSweepMs < PARTIAL_SWEEP_INTERVAL_MS) return false;
    this.#lastSweepMs = nowMs;
    return true;
  }
}

/** Removes a temporary file, best effort. */
function removeTemporary(tmpPath: string): void {
  try {
    Deno.removeSync(tmpPath);
  } catch {
    // Gone already; the next start clears the temporary directory anyway.
  }
}
