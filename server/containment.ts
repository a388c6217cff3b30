/**
 * Containment: every path the server opens is built from validated segments
 * and checked to resolve inside the root. Deno's permissions stop anything
 * outside the root by path; these checks stop links inside the root that lead
 * out of it, or into the server's state directory. Two rules, as dufs keeps
 * them: {@link isInside} for a path already resolved, and
 * {@link ServedRoot.stepInto} (one step at a time) for a target that may not
 * exist yet.
 *
 * Deno has no open-relative-to-directory, so a check and what follows it are
 * not atomic: each directory checked keeps its identity ({@link CheckedDirectory}),
 * and {@link assertCreatedIn} and {@link assertUnchanged} look again after the
 * fact, so that a directory swapped for a link meanwhile is refused (DENIED).
 *
 * @module
 */

import { join, sep } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { lstatOrNull, quote, wrongType } from "./_storage_common.ts";
import { assertPathFits } from "./path_limits.ts";
import { ENTRY_BYTES } from "./entry_cost.ts";
import type { SpaceBudget } from "./space.ts";

/**
 * Reports whether `path` is `root` or lies beneath it. Both must be resolved
 * paths; a root given with a trailing separator is taken as the same root.
 *
 * @example
 * ```ts
 * import { isInside } from "./containment.ts";
 * console.assert(isInside("/a", "/a/b"));
 * console.assert(isInside("/a", "/a"));
 * console.assert(!isInside("/a", "/ab"));
 * ```
 */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/**
 * A directory the server has checked (inside root, not through a link leading
 * out), with its identity then: a later lstat of `path` showing another
 * identity means the path now leads elsewhere.
 */
export interface CheckedDirectory {
  /** The directory's resolved path. */
  path: string;
  /** Its device when checked. */
  dev: number;
  /** Its inode when checked (-1 if the system gave none: then it matches nothing). */
  ino: number;
}

/** `info`, the lstat or stat of the directory at `path`, as a {@link CheckedDirectory}. */
export function identityOf(path: string, info: Deno.FileInfo): CheckedDirectory {
  return { path, dev: info.dev, ino: info.ino ?? -1 };
}

/** Whether `a` and `b` are the same file (device and inode); an unknown inode is never the same. */
export function sameIdentity(
  a: { dev: number; ino: number | null },
  b: { dev: number; ino: number | null },
): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.ino !== null;
}

/** What {@link ServedRoot.makeDirectories} made. */
export interface MadeDirectories {
  /** The last directory of the walk (an upload's parent), checked. */
  parent: CheckedDirectory;
  /** The directories created, outermost first. */
  created: string[];
}

/** What making directories needs besides the walk. */
export interface DirectoryMaking {
  /**
   * Claims the {@link ENTRY_BYTES} of every directory missing, at once,
   * before any is made; takes them back when one is removed.
   */
  space: Pick<SpaceBudget, "reserveDirectories" | "freed">;
  /** Makes a directory's new entry durable (fsync of the directory). */
  syncDirectory(path: string): Promise<void>;
  /**
   * Makes one directory (throwing as `Deno.mkdirSync` does), and tells
   * directory moves of it in the same step: see path_limits.ts's `DirectoryMoves`.
   * @default {Deno.mkdirSync}
   */
  makeDirectory?(path: string): void;
  /**
   * The last segment must be new: EXISTS if anything has that name (a mkdir).
   * @default {false}
   */
  lastMustBeNew?: boolean;
}

/**
 * The served root: its resolved path, the state directory inside it that no
 * request may reach, and the root's identity when the server started. Every
 * walk starts from {@link checkedRoot}, so a root moved away and replaced is
 * refused, never followed.
 *
 * @example
 * ```ts
 * import { ServedRoot } from "./containment.ts";
 * const root = Deno.realPathSync(Deno.makeTempDirSync());
 * Deno.mkdirSync(`${root}/docs`);
 * const served = ServedRoot.open(root, `${root}/.fts`);
 * console.assert(served.resolveExisting(["docs"]) === `${root}/docs`);
 * console.assert(served.stepInto(served.checkedRoot(), "missing", ["missing"]) === null);
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export class ServedRoot {
  /** The root, as a resolved absolute path. */
  readonly root: string;
  /** The server's state directory inside the root: never served. */
  readonly stateDir: string;
  /** The root's permission bits when the server started. */
  readonly mode: number;
  readonly #identity: CheckedDirectory;

  private constructor(root: string, stateDir: string, info: Deno.FileInfo) {
    this.root = root;
    this.stateDir = stateDir;
    this.mode = info.mode ?? 0;
    this.#identity = identityOf(root, info);
  }

  /**
   * The root at `root`, a resolved absolute path, with `stateDir` inside it;
   * throws if `root` is not a directory (a link to one is not).
   */
  static open(root: string, stateDir: string): ServedRoot {
    const info = Deno.lstatSync(root);
    if (!info.isDirectory) throw new Error(`${root} is not a directory`);
    return new ServedRoot(root, stateDir, info);
  }

  /**
   * The root, after checking that its path still leads to the directory the
   * server started with: one lstat per request. A root moved away and
   * replaced (by a link, or another directory) is refused, never followed.
   */
  checkedRoot(): CheckedDirectory {
    const now = lstatOrNull(this.root);
    if (now === null || !now.isDirectory || !sameIdentity(now, this.#identity)) {
      throw new FtsError(
        "DENIED",
        "the served directory was moved or replaced while serving; this server refuses every request",
      );
    }
    return this.#identity;
  }

  /**
   * The containment rule: a resolved path must lie inside the root and
   * outside the server's state directory (a link inside root may point at
   * either); DENIED otherwise, naming `segments`.
   */
  assertServed(real: string, segments: string[]): void {
    if (!isInside(this.root, real) || isInside(this.stateDir, real)) {
      throw new FtsError("DENIED", `${quote(segments)} leads outside the served directory`);
    }
  }

  /**
   * The resolved path of an existing entry, links followed, checked by
   * {@link assertServed}. Throws `Deno.errors.NotFound` when it (or a link's
   * target) does not exist.
   */
  resolveExisting(segments: string[]): string {
    this.checkedRoot();
    const real = Deno.realPathSync(join(this.root, ...segments));
    this.assertServed(real, segments);
    return real;
  }

  /** {@link resolveExisting} for a directory, with its identity; WRONG_TYPE if it is not one. */
  checkedExisting(segments: string[]): CheckedDirectory {
    const real = this.resolveExisting(segments);
    const info = Deno.statSync(real);
    if (!info.isDirectory) throw wrongType(segments, "is not a directory");
    return identityOf(real, info);
  }

  /**
   * One step down from `current`, a directory already checked, to its entry
   * `segment`, which must be a directory: one lstat, and a link is followed
   * only after checking that it leads inside the root and outside the
   * state directory. Null when there is no such entry; `named` is the name
   * so far, for messages.
   */
  stepInto(current: CheckedDirectory, segment: string, named: string[]): CheckedDirectory | null {
    const next = join(current.path, segment);
    const info = lstatOrNull(next);
    if (info === null) return null;
    if (info.isDirectory) return identityOf(next, info);
    if (!info.isSymlink) throw wrongType(named, "is not a directory");
    const real = Deno.realPathSync(next);
    this.assertServed(real, named);
    const target = Deno.statSync(real);
    if (!target.isDirectory) throw wrongType(named, "is not a directory");
    return identityOf(real, target);
  }

  /**
   * Resolves the parent directory of an upload's name if it exists (checking
   * each existing step like {@link makeDirectories}), or null if some
   * directory along the way is still to be created (or is a link to nowhere).
   */
  existingParent(segments: string[]): CheckedDirectory | null {
    let current = this.checkedRoot();
    for (const [i, segment] of segments.slice(0, -1).entries()) {
      let next: CheckedDirectory | null;
      try {
        next = this.stepInto(current, segment, segments.slice(0, i + 1));
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null; // A link to nowhere.
        throw err;
      }
      if (next === null) return null;
      current = next;
    }
    return current;
  }

  /**
   * Creates the directories along `segments` as needed, each made durable in
   * its parent before the next, under one claim against the space budget for
   * all that are missing (what another session made meanwhile is given back);
   * returns the last one, checked, and those it created. If it fails
   * part-way, it removes those it created.
   */
  async makeDirectories(segments: string[], making: DirectoryMaking): Promise<MadeDirectories> {
    let current = this.checkedRoot();
    let existing = 0;
    for (; existing < segments.length; existing++) {
      const named = segments.slice(0, existing + 1);
      const segment = segments[existing]!;
      if (making.lastMustBeNew && existing === segments.length - 1) {
        if (lstatOrNull(join(current.path, segment)) !== null) {
          throw new FtsError("EXISTS", `${quote(segments)} already exists`);
        }
        break;
      }
      const next = this.stepInto(current, segment, named);
      if (next === null) break;
      current = next;
    }
    if (existing === segments.length) return { parent: current, created: [] };
    assertPathFits(current.path, segments.slice(existing), segments);
    const claim = await making.space.reserveDirectories(segments.length - existing);
    const created: string[] = [];
    let made = 0;
    try {
      for (const [i, segment] of segments.entries()) {
        if (i < existing) continue;
        const named = segments.slice(0, i + 1);
        const path = join(current.path, segment);
        assertPathFits(current.path, [segment], named);
        try {
          (making.makeDirectory ?? Deno.mkdirSync)(path);
          made++;
        } catch (err) {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
          if (making.lastMustBeNew && i === segments.length - 1) {
            throw new FtsError("EXISTS", `${quote(segments)} already exists`);
          }
          // Another session made it meanwhile: stepped into below, as any existing one.
          const next = this.stepInto(current, segment, named);
          if (next === null) throw new FtsError("NOT_FOUND", `${quote(named)} vanished`);
          current = next;
          continue;
        }
        const info = lstatOrNull(path);
        if (info === null || !info.isDirectory) {
          throw new FtsError("DENIED", `${quote(named)} changed while it was created`);
        }
        assertCreatedIn(current, path, info, named, () => {
          Deno.removeSync(path);
          made--;
        });
        created.push(path);
        await making.syncDirectory(current.path);
        current = identityOf(path, info);
      }
    } catch (err) {
      claim.settle(made);
      removeCreated(created, making.space);
      throw err;
    }
    claim.settle(made);
    return { parent: current, created };
  }
}

/**
 * Removes directories a failed operation created, innermost first; only
 * empty ones, best effort. Each one removed gives its {@link ENTRY_BYTES} back to `space`.
 */
export function removeCreated(created: string[], space: Pick<SpaceBudget, "freed">): void {
  for (const path of created.toReversed()) {
    try {
      Deno.removeSync(path);
      space.freed(ENTRY_BYTES);
    } catch {
      // Not empty (another upload uses it now) or gone: leave it.
    }
  }
}

/**
 * Checks that `path`, an entry just created or moved into the directory
 * `parent`, is there: `parent`'s path still leads to the directory that was
 * checked, and `path` names the entry with `created`'s identity. Otherwise
 * a directory on the way was swapped for a link while the entry was made:
 * `undo` (best effort) takes it back and DENIED is thrown, naming `segments`.
 */
export function assertCreatedIn(
  parent: CheckedDirectory,
  path: string,
  created: Deno.FileInfo,
  segments: string[],
  undo?: () => void,
): void {
  const holds = () => {
    const now = lstatOrNull(parent.path);
    return now !== null && now.isDirectory && sameIdentity(now, parent);
  };
  // The parent before and after the entry: a swap must then be undone twice to go unseen.
  const parentHolds = holds();
  const entryNow = lstatOrNull(path);
  if (parentHolds && entryNow !== null && sameIdentity(entryNow, created) && holds()) return;
  try {
    // Only while the path still leads to where the entry went.
    if (!parentHolds && entryNow !== null && sameIdentity(entryNow, created)) undo?.();
  } catch {
    // Best effort: the path moved on again.
  }
  throw new FtsError("DENIED", `${quote(segments)} changed while it was written`);
}

/** Throws DENIED, naming `segments`, if `directory`'s path no longer leads to the directory checked. */
export function assertUnchanged(directory: CheckedDirectory, segments: string[]): void {
  const now = lstatOrNull(directory.path);
  if (now === null || !now.isDirectory || !sameIdentity(now, directory)) {
    throw new FtsError("DENIED", `${quote(segments)} changed while in use`);
  }
}
