/**
 * Partials: the data a broken resumable upload leaves for a resume, kept out
 * of sight in the state directory, one file per name and size. Their bytes
 * count against the quota until they are resumed or expire
 * ({@link PARTIAL_EXPIRY_MS}), so that a peer cannot park data beyond it.
 * Each step that moves a partial and counts it holds the root's step lock
 * (shared_lock.ts), so that workers taking, keeping and sweeping the same
 * partial at once count it once.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import { lstatOrNull } from "./_storage_common.ts";
import { entryBytes, fileBytes } from "./entry_cost.ts";
import { SharedLock } from "./shared_lock.ts";
import type { SpaceBudget } from "./space.ts";

/**
 * How often a running server sweeps expired partials: an hour late is little against a day's expiry,
 * and one scan of the partial directory an hour costs nothing.
 */
export const PARTIAL_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

/**
 * The partial file's name for an upload: one per name and size.
 *
 * @example
 * ```ts
 * import { partialKey } from "./partials.ts";
 * console.assert(partialKey(["a", "b.txt"], 10) !== partialKey(["a", "b.txt"], 11));
 * console.assert(partialKey(["a", "b.txt"], 10).endsWith("-10"));
 * ```
 */
export function partialKey(segments: string[], size: number): string {
  return `${createHash("sha256").update(segments.join("/")).digest("hex")}-${size}`;
}

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
  /**
   * The budget their bytes count against; null until it is open (the sweep at
   * start runs before the budget has counted anything).
   */
  budget: SpaceBudget | null = null;
  /** When expired partials were last swept, ms since the epoch. */
  #lastSweepMs = -Infinity;
  readonly #lock: SharedLock;

  /** The partials in `dir`, moved and counted under `lock` (the root's step lock; this thread's own if not given). */
  constructor(dir: string, lock: SharedLock = new SharedLock()) {
    this.dir = dir;
    this.#lock = lock;
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
   * size) is replaced. From then they count as held.
   */
  keep(tmpPath: string, partialPath: string, bytes: number): void {
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
  keepInterrupted(tmpPath: string, partialPath: string): void {
    const bytes = lstatOrNull(tmpPath)?.size;
    if (bytes === undefined) return;
    if (bytes > 0) return this.keep(tmpPath, partialPath, bytes);
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
      });
    }
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
