/**
 * The only code that touches the served root. Every path it opens is built
 * from validated segments and checked to resolve inside the root: Deno's
 * permissions stop anything outside root by path, and these checks stop links
 * inside root that lead out of it.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { dirname, join, sep } from "node:path";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import { fileSink } from "../io/small_file_io.ts";
import { syncDirectory } from "../io/sync_directory.ts";
import { FtsError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { writeAll } from "../protocol/frames.ts";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import { logEvent } from "./log.ts";
import {
  ENTRY_BYTES,
  entryBytes,
  fileBytes,
  SpaceBudget,
  type SpaceLimits,
  type SpaceReservation,
} from "./space.ts";

/** Where uploads are written until they are published: inside root, never listed. */
const TMP_DIR = join(STATE_DIR_NAME, "tmp");

/** Where broken resumable uploads wait to be resumed: inside root, never listed. */
const PARTIAL_DIR = join(STATE_DIR_NAME, "partial");

export { PARTIAL_EXPIRY_MS };

/**
 * How often a running server sweeps expired partials: an hour late is little against a day's expiry,
 * and one scan of the partial directory an hour costs nothing.
 */
export const PARTIAL_SWEEP_INTERVAL_MS = 60 * 60 * 1000;

/** Held locked (flock) while a server serves the root, so that two servers never share one. */
const LOCK_FILE = join(STATE_DIR_NAME, "lock");

/**
 * How many entries a listing stats before letting other sessions run: a
 * stat of a cached inode takes microseconds, so a batch holds the server
 * for a few milliseconds at most.
 */
const LIST_STAT_BATCH = 1000;

/**
 * The longest path, in bytes, one system call takes: Linux's PATH_MAX is 4096
 * bytes with the terminating NUL, and a longer path fails with ENAMETOOLONG.
 */
export const MAX_PATH_BYTES = 4095;

/** Reports whether `path` is `root` or lies beneath it. Both must be resolved paths. */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** An open file ready to be streamed to a client. */
export interface FileForDownload {
  file: Deno.FsFile;
  size: number;
  mtime: number;
  mode: number;
}

/**
 * A directory the server has checked (inside root, not through a link leading
 * out), with its identity then: a later lstat of `path` showing another
 * identity means the path now leads elsewhere.
 */
interface CheckedDirectory {
  path: string;
  dev: number;
  ino: number;
}

/** Access to one served root. */
export class Storage {
  /** The root, as a resolved absolute path. */
  readonly root: string;
  readonly #stateDir: string;
  readonly #tmpDir: string;
  readonly #partialDir: string;
  #space: SpaceBudget | null = null;
  /** The root's identity when the server started; every request checks it still holds. */
  #rootIdentity: CheckedDirectory | null = null;
  /** The temporary directory's identity, checked after a temporary file is created in it. */
  #tmpIdentity: CheckedDirectory | null = null;
  #lock: Deno.FsFile | null = null;
  /** Warnings about the root found at start (also logged), such as a world-writable root. */
  readonly warnings: string[] = [];
  /**
   * The root is on a file system in memory (tmpfs, ramfs), where fsync has
   * nothing to write: small uploads are then synced in place. Elsewhere an
   * fsync may wait for the disk, and runs off the event loop.
   */
  syncsInMemory = false;
  /** When expired partials were last swept, ms since the epoch. */
  #lastPartialSweepMs = -Infinity;

  private constructor(root: string) {
    this.root = root;
    this.#stateDir = join(root, STATE_DIR_NAME);
    this.#tmpDir = join(root, TMP_DIR);
    this.#partialDir = join(root, PARTIAL_DIR);
  }

  /** The root's space budget. */
  get space(): SpaceBudget {
    return this.#space!;
  }

  /**
   * Opens a root given as a resolved absolute path, creating its state
   * directory and removing temporaries a crash left behind. Refuses a root
   * that another server is serving: its uploads in flight live in the same
   * temporary directory. The lock lasts as long as the process.
   */
  static async open(root: string, limits: SpaceLimits): Promise<Storage> {
    const storage = new Storage(root);
    await Deno.mkdir(storage.#stateDir, { recursive: true });
    const rootInfo = Deno.lstatSync(root);
    if (!rootInfo.isDirectory) throw new Error(`${root} is not a directory`);
    storage.#rootIdentity = identityOf(root, rootInfo);
    if ((rootInfo.mode ?? 0) & 0o002) {
      const warning = `the served directory ${root} is world-writable: any local user can ` +
        "add, and swap, what it serves and where uploads land (chmod o-w)";
      storage.warnings.push(warning);
      logEvent({ peer: "-", op: "serve", result: "warning", detail: warning });
    }
    const lock = await Deno.open(join(root, LOCK_FILE), { write: true, create: true });
    if (!await lock.tryLock(true)) {
      lock.close();
      throw new Error(`another fts server is already serving ${root}`);
    }
    storage.#lock = lock;
    await Deno.remove(storage.#tmpDir, { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.mkdir(storage.#tmpDir, { recursive: true });
    await Deno.mkdir(storage.#partialDir, { recursive: true });
    storage.#tmpIdentity = identityOf(storage.#tmpDir, Deno.lstatSync(storage.#tmpDir));
    await storage.sweepExpiredPartials(Date.now());
    storage.#space = await SpaceBudget.open(root, limits, {
      stateDir: storage.#stateDir,
      partialDir: storage.#partialDir,
    });
    storage.syncsInMemory = await isInMemoryFileSystem(root);
    return storage;
  }

  /** Lets another server serve the root (releases the lock); this one must not be used after. */
  close(): void {
    this.#lock?.close();
    this.#lock = null;
  }

  /** Lists a directory (or describes one file), hiding the server's state directory. */
  async list(segments: string[]): Promise<Entry[]> {
    const real = this.#resolveExisting(segments);
    const info = Deno.statSync(real);
    if (!info.isDirectory) return [entryOf(segments.at(-1) ?? "", info)];
    const names: string[] = [];
    for await (const entry of Deno.readDir(real)) {
      if (real === this.root && entry.name === STATE_DIR_NAME) continue;
      names.push(entry.name);
    }
    names.sort();
    const entries: Entry[] = [];
    for (let i = 0; i < names.length; i += LIST_STAT_BATCH) {
      // Other sessions get their turn between batches.
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 0));
      for (const name of names.slice(i, i + LIST_STAT_BATCH)) {
        const info = lstatOrNull(join(real, name));
        // An entry deleted between readDir and lstat is simply gone.
        if (info) entries.push(entryOf(name, info));
      }
    }
    return entries;
  }

  /** Describes one entry, without following a final link. */
  stat(segments: string[]): Entry {
    const parent = this.#resolveExisting(segments.slice(0, -1));
    return entryOf(segments.at(-1)!, Deno.lstatSync(join(parent, segments.at(-1)!)));
  }

  /**
   * Opens a regular file for reading. The handle is checked to be the file the
   * resolved name leads to, so a link swapped in meanwhile is refused.
   */
  async openForDownload(segments: string[]): Promise<FileForDownload> {
    const real = this.#resolveExisting(segments);
    if (!Deno.statSync(real).isFile) throw wrongType(segments, "is not a regular file");
    // Opened off the event loop: something swapped in meanwhile (a FIFO) blocks one thread, not the server.
    const file = await Deno.open(real, { read: true });
    try {
      const opened = file.statSync();
      const now = Deno.statSync(real);
      if (!opened.isFile || opened.ino !== now.ino || opened.dev !== now.dev) {
        throw new FtsError("DENIED", `${quote(segments)} changed while it was opened`);
      }
      return {
        file,
        size: opened.size,
        mtime: opened.mtime?.getTime() ?? 0,
        mode: (opened.mode ?? 0) & 0o7777,
      };
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /**
   * Starts an upload into a temporary file in the state directory; with
   * `resume`, from the data a broken upload of the same name and size left.
   * Nothing is visible under `segments` until {@link PendingUpload.publish}.
   */
  async beginUpload(segments: string[], options: UploadOptions): Promise<PendingUpload> {
    this.#assertPathFits(this.root, segments);
    await this.sweepExpiredPartials(Date.now());
    const parent = this.#existingParent(segments);
    if (parent !== null) this.#assertPathFits(parent.path, segments.slice(-1), segments);
    const existing = parent === null ? null : lstatOrNull(join(parent.path, segments.at(-1)!));
    if (existing?.isDirectory) throw wrongType(segments, "is a directory");
    if (existing && !options.overwrite) {
      throw new FtsError("EXISTS", `${quote(segments)} already exists (use --force to overwrite)`);
    }
    const tmpPath = join(this.#tmpDir, crypto.randomUUID());
    const partialPath = join(this.#partialDir, partialKey(segments, options.size));
    // Take the partial data over first (a rename, so two resumers never
    // share it): its bytes are counted already and need no new room.
    const offset = options.resume ? this.#takePartial(partialPath, tmpPath, options.size) : 0;
    let reservation: SpaceReservation;
    try {
      reservation = await this.space.reserve(options.size, {
        replacingBytes: existing ? entryBytes(existing) : 0,
        heldBytes: offset,
      });
    } catch (err) {
      // Put the partial back, for a resume that fits later.
      if (offset > 0) this.#keepPartial(tmpPath, partialPath, offset);
      throw err;
    }
    try {
      const file = Deno.openSync(tmpPath, {
        write: true,
        createNew: offset === 0,
        append: offset > 0,
        mode: 0o644,
      });
      try {
        this.#assertCreatedIn(this.#tmpIdentity!, tmpPath, file.statSync(), segments);
      } catch (err) {
        file.close();
        throw err;
      }
      return new PendingUpload(this, file, {
        ...options,
        tmpPath,
        partialPath,
        segments,
        reservation,
        offset,
      });
    } catch (err) {
      reservation.release();
      await Deno.remove(tmpPath).catch(() => {});
      throw err;
    }
  }

  /**
   * Moves the partial at `partialPath` to `tmpPath` and returns its size: 0 if
   * there is none, or if it is empty or larger than the upload (then it is removed).
   */
  #takePartial(partialPath: string, tmpPath: string, size: number): number {
    try {
      Deno.renameSync(partialPath, tmpPath);
    } catch {
      return 0;
    }
    const held = Deno.lstatSync(tmpPath).size;
    if (held > 0 && held <= size) return held;
    Deno.removeSync(tmpPath);
    this.space.freed(fileBytes(held));
    return 0;
  }

  /**
   * Keeps the `bytes` at `tmpPath` as the partial at `partialPath`, for a
   * resume; a partial already there (an earlier break of the same name and size) is replaced.
   */
  #keepPartial(tmpPath: string, partialPath: string, bytes: number): void {
    const replaced = lstatOrNull(partialPath);
    try {
      Deno.renameSync(tmpPath, partialPath);
    } catch {
      try {
        Deno.removeSync(tmpPath);
      } catch {
        // Gone already; the next start clears the temporary directory anyway.
      }
      return;
    }
    this.space.held(bytes);
    if (replaced) this.space.freed(entryBytes(replaced));
  }

  /**
   * Called by {@link PendingUpload.interrupted}: see {@link #keepPartial}. An
   * upload cut off before its first byte keeps nothing: an empty partial
   * resumes nothing, and would cost {@link ENTRY_BYTES} for it.
   */
  keepPartial(tmpPath: string, partialPath: string): void {
    const bytes = lstatOrNull(tmpPath)?.size;
    if (bytes === undefined) return;
    if (bytes > 0) return this.#keepPartial(tmpPath, partialPath, bytes);
    try {
      Deno.removeSync(tmpPath);
    } catch {
      // Gone already; the next start clears the temporary directory anyway.
    }
  }

  /**
   * Bytes kept from a broken upload of `segments` with `size` bytes, which an
   * upload with `resume` would continue from; 0 when there are none or they expired.
   */
  heldBytes(segments: string[], size: number): number {
    this.#checkedRoot();
    const info = lstatOrNull(join(this.#partialDir, partialKey(segments, size)));
    const fresh = info?.isFile && Date.now() - (info.mtime?.getTime() ?? 0) <= PARTIAL_EXPIRY_MS;
    return fresh && info.size <= size ? info.size : 0;
  }

  /** Removes broken uploads' data older than {@link PARTIAL_EXPIRY_MS}. */
  async removeExpiredPartials(nowMs = Date.now()): Promise<void> {
    this.#checkedRoot();
    for await (const entry of Deno.readDir(this.#partialDir)) {
      const path = join(this.#partialDir, entry.name);
      const info = await Deno.lstat(path).catch(() => null);
      if (info && nowMs - (info.mtime?.getTime() ?? 0) > PARTIAL_EXPIRY_MS) {
        const removed = await Deno.remove(path).then(() => true, () => false);
        // Before the budget exists (at open), it has not counted them yet.
        if (removed) this.#space?.freed(entryBytes(info));
      }
    }
  }

  /**
   * Removes expired partials unless the last sweep was less than
   * {@link PARTIAL_SWEEP_INTERVAL_MS} before `nowMs`; returns whether it swept.
   * Uploads are what leave partials, so checking as each one begins keeps pace
   * with them without a timer.
   */
  async sweepExpiredPartials(nowMs: number): Promise<boolean> {
    if (nowMs - this.#lastPartialSweepMs < PARTIAL_SWEEP_INTERVAL_MS) return false;
    // Set before the scan, so that uploads beginning meanwhile do not start another.
    this.#lastPartialSweepMs = nowMs;
    await this.removeExpiredPartials(nowMs);
    return true;
  }

  /**
   * Creates a directory, and any missing parents; EXISTS if the name is
   * taken. Each directory made costs {@link ENTRY_BYTES}, claimed against
   * the quota and the reserve before it is made. On failure the parents it
   * created are removed again.
   */
  async mkdir(segments: string[]): Promise<void> {
    this.#assertPathFits(this.root, segments);
    const { parent, created } = await this.#makeDirectories(segments.slice(0, -1));
    try {
      this.#assertPathFits(parent.path, segments.slice(-1), segments);
      const path = join(parent.path, segments.at(-1)!);
      if (lstatOrNull(path) !== null) {
        throw new FtsError("EXISTS", `${quote(segments)} already exists`);
      }
      const claim = await this.space.reserveDirectory();
      try {
        Deno.mkdirSync(path);
      } catch (err) {
        claim.release();
        throw err;
      }
      claim.commit(0);
      const made = lstatOrNull(path);
      if (made === null || !made.isDirectory) {
        throw new FtsError("DENIED", `${quote(segments)} changed while it was created`);
      }
      this.#assertCreatedIn(parent, path, made, segments, () => {
        Deno.removeSync(path);
        this.space.freed(ENTRY_BYTES);
      });
      await this.#syncDirectory(parent.path);
    } catch (err) {
      this.removeCreated(created);
      throw err;
    }
  }

  /**
   * Renames within the root; EXISTS if `to` is taken and `overwrite` is not
   * set. A rename onto the same file (the same name, or another hard link to
   * it) changes nothing, as rename(2) does, and frees nothing. A directory
   * is moved only if every path in it still fits the system's limit where
   * it lands; otherwise BAD_NAME, before anything moves.
   */
  async rename(from: string[], to: string[], overwrite: boolean): Promise<void> {
    this.#assertPathFits(this.root, from);
    this.#assertPathFits(this.root, to);
    const fromParent = this.#checkedExisting(from.slice(0, -1));
    const toParent = this.#checkedExisting(to.slice(0, -1));
    this.#assertPathFits(toParent.path, to.slice(-1), to);
    const source = join(fromParent.path, from.at(-1)!);
    const target = join(toParent.path, to.at(-1)!);
    const moving = Deno.lstatSync(source);
    const existing = lstatOrNull(target);
    if (existing && !overwrite) {
      throw new FtsError("EXISTS", `${quote(to)} already exists (use --force to overwrite)`);
    }
    if (source === target || (existing !== null && sameIdentity(existing, moving))) return;
    if (moving.isDirectory) this.#assertSubtreeFits(source, target, to);
    // From the measurements to the rename nothing awaits: no other request
    // of this server changes what was measured.
    Deno.renameSync(source, target);
    this.#assertCreatedIn(toParent, target, moving, to, () => {
      // Moved back where it came from, if that path still leads there.
      Deno.renameSync(target, source);
    });
    this.#assertUnchanged(fromParent, from);
    if (existing) this.space.freed(entryBytes(existing));
    await this.#syncDirectory(toParent.path);
    if (toParent.path !== fromParent.path) await this.#syncDirectory(fromParent.path);
  }

  /** Removes a file, a link, or an empty directory. */
  async remove(segments: string[]): Promise<void> {
    const parent = this.#resolveExisting(segments.slice(0, -1));
    // (A directory on the way swapped for a link between this check and the
    // unlink would aim the unlink elsewhere: Deno has no unlinkat.)
    const target = join(parent, segments.at(-1)!);
    const info = Deno.lstatSync(target);
    Deno.removeSync(target);
    this.space.freed(entryBytes(info));
    await this.#syncDirectory(parent);
  }

  /**
   * Creates the directories an upload's name needs, at publish time so that a
   * failed upload leaves nothing behind; returns the parent, checked, and the
   * directories created, which {@link Storage.removeCreated} removes if the publish then fails.
   */
  async makeParentDirectories(segments: string[]): Promise<MadeDirectories> {
    const made = await this.#makeDirectories(segments.slice(0, -1));
    try {
      this.#assertPathFits(made.parent.path, segments.slice(-1), segments);
    } catch (err) {
      this.removeCreated(made.created);
      throw err;
    }
    return made;
  }

  /**
   * Removes directories a failed operation created, innermost first; only
   * empty ones, best effort. Each one removed gives its {@link ENTRY_BYTES} back.
   */
  removeCreated(created: string[]): void {
    for (const path of created.toReversed()) {
      try {
        Deno.removeSync(path);
        this.space.freed(ENTRY_BYTES);
      } catch {
        // Not empty (another upload uses it now) or gone: leave it.
      }
    }
  }

  /**
   * Throws BAD_NAME if the directory at `source`, moved to `target`, would
   * hold a path longer than {@link MAX_PATH_BYTES}: a path the system cannot
   * reach, which no request could list or delete. The walk reads the
   * subtree without following links and stops at the first path over the
   * limit, so its depth is bounded by the limit; it is synchronous, so that
   * no other request adds depth between the measure and the rename. A move
   * that makes no path longer is not walked.
   */
  #assertSubtreeFits(source: string, target: string, named: string[]): void {
    const targetBytes = encoder.encode(target).length;
    if (targetBytes <= encoder.encode(source).length) return;
    const tooLong = () =>
      new FtsError(
        "BAD_NAME",
        `bad name ${quote(named)}: a path in the directory moved there would be longer than ` +
          `the system's limit of ${MAX_PATH_BYTES} bytes`,
      );
    // Each directory to read, with the length its path would have at `target`.
    const pending: { path: string; bytesThere: number }[] = [{
      path: source,
      bytesThere: targetBytes,
    }];
    while (pending.length > 0) {
      const { path, bytesThere } = pending.pop()!;
      let entries: Deno.DirEntry[];
      try {
        entries = [...Deno.readDirSync(path)];
      } catch (err) {
        // Past the limit where it is already: moved deeper, it is past it still.
        if ((err as { code?: unknown }).code === "ENAMETOOLONG") throw tooLong();
        throw err;
      }
      for (const entry of entries) {
        const entryBytes = bytesThere + 1 + encoder.encode(entry.name).length;
        if (entryBytes > MAX_PATH_BYTES) throw tooLong();
        if (entry.isDirectory) {
          pending.push({ path: join(path, entry.name), bytesThere: entryBytes });
        }
      }
    }
  }

  /**
   * Checks that `path`, an entry just created or moved into the directory
   * `parent`, is there: `parent`'s path still leads to the directory that was
   * checked, and `path` names the entry with `created`'s identity. Otherwise
   * a directory on the way was swapped for a link while the entry was made:
   * `undo` (best effort) takes it back and DENIED is thrown.
   */
  #assertCreatedIn(
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

  /** Called by {@link PendingUpload.publish}: see {@link #assertCreatedIn}. */
  assertPublished(
    parent: CheckedDirectory,
    path: string,
    created: Deno.FileInfo,
    segments: string[],
    undo: () => void,
  ): void {
    this.#assertCreatedIn(parent, path, created, segments, undo);
  }

  /** Throws DENIED if `directory`'s path no longer leads to the directory checked. */
  #assertUnchanged(directory: CheckedDirectory, segments: string[]): void {
    const now = lstatOrNull(directory.path);
    if (now === null || !now.isDirectory || !sameIdentity(now, directory)) {
      throw new FtsError("DENIED", `${quote(segments)} changed while in use`);
    }
  }

  /**
   * The root, after checking that its path still leads to the directory the
   * server started with: one lstat per request. A root moved away and
   * replaced (by a link, or another directory) is refused, never followed.
   */
  #checkedRoot(): CheckedDirectory {
    const identity = this.#rootIdentity!;
    const now = lstatOrNull(this.root);
    if (now === null || !now.isDirectory || !sameIdentity(now, identity)) {
      throw new FtsError(
        "DENIED",
        "the served directory was moved or replaced while serving; this server refuses every request",
      );
    }
    return identity;
  }

  /**
   * Throws BAD_NAME if `segments` under the directory `base` would make a
   * path longer than the system takes ({@link MAX_PATH_BYTES}); `named` is
   * the whole name, for the message.
   */
  #assertPathFits(base: string, segments: string[], named = segments): void {
    const bytes = encoder.encode(join(base, ...segments)).length;
    if (bytes > MAX_PATH_BYTES) {
      throw new FtsError(
        "BAD_NAME",
        `bad name ${quote(named)}: its path on the server would be longer than the system's ` +
          `limit of ${MAX_PATH_BYTES} bytes`,
      );
    }
  }

  /** {@link #resolveExisting} for a directory, with its identity. */
  #checkedExisting(segments: string[]): CheckedDirectory {
    const real = this.#resolveExisting(segments);
    const info = Deno.statSync(real);
    if (!info.isDirectory) throw wrongType(segments, "is not a directory");
    return identityOf(real, info);
  }

  #resolveExisting(segments: string[]): string {
    this.#checkedRoot();
    const real = Deno.realPathSync(join(this.root, ...segments));
    this.#assertServed(real, segments);
    return real;
  }

  /**
   * The containment rule: a resolved path must lie inside the root and
   * outside the server's state directory (a link inside root may point at either).
   */
  #assertServed(real: string, segments: string[]): void {
    if (!isInside(this.root, real) || isInside(this.#stateDir, real)) {
      throw new FtsError("DENIED", `${quote(segments)} leads outside the served directory`);
    }
  }

  /**
   * Resolves the parent directory of an upload's name if it exists (checking
   * each existing step like {@link #makeDirectories}), or null if some
   * directory along the way is still to be created.
   */
  #existingParent(segments: string[]): CheckedDirectory | null {
    let current = this.#checkedRoot();
    for (const [i, segment] of segments.slice(0, -1).entries()) {
      let next: CheckedDirectory | null;
      try {
        next = this.#stepInto(current, segment, segments.slice(0, i + 1));
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
   * its parent before the next; returns the last one, checked, and those it
   * created. If it fails part-way, it removes those it created.
   */
  async #makeDirectories(segments: string[]): Promise<MadeDirectories> {
    let current = this.#checkedRoot();
    const created: string[] = [];
    try {
      for (const [i, segment] of segments.entries()) {
        const named = segments.slice(0, i + 1);
        let next = this.#stepInto(current, segment, named);
        if (next === null) {
          this.#assertPathFits(current.path, [segment], named);
          const path = join(current.path, segment);
          const claim = await this.space.reserveDirectory();
          let made = false;
          try {
            Deno.mkdirSync(path);
            made = true;
          } catch (err) {
            if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
          } finally {
            if (made) claim.commit(0);
            else claim.release();
          }
          next = this.#stepInto(current, segment, named);
          if (next === null) throw new FtsError("NOT_FOUND", `${quote(named)} vanished`);
          if (made) {
            created.push(next.path);
            this.#assertCreatedIn(current, path, Deno.lstatSync(next.path), named);
            await this.#syncDirectory(current.path);
          }
        }
        current = next;
      }
    } catch (err) {
      this.removeCreated(created);
      throw err;
    }
    return { parent: current, created };
  }

  /**
   * One step down from `current`, a directory already checked, to its entry
   * `segment`, which must be a directory: one lstat, and a link is followed
   * only after checking that it leads inside the root and outside the
   * state directory. Null when there is no such entry.
   */
  #stepInto(current: CheckedDirectory, segment: string, named: string[]): CheckedDirectory | null {
    const next = join(current.path, segment);
    const info = lstatOrNull(next);
    if (info === null) return null;
    if (info.isDirectory) return identityOf(next, info);
    if (!info.isSymlink) throw wrongType(named, "is not a directory");
    const real = Deno.realPathSync(next);
    this.#assertServed(real, named);
    const target = Deno.statSync(real);
    if (!target.isDirectory) throw wrongType(named, "is not a directory");
    return identityOf(real, target);
  }

  /** {@link syncDirectory}, which a file system in memory does not need. */
  async #syncDirectory(path: string): Promise<void> {
    if (!this.syncsInMemory) await syncDirectory(path);
  }
}

/** How an upload is to be stored. */
export interface UploadOptions {
  size: number;
  overwrite: boolean;
  /** Keep the data as a partial if the upload breaks. */
  resumable: boolean;
  /** Start from a partial a broken upload left, if there is one. */
  resume: boolean;
  /** Modification time for the published file, ms since the epoch. */
  mtime?: number;
}

/** Everything a pending upload knows about itself. */
interface UploadState extends UploadOptions {
  tmpPath: string;
  partialPath: string;
  segments: string[];
  reservation: SpaceReservation;
  /** Bytes already held from a resumed upload. */
  offset: number;
}

/** An upload being written to a temporary file. */
export class PendingUpload {
  readonly #storage: Storage;
  readonly #file: Deno.FsFile;
  readonly #state: UploadState;
  #closed = false;

  constructor(storage: Storage, file: Deno.FsFile, state: UploadState) {
    this.#storage = storage;
    this.#file = file;
    this.#state = state;
  }

  /** Bytes already held from a resumed upload: the client sends the rest. */
  get offset(): number {
    return this.#state.offset;
  }

  /** Feeds the bytes already held (a resumed upload's first part) to `sink`, in order. */
  async readHeld(sink: (chunk: Uint8Array) => void): Promise<void> {
    if (this.#state.offset === 0) return;
    using file = await Deno.open(this.#state.tmpPath, { read: true });
    for await (const chunk of file.readable) sink(chunk);
  }

  /** Appends a chunk of file data. */
  async write(chunk: Uint8Array): Promise<void> {
    await writeAll(fileSink(this.#file, chunk.length), chunk);
  }

  /**
   * Makes the upload durable and visible: fsync the data, move it onto its name
   * (atomically: readers see the old file or the new one, never a mixture),
   * fsync the directory. Without overwrite, a name that appeared meanwhile is
   * refused with EXISTS rather than replaced.
   */
  async publish(): Promise<void> {
    const { tmpPath, segments, reservation, mtime } = this.#state;
    if (mtime !== undefined) this.#file.utimeSync(new Date(), new Date(mtime));
    // A file system in memory has no stable storage to wait for: its fsync
    // returns at once, and handing it to a thread would cost more.
    const durable = !this.#storage.syncsInMemory;
    if (durable) await this.#file.sync();
    const written = this.#file.statSync();
    this.#close();
    const { parent, created } = await this.#storage.makeParentDirectories(segments);
    try {
      const target = join(parent.path, segments.at(-1)!);
      // From here to the rename nothing awaits: what is replaced is what was measured.
      const replaced = lstatOrNull(target);
      const replacedBytes = replaced ? entryBytes(replaced) : 0;
      if (this.#state.overwrite) {
        reservation.assertFits(replacedBytes);
        Deno.renameSync(tmpPath, target);
        this.#storage.assertPublished(parent, target, written, segments, () => {
          Deno.renameSync(target, tmpPath);
        });
        reservation.commit(replacedBytes);
      } else {
        // link() fails if the name exists, where rename() would replace it.
        try {
          Deno.linkSync(tmpPath, target);
        } catch (err) {
          if (err instanceof Deno.errors.AlreadyExists) {
            throw new FtsError("EXISTS", `${quote(segments)} already exists`);
          }
          throw err;
        }
        this.#storage.assertPublished(parent, target, written, segments, () => {
          Deno.removeSync(target);
        });
        Deno.removeSync(tmpPath);
        reservation.commit(0);
      }
    } catch (err) {
      this.#storage.removeCreated(created);
      throw err;
    }
    if (durable) await syncDirectory(parent.path);
  }

  /** Throws the upload away; safe to call more than once and after a failed publish. */
  async discard(): Promise<void> {
    this.#close();
    this.#state.reservation.release();
    await Deno.remove(this.#state.tmpPath).catch(() => {});
  }

  /**
   * The upload broke off: keep what arrived, out of sight, for a resume
   * (a resumable upload), or throw it away.
   */
  async interrupted(): Promise<void> {
    if (!this.#state.resumable) return await this.discard();
    this.#close();
    this.#state.reservation.release();
    // Its bytes now count as held, against the quota, until resumed or expired.
    this.#storage.keepPartial(this.#state.tmpPath, this.#state.partialPath);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** What {@link Storage.makeParentDirectories} made. */
export interface MadeDirectories {
  /** The upload's parent directory, checked. */
  parent: CheckedDirectory;
  /** The directories created, outermost first. */
  created: string[];
}

function identityOf(path: string, info: Deno.FileInfo): CheckedDirectory {
  return { path, dev: info.dev, ino: info.ino ?? -1 };
}

function sameIdentity(
  a: { dev: number; ino: number | null },
  b: { dev: number; ino: number | null },
) {
  return a.dev === b.dev && a.ino === b.ino && a.ino !== null;
}

const encoder = new TextEncoder();

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function entryOf(name: string, info: Deno.FileInfo): Entry {
  const type = info.isFile ? "file" : info.isDirectory ? "dir" : info.isSymlink ? "link" : "other";
  return { name, type, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
}

function wrongType(segments: string[], what: string): FtsError {
  return new FtsError("WRONG_TYPE", `${quote(segments)} ${what}`);
}

function quote(segments: string[]): string {
  return JSON.stringify(segments.join("/"));
}

/** The partial file's name for an upload: one per name and size. */
function partialKey(segments: string[], size: number): string {
  return `${createHash("sha256").update(segments.join("/")).digest("hex")}-${size}`;
}

/**
 * Warnings for each directory above `root` (a resolved absolute path), up to
 * `/`, that users other than its owner may write without the sticky bit: any
 * of them could rename the way to the root aside and put a directory of their
 * own in its place. The sticky bit (as on /tmp) lets only an entry's owner
 * move it. (The root itself is {@link Storage.open}'s to warn about.) Call it
 * before the sandbox starts: the server's worker may not read above the root.
 *
 * @example
 * ```ts
 * import { openAncestorWarnings } from "./storage.ts";
 * // One line per directory above /srv/files that others may write without the sticky bit.
 * for (const warning of openAncestorWarnings("/srv/files")) console.error(warning);
 * ```
 */
export function openAncestorWarnings(root: string): string[] {
  const warnings: string[] = [];
  for (let dir = dirname(root);; dir = dirname(dir)) {
    let mode = 0;
    try {
      mode = Deno.lstatSync(dir).mode ?? 0;
    } catch {
      // Not ours to see (a directory we may pass but not stat): nothing to say about it.
    }
    if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
      warnings.push(
        `${dir}, above the served directory, is writable by others without the sticky bit: ` +
          "any local user can move the way to the served directory aside and put another in " +
          "its place (chmod o-w, or +t)",
      );
    }
    if (dirname(dir) === dir) return warnings;
  }
}
