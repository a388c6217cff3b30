/**
 * The plan of a `sync`: what makes the target tree equal to the source tree,
 * worked out from two snapshots before any byte moves. A file is unchanged
 * when its size and its modification time (to the second, as rsync compares
 * them) match; otherwise it is created or updated, unless the target's copy
 * is newer (then it is a conflict, left alone unless forced), or the one side
 * has a directory where the other has a file (a conflict always). With
 * `delete`, what the target has and the source does not is removed, files
 * before their directories.
 *
 * @module
 */

/** One file of a tree snapshot. */
export interface TreeFile {
  /** Size in bytes. */
  size: number;
  /** Modification time, ms since the epoch. */
  mtime: number;
  /** Its content digest, when compared by checksum (`-c`): known only for files worth comparing. */
  digest?: string;
}

/** A tree as one side holds it: paths relative to its top, `/`-separated. */
export interface TreeSnapshot {
  /** Every file. */
  files: Map<string, TreeFile>;
  /** Every directory below the top. */
  dirs: Set<string>;
}

/** One file to move. */
export interface SyncFile {
  /** Its path relative to both tops. */
  path: string;
  /** Its size in the source. */
  size: number;
}

/** Why a path is left as it is. */
export type ConflictReason =
  | "newer on the target"
  | "a directory on the target"
  | "a file on the target"
  | typeof CHANGED_SINCE_PLAN;

/**
 * Why a file the plan would have moved was left as it is: someone else
 * changed, replaced or made it on the target after the plan was made (the
 * transfer checked, as it published, that the target was still what the plan saw).
 */
export const CHANGED_SINCE_PLAN = "changed on the target since the plan";

/** A path the plan does not touch, and why. */
export interface SyncConflict {
  /** Its path relative to both tops. */
  path: string;
  /** What stands in the way. */
  reason: ConflictReason;
}

/** What a sync will do. */
export interface SyncPlan {
  /** Directories to make in the target, parents first. */
  directories: string[];
  /** Files the target lacks. */
  create: SyncFile[];
  /** Files that differ. */
  update: SyncFile[];
  /** Target files to remove (with `delete`), then its directories, deepest first. */
  remove: { path: string; dir: boolean }[];
  /** Files already equal. */
  unchanged: SyncFile[];
  /** Paths left alone. */
  conflicts: SyncConflict[];
}

/** How {@link planSync} decides. */
export interface SyncPlanOptions {
  /**
   * Remove what the target has and the source does not.
   * @default {false}
   */
  delete?: boolean;
  /**
   * Replace a target file even when it is newer than the source's.
   * @default {false}
   */
  force?: boolean;
  /**
   * Compare files by content digest ({@link TreeFile.digest}) instead of
   * modification time: equal size and equal digest is unchanged.
   * @default {false}
   */
  byDigest?: boolean;
}

/** Modification times are compared to this, as rsync does: many file systems keep no finer. */
export const MTIME_RESOLUTION_MS = 1000;

/**
 * Whether two copies of a file count as the same: equal size, and equal
 * modification time to {@link MTIME_RESOLUTION_MS}.
 *
 * @example
 * ```ts
 * import { sameFile } from "./sync_plan.ts";
 * console.assert(sameFile({ size: 3, mtime: 5_000 }, { size: 3, mtime: 5_999 }));
 * console.assert(!sameFile({ size: 3, mtime: 5_000 }, { size: 4, mtime: 5_000 }));
 * ```
 */
export function sameFile(a: TreeFile, b: TreeFile, byDigest = false): boolean {
  if (a.size !== b.size) return false;
  if (byDigest) return a.digest !== undefined && a.digest === b.digest;
  return seconds(a.mtime) === seconds(b.mtime);
}

function seconds(mtimeMs: number): number {
  return Math.floor(mtimeMs / MTIME_RESOLUTION_MS);
}

/**
 * The files worth comparing by content: on both sides, of one size (files
 * of different sizes differ whatever they hold).
 *
 * @example
 * ```ts
 * import { digestCandidates } from "./sync_plan.ts";
 * const tree = (size: number) => ({ files: new Map([["a", { size, mtime: 0 }]]), dirs: new Set<string>() });
 * console.assert(digestCandidates(tree(1), tree(1)).length === 1);
 * console.assert(digestCandidates(tree(1), tree(2)).length === 0);
 * ```
 */
export function digestCandidates(source: TreeSnapshot, target: TreeSnapshot): string[] {
  return [...source.files].filter(([path, file]) => target.files.get(path)?.size === file.size)
    .map(([path]) => path);
}

/**
 * Plans the sync of `source` onto `target`.
 *
 * @example
 * ```ts
 * import { planSync } from "./sync_plan.ts";
 * const tree = (files: [string, number][]) => ({
 *   files: new Map(files.map(([path, size]) => [path, { size, mtime: 0 }])),
 *   dirs: new Set<string>(),
 * });
 * const plan = planSync(tree([["a", 1], ["b", 2]]), tree([["b", 3], ["c", 1]]), { delete: true });
 * console.assert(plan.create[0]!.path === "a" && plan.update[0]!.path === "b");
 * console.assert(plan.remove[0]!.path === "c");
 * ```
 */
export function planSync(
  source: TreeSnapshot,
  target: TreeSnapshot,
  options: SyncPlanOptions = {},
): SyncPlan {
  const plan: SyncPlan = {
    directories: [],
    create: [],
    update: [],
    remove: [],
    unchanged: [],
    conflicts: [],
  };
  // A source directory where the target has a file: nothing goes below it.
  const blocked: string[] = [];
  const isBlocked = (path: string) => blocked.some((dir) => path.startsWith(`${dir}/`));
  for (const dir of [...source.dirs].sort()) {
    if (isBlocked(dir)) continue;
    if (target.files.has(dir)) {
      plan.conflicts.push({ path: dir, reason: "a file on the target" });
      blocked.push(dir);
    } else if (!target.dirs.has(dir)) {
      plan.directories.push(dir);
    }
  }
  for (const [path, file] of [...source.files].sort(([a], [b]) => a < b ? -1 : 1)) {
    if (isBlocked(path)) continue;
    const there = target.files.get(path);
    if (target.dirs.has(path)) {
      plan.conflicts.push({ path, reason: "a directory on the target" });
    } else if (there === undefined) {
      plan.create.push({ path, size: file.size });
    } else if (sameFile(file, there, options.byDigest)) {
      plan.unchanged.push({ path, size: file.size });
    } else if (seconds(there.mtime) > seconds(file.mtime) && !options.force) {
      plan.conflicts.push({ path, reason: "newer on the target" });
    } else {
      plan.update.push({ path, size: file.size });
    }
  }
  if (options.delete) {
    const kept = (path: string) => source.files.has(path) || source.dirs.has(path);
    for (const path of [...target.files.keys()].sort()) {
      if (!kept(path)) plan.remove.push({ path, dir: false });
    }
    // Deepest first, so each is empty when its turn comes.
    for (const path of [...target.dirs].sort().reverse()) {
      if (!kept(path)) plan.remove.push({ path, dir: true });
    }
  }
  return plan;
}

/**
 * Whether a plan changes anything.
 *
 * @example
 * ```ts
 * import { changesAnything, planSync } from "./sync_plan.ts";
 * const empty = { files: new Map(), dirs: new Set<string>() };
 * console.assert(!changesAnything(planSync(empty, empty)));
 * ```
 */
export function changesAnything(plan: SyncPlan): boolean {
  return plan.directories.length + plan.create.length + plan.update.length +
      plan.remove.length > 0;
}
