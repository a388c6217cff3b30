/**
 * The only code that touches the served root. Every path it opens is built
 * from validated segments and checked to resolve inside the root: Deno's
 * permissions stop anything outside root by path, and these checks stop links
 * inside root that lead out of it.
 *
 * @module
 */

import { join, sep } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import { SpaceBudget, type SpaceLimits, type SpaceReservation } from "./space.ts";

/** Where uploads are written until they are published: inside root, never listed. */
const TMP_DIR = join(STATE_DIR_NAME, "tmp");

/** Held locked (flock) while a server serves the root, so that two servers never share one. */
const LOCK_FILE = join(STATE_DIR_NAME, "lock");

/** How many entries a listing stats at once: enough to overlap the syscalls, few enough to stay light. */
const LIST_STAT_CONCURRENCY = 64;

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

/** Access to one served root. */
export class Storage {
  /** The root, as a resolved absolute path. */
  readonly root: string;
  readonly #stateDir: string;
  readonly #tmpDir: string;
  #space: SpaceBudget | null = null;

  private constructor(root: string) {
    this.root = root;
    this.#stateDir = join(root, STATE_DIR_NAME);
    this.#tmpDir = join(root, TMP_DIR);
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
    const lock = await Deno.open(join(root, LOCK_FILE), { write: true, create: true });
    if (!await lock.tryLock(true)) {
      lock.close();
      throw new Error(`another fts server is already serving ${root}`);
    }
    await Deno.remove(storage.#tmpDir, { recursive: true }).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    });
    await Deno.mkdir(storage.#tmpDir, { recursive: true });
    storage.#space = await SpaceBudget.open(root, limits, storage.#stateDir);
    return storage;
  }

  /** Lists a directory (or describes one file), hiding the server's state directory. */
  async list(segments: string[]): Promise<Entry[]> {
    const real = await this.#resolveExisting(segments);
    const info = await Deno.stat(real);
    if (!info.isDirectory) return [entryOf(segments.at(-1) ?? "", info)];
    const names: string[] = [];
    for await (const entry of Deno.readDir(real)) {
      if (real === this.root && entry.name === STATE_DIR_NAME) continue;
      names.push(entry.name);
    }
    names.sort();
    const entries: Entry[] = [];
    for (let i = 0; i < names.length; i += LIST_STAT_CONCURRENCY) {
      const batch = names.slice(i, i + LIST_STAT_CONCURRENCY);
      const infos = await Promise.allSettled(batch.map((name) => Deno.lstat(join(real, name))));
      infos.forEach((result, j) => {
        // An entry deleted between readDir and lstat is simply gone.
        if (result.status === "fulfilled") entries.push(entryOf(batch[j]!, result.value));
      });
    }
    return entries;
  }

  /**
   * Opens a regular file for reading. The handle is checked to be the file the
   * resolved name leads to, so a link swapped in meanwhile is refused.
   */
  async openForDownload(segments: string[]): Promise<FileForDownload> {
    const real = await this.#resolveExisting(segments);
    if (!(await Deno.stat(real)).isFile) throw wrongType(segments, "is not a regular file");
    const file = await Deno.open(real, { read: true });
    try {
      const opened = await file.stat();
      const now = await Deno.stat(real);
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
   * Starts an upload: creates the parent directories and a temporary file in
   * the state directory. Nothing is visible under `segments` until
   * {@link PendingUpload.publish}.
   */
  async beginUpload(
    segments: string[],
    overwrite: boolean,
    size: number,
  ): Promise<PendingUpload> {
    const parent = await this.#existingParent(segments);
    const existing = parent === null ? null : await lstatOrNull(join(parent, segments.at(-1)!));
    if (existing?.isDirectory) throw wrongType(segments, "is a directory");
    if (existing && !overwrite) {
      throw new FtsError("EXISTS", `${quote(segments)} already exists (use --force to overwrite)`);
    }
    const reservation = await this.space.reserve(size, existing?.isFile ? existing.size : 0);
    try {
      const tmpPath = join(this.#tmpDir, crypto.randomUUID());
      const file = await Deno.open(tmpPath, { write: true, createNew: true, mode: 0o644 });
      return new PendingUpload(this, file, tmpPath, segments, overwrite, reservation);
    } catch (err) {
      reservation.release();
      throw err;
    }
  }

  /** Removes a file, a link, or an empty directory. */
  async remove(segments: string[]): Promise<void> {
    const parent = await this.#resolveExisting(segments.slice(0, -1));
    const target = join(parent, segments.at(-1)!);
    const info = await Deno.lstat(target);
    await Deno.remove(target);
    if (info.isFile) this.space.freed(info.size);
    await syncDirectory(parent);
  }

  /**
   * Creates the directories an upload's name needs, at publish time so that a
   * failed upload leaves nothing behind; returns the parent, resolved.
   */
  makeParentDirectories(segments: string[]): Promise<string> {
    return this.#makeDirectories(segments.slice(0, -1));
  }

  async #resolveExisting(segments: string[]): Promise<string> {
    const real = await Deno.realPath(join(this.root, ...segments));
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
  async #existingParent(segments: string[]): Promise<string | null> {
    let current = this.root;
    for (const [i, segment] of segments.slice(0, -1).entries()) {
      let real: string;
      try {
        real = await Deno.realPath(join(current, segment));
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      this.#assertServed(real, segments.slice(0, i + 1));
      if (!(await Deno.stat(real)).isDirectory) {
        throw wrongType(segments.slice(0, i + 1), "is not a directory");
      }
      current = real;
    }
    return current;
  }

  /** Creates the directories along `segments` as needed; returns the last one, resolved. */
  async #makeDirectories(segments: string[]): Promise<string> {
    let current = this.root;
    for (const [i, segment] of segments.entries()) {
      const next = join(current, segment);
      try {
        await Deno.mkdir(next);
      } catch (err) {
        if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
      }
      const real = await Deno.realPath(next);
      this.#assertServed(real, segments.slice(0, i + 1));
      if (!(await Deno.stat(real)).isDirectory) {
        throw wrongType(segments.slice(0, i + 1), "is not a directory");
      }
      current = real;
    }
    return current;
  }
}

/** An upload being written to a temporary file. */
export class PendingUpload {
  readonly #storage: Storage;
  readonly #file: Deno.FsFile;
  readonly #tmpPath: string;
  readonly #segments: string[];
  readonly #overwrite: boolean;
  readonly #reservation: SpaceReservation;
  #closed = false;

  constructor(
    storage: Storage,
    file: Deno.FsFile,
    tmpPath: string,
    segments: string[],
    overwrite: boolean,
    reservation: SpaceReservation,
  ) {
    this.#storage = storage;
    this.#reservation = reservation;
    this.#file = file;
    this.#tmpPath = tmpPath;
    this.#segments = segments;
    this.#overwrite = overwrite;
  }

  /** Appends a chunk of file data. */
  async write(chunk: Uint8Array): Promise<void> {
    let written = 0;
    while (written < chunk.length) written += await this.#file.write(chunk.subarray(written));
  }

  /**
   * Makes the upload durable and visible: fsync the data, move it onto its name
   * (atomically: readers see the old file or the new one, never a mixture),
   * fsync the directory. Without overwrite, a name that appeared meanwhile is
   * refused with EXISTS rather than replaced.
   */
  async publish(): Promise<void> {
    await this.#file.sync();
    this.#close();
    const parent = await this.#storage.makeParentDirectories(this.#segments);
    const target = join(parent, this.#segments.at(-1)!);
    if (this.#overwrite) {
      const replaced = await lstatOrNull(target);
      await Deno.rename(this.#tmpPath, target);
      this.#reservation.commit(replaced?.isFile ? replaced.size : 0);
    } else {
      // link() fails if the name exists, where rename() would replace it.
      try {
        await Deno.link(this.#tmpPath, target);
      } catch (err) {
        if (err instanceof Deno.errors.AlreadyExists) {
          throw new FtsError("EXISTS", `${quote(this.#segments)} already exists`);
        }
        throw err;
      }
      await Deno.remove(this.#tmpPath);
      this.#reservation.commit(0);
    }
    await syncDirectory(parent);
  }

  /** Throws the upload away; safe to call more than once and after a failed publish. */
  async discard(): Promise<void> {
    this.#close();
    this.#reservation.release();
    await Deno.remove(this.#tmpPath).catch(() => {});
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/** Fsyncs a directory, so that a rename or unlink in it survives a crash. */
export async function syncDirectory(path: string): Promise<void> {
  if (Deno.build.os === "windows") return; // Windows has no directory fsync.
  const directory = await Deno.open(path, { read: true });
  try {
    await directory.sync();
  } finally {
    directory.close();
  }
}

async function lstatOrNull(path: string): Promise<Deno.FileInfo | null> {
  try {
    return await Deno.lstat(path);
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
