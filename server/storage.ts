/**
 * The only code that touches the served root: an index of the root's
 * operations (list, stat, download, upload, mkdir, rename, remove), each a few
 * steps over the modules that hold one concept each. containment.ts checks
 * that every path resolves inside the root (and catches a directory swapped
 * for a link after the fact); path_limits.ts keeps paths within what the
 * system takes; pending_upload.ts is an upload's temporary file;
 * partials.ts the data broken uploads keep for a resume; space.ts the budget.
 *
 * Several workers may serve one root ({@link SharedRootState}): the first
 * opens it ({@link Storage.open}: lock, clean-up, measure), the others attach
 * to it ({@link Storage.attach}). Every step that measures the root, changes
 * it and counts the change holds the root's step lock (shared_lock.ts), so
 * that the steps of different workers never interleave, as the steps of one
 * worker's sessions never did.
 *
 * @module
 */

import { join } from "node:path";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import { syncDirectory } from "../io/sync_directory.ts";
import { FtsError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { STATE_DIR_NAME } from "../protocol/names.ts";
import { lstatOrNull, quote, wrongType } from "./_storage_common.ts";
import {
  assertCreatedIn,
  assertUnchanged,
  type CheckedDirectory,
  identityOf,
  type MadeDirectories,
  removeCreated,
  sameIdentity,
  ServedRoot,
} from "./containment.ts";
import { CreationJournal } from "./creation_journal.ts";
import { entryBytes } from "./entry_cost.ts";
import { logEvent } from "./log.ts";
import {
  type DroppedPartials,
  HeldPartials,
  inFlightKey,
  type ListedPartial,
  RECOVERABLE_UPLOAD_MIN_BYTES,
  type Recovered,
} from "./partials.ts";
import { assertPathFits, DirectoryMoves } from "./path_limits.ts";
import { PendingUpload, type UploadOptions } from "./pending_upload.ts";
import { rootWarnings } from "./root_warnings.ts";
import { SharedLock } from "./shared_lock.ts";
import { newServerId, SERVERS_DIR, SERVERS_TMP_DIR } from "./server_lease.ts";
import { SpaceBudget, type SpaceLimits, type SpaceReservation } from "./space.ts";
import { openCreated } from "./open_created.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import { localDirectoryDigests } from "./local_digests.ts";
import type { DirectoryDigests, Store } from "./store.ts";

/** Where broken resumable uploads wait to be resumed: inside root, never listed. */
const PARTIAL_DIR = join(STATE_DIR_NAME, "partial");

/** Where the names of partials are kept (partial_names.ts), made with the first. */
const PARTIAL_NAMES_DIR = join(STATE_DIR_NAME, "partial-names");

/**
 * Held locked (flock) while a server serves the root: shared, since any
 * number of servers may serve one root (server_lease.ts); servers from
 * before shared roots hold it exclusively, so that one of those and one of
 * these never serve a root together (their temporaries are laid out apart).
 */
const LOCK_FILE = join(STATE_DIR_NAME, "lock");
/**
 * The file every server on the root locks (flock, exclusively) around a
 * step that replaces or removes a name it checked: a publish that replaces a
 * file, a rename, a delete. The version a replacing upload checks
 * (`ifUnchanged`) is then still the one it replaces, a delete frees what it
 * measured, and a move takes away only what it moved, whichever server, on
 * whichever host sharing the root, steps next. (A publish without
 * overwrite needs no lock: its link fails on a name taken.) The step lock
 * holds the same between the workers of one server.
 */
export const REPLACE_LOCK_FILE = join(STATE_DIR_NAME, "replace.lock");

/**
 * How many entries a listing stats before letting other sessions run: a
 * stat of a cached inode takes microseconds, so a batch holds the server
 * for a few milliseconds at most.
 */
const LIST_STAT_BATCH = 1000;

/** An open file ready to be streamed to a client. */
export interface FileForDownload {
  /** The file, open for reading; the caller closes it. */
  file: Deno.FsFile;
  /** Its size in bytes when opened. */
  size: number;
  /** Its modification time, ms since the epoch. */
  mtime: number;
  /** Its permission bits. */
  mode: number;
  /** What the open file's stat said (inode, change time: what a kept digest is checked against). */
  info: Deno.FileInfo;
}

/**
 * What the workers serving one root share, in shared memory: made once by
 * the main thread and posted to each (structured-cloneable). Several servers
 * on one root share what must hold across them on the file system instead:
 * the space budget's counts in its ledger (space_ledger.ts), the publishes
 * that replace under `.fts/replace.lock`.
 */
export interface SharedRootState {
  /** The step lock (shared_lock.ts). */
  stepLock: SharedArrayBuffer;
  /** The server's own cells of the space budget (space.ts): its last measurement of free space. */
  space: SharedArrayBuffer;
  /** Entries created while directory moves measure (creation_journal.ts). */
  journal: SharedArrayBuffer;
  /**
   * The root's and its temporary directory's device and inode when the
   * first worker opened it: the others serve that root or none.
   */
  identities: SharedArrayBuffer;
  /** The server these workers make up, among the servers of the root (server_lease.ts). */
  server: ServerPlace;
}

/** A server among those serving one root (server_lease.ts). */
export interface ServerPlace {
  /** Its id: its temporaries are in `.fts/tmp/ID/`. */
  id: string;
  /** The servers whose lease had expired when it started: it takes over their temporaries. */
  expired: string[];
}

/** Access to one served root. */
export class Storage implements Store {
  /** The root, as a resolved absolute path. */
  readonly root: string;
  readonly #served: ServedRoot;
  readonly #tmpDir: string;
  /** The root's step lock: each step that measures, changes and counts the root holds it. */
  readonly #stepLock: SharedLock;
  readonly #shared: SharedRootState;
  readonly #partials: HeldPartials;
  /** Directory moves measuring their subtrees, told of every entry made meanwhile. */
  readonly #moves: DirectoryMoves;
  #space: SpaceBudget | null = null;
  /** The temporary directory's identity, checked after a temporary file is created in it. */
  #tmpIdentity: CheckedDirectory | null = null;
  /** The lock file, held locked (flock) by the server that opened the root. */
  #lock: Deno.FsFile | null = null;
  /** Warnings about the root found at start (also logged), such as a world-writable root. */
  readonly warnings: string[] = [];
  /**
   * The root is on a file system in memory (tmpfs, ramfs), where fsync has
   * nothing to write: small uploads are then synced in place. Elsewhere an
   * fsync may wait for the disk, and runs off the event loop.
   */
  syncsInMemory = false;
  /** See {@link REPLACE_LOCK_FILE}; null until the first publish that replaces. */
  #replaceLockFile: Deno.FsFile | null = null;

  private constructor(served: ServedRoot, shared: SharedRootState) {
    this.root = served.root;
    this.#served = served;
    this.#tmpDir = join(served.root, SERVERS_TMP_DIR, shared.server.id);
    this.#shared = shared;
    this.#stepLock = new SharedLock(shared.stepLock);
    this.#partials = new HeldPartials(
      join(served.root, PARTIAL_DIR),
      this.#stepLock,
      join(served.root, PARTIAL_NAMES_DIR),
    );
    this.#moves = new DirectoryMoves(this.#stepLock, new CreationJournal(shared.journal));
  }

  /**
   * Shared state for a root no worker has opened yet: hand it to {@link open},
   * then to each {@link attach}. A server that holds a lease
   * (server_lease.ts) names itself and the servers it takes over in `server`;
   * without, it is a server of its own id that takes over none.
   */
  static allocateShared(server: ServerPlace = { id: newServerId(), expired: [] }): SharedRootState {
    return {
      stepLock: SharedLock.allocate(),
      space: SpaceBudget.allocate(),
      journal: CreationJournal.allocate(),
      identities: new SharedArrayBuffer(4 * Float64Array.BYTES_PER_ELEMENT),
      server,
    };
  }

  /** The root's space budget. */
  get space(): SpaceBudget {
    return this.#space!;
  }

  /**
   * Opens a root given as a resolved absolute path, creating its state
   * directory and this server's temporary directory, and taking over what
   * servers gone before left there: the temporaries of the servers whose
   * lease had expired (`shared.server.expired`) and those a server from
   * before shared roots left directly in `.fts/tmp/`. Those of uploads that
   * recorded their name become partials, for a resume; the rest are removed.
   * Other servers' temporaries are left alone. Refuses a root that a server
   * from before shared roots is serving (it holds the lock exclusively). The
   * lock lasts as long as the process. With `shared`, other workers may then
   * {@link attach} to it: this is done once per server, by its first worker.
   */
  static async open(
    root: string,
    limits: SpaceLimits,
    shared: SharedRootState = Storage.allocateShared(),
  ): Promise<Storage> {
    const stateDir = join(root, STATE_DIR_NAME);
    await Deno.mkdir(stateDir, { recursive: true });
    const storage = new Storage(ServedRoot.open(root, stateDir), shared);
    for (const warning of rootWarnings(root, storage.#served.mode)) {
      storage.warnings.push(warning);
      logEvent({ peer: "-", op: "serve", result: "warning", detail: warning });
    }
    const lock = openCreated(join(root, LOCK_FILE));
    if (!await lock.tryLock(false)) {
      lock.close();
      throw new Error(
        `an fts server that cannot share its root (an earlier version) is serving ${root}`,
      );
    }
    storage.#lock = lock;
    // Made now, not at the first step that takes it: what the root holds then stays as it was.
    storage.#replaceLock();
    await Deno.mkdir(storage.#partials.dir, { recursive: true });
    const recovered = await storage.#takeOverLeftovers(root, shared.server);
    if (recovered.count > 0) {
      logEvent({
        peer: "-",
        op: "serve",
        result: "ok",
        detail:
          `kept ${recovered.count} upload(s) in flight when a server last stopped, for a resume`,
      });
    }
    await Deno.mkdir(storage.#tmpDir);
    storage.#tmpIdentity = identityOf(storage.#tmpDir, Deno.lstatSync(storage.#tmpDir));
    new Float64Array(shared.identities).set([
      ...identityCells(storage.#served.checkedRoot()),
      ...identityCells(storage.#tmpIdentity),
    ]);
    // Open before the sweep, so that what it removes comes off what the ledger counts.
    storage.#space = await SpaceBudget.open(
      root,
      limits,
      { stateDir, partialDir: storage.#partials.dir },
      { counts: shared.space, lock: storage.#stepLock, serverId: shared.server.id },
      { expired: shared.server.expired, recoveredBytes: recovered.bytes },
    );
    storage.#partials.budget = storage.#space;
    await storage.sweepExpiredPartials(Date.now());
    await storage.#partials.removeStaleNames(await inFlightKeys(join(root, SERVERS_TMP_DIR)));
    storage.syncsInMemory = await isInMemoryFileSystem(root);
    return storage;
  }

  /**
   * Serves a root another worker of this server has {@link open}ed with
   * `shared`, as it is: no lock of its own, no clean-up, no measure (its
   * budget is the shared one). Refuses a root whose path no longer leads to
   * the directory the first worker opened.
   */
  static async attach(
    root: string,
    limits: SpaceLimits,
    shared: SharedRootState,
  ): Promise<Storage> {
    const storage = new Storage(ServedRoot.open(root, join(root, STATE_DIR_NAME)), shared);
    const tmpInfo = Deno.lstatSync(storage.#tmpDir);
    storage.#tmpIdentity = identityOf(storage.#tmpDir, tmpInfo);
    const opened = [...new Float64Array(shared.identities)];
    const found = [
      ...identityCells(identityOf(root, Deno.lstatSync(root))),
      ...identityCells(storage.#tmpIdentity),
    ];
    if (!tmpInfo.isDirectory || opened.some((cell, i) => cell !== found[i])) {
      throw new Error(`${root} was moved or replaced while the server started`);
    }
    // The first worker swept just now.
    storage.#partials.beginSweep(Date.now());
    storage.#space = new SpaceBudget(root, limits, join(root, STATE_DIR_NAME), {
      counts: shared.space,
      lock: storage.#stepLock,
      serverId: shared.server.id,
    });
    storage.#partials.budget = storage.#space;
    storage.syncsInMemory = await isInMemoryFileSystem(root);
    return storage;
  }

  /** The state this root shares with the other workers serving it. */
  get shared(): SharedRootState {
    return this.#shared;
  }

  /**
   * Takes over the temporaries of the servers gone before (see {@link open}):
   * the recorded uploads among them become partials, the rest are removed,
   * then each expired server's directory and its lease. Another server
   * starting at the same time may take over the same ones: whichever moves
   * or removes a file first does, and the other finds it gone.
   */
  async #takeOverLeftovers(root: string, server: ServerPlace): Promise<Recovered> {
    const tmpRoot = join(root, SERVERS_TMP_DIR);
    await Deno.mkdir(tmpRoot, { recursive: true });
    // Left by a server from before shared roots: files directly in the directory.
    const recovered = await this.#partials.recoverInFlight(tmpRoot);
    for await (const entry of Deno.readDir(tmpRoot)) {
      if (!entry.isDirectory) await removeGone(join(tmpRoot, entry.name));
    }
    for (const id of server.expired) {
      const dir = join(tmpRoot, id);
      const { count, bytes } = await this.#partials.recoverInFlight(dir).catch((err) => {
        if (err instanceof Deno.errors.NotFound) return { count: 0, bytes: 0 };
        throw err;
      });
      recovered.count += count;
      recovered.bytes += bytes;
      await removeGone(dir);
      await removeGone(join(root, SERVERS_DIR, id));
      await removeGone(join(root, SERVERS_DIR, `${id}.lock`));
    }
    return recovered;
  }

  /** Lets another server serve the root (releases the lock); this one must not be used after. */
  close(): void {
    this.#lock?.close();
    this.#lock = null;
    this.#space?.close();
    this.#space = null;
    this.#replaceLockFile?.close();
    this.#replaceLockFile = null;
  }

  /** Lists a directory (or describes one file), hiding the server's state directory. */
  async list(segments: string[]): Promise<Entry[]> {
    const real = this.#served.resolveExisting(segments);
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
    return entryOf(segments.at(-1)!, this.fileInfo(segments));
  }

  /** What lstat says of one entry (inode and change time included), without following a final link. */
  fileInfo(segments: string[]): Deno.FileInfo {
    const parent = this.#served.resolveExisting(segments.slice(0, -1));
    return Deno.lstatSync(join(parent, segments.at(-1)!));
  }

  /**
   * Opens a regular file for reading. The handle is checked to be the file the
   * resolved name leads to, so a link swapped in meanwhile is refused.
   */
  async openForDownload(segments: string[]): Promise<FileForDownload> {
    const real = this.#served.resolveExisting(segments);
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
        info: opened,
      };
    } catch (err) {
      file.close();
      throw err;
    }
  }

  /** The digests of directory `dir`'s files, kept in the state directory (local_digests.ts). */
  directoryDigests(dir: string[], checksum: ChecksumName): Promise<DirectoryDigests> {
    return localDirectoryDigests(this, dir, checksum);
  }

  /**
   * Starts an upload into a temporary file in the state directory; with
   * `resume`, from the data a broken upload of the same name and size left.
   * Nothing is visible under `segments` until {@link PendingUpload.publish}.
   */
  async beginUpload(segments: string[], options: UploadOptions): Promise<PendingUpload> {
    assertPathFits(this.root, segments);
    await this.sweepExpiredPartials(Date.now());
    const parent = this.#served.existingParent(segments);
    if (parent !== null) assertPathFits(parent.path, segments.slice(-1), segments);
    const existing = parent === null ? null : lstatOrNull(join(parent.path, segments.at(-1)!));
    if (existing?.isDirectory) throw wrongType(segments, "is a directory");
    if (existing && !options.overwrite) {
      throw new FtsError("EXISTS", `${quote(segments)} already exists`);
    }
    const name = { segments, size: options.size };
    // Only an upload this large is to survive a restart of the server: it records its name.
    const recoverable = options.resumable && options.size >= RECOVERABLE_UPLOAD_MIN_BYTES;
    const tmpPath = join(this.#tmpDir, this.#partials.temporaryName(name, recoverable));
    const partialPath = this.#partials.pathFor(segments, options.size);
    // Take the partial data over first (a rename, so two resumers never
    // share it): its bytes are counted already and need no new room.
    const offset = options.resume ? this.#partials.take(partialPath, tmpPath, options.size) : 0;
    let reservation: SpaceReservation;
    try {
      reservation = await this.space.reserve(options.size, {
        replacingBytes: existing ? entryBytes(existing) : 0,
        heldBytes: offset,
      });
    } catch (err) {
      // Put the partial back, for a resume that fits later.
      if (offset > 0) this.#partials.keep(tmpPath, partialPath, offset);
      throw err;
    }
    if (recoverable) this.#partials.recordInFlight(name);
    return await PendingUpload.create(this, this.#tmpIdentity!, {
      ...options,
      tmpPath,
      partialPath,
      segments,
      reservation,
      offset,
      makesDirectories: parent === null,
      recoverable,
    });
  }

  /**
   * Called by {@link PendingUpload.interrupted}: keeps what `tmpPath` holds as
   * the partial at `partialPath` (nothing, for an upload cut off before its
   * first byte), counted against the quota until resumed or expired, with
   * its upload's `segments` and `size` beside it for listing.
   */
  keepPartial(tmpPath: string, partialPath: string, segments: string[], size: number): void {
    this.#partials.keepInterrupted(tmpPath, partialPath, { segments, size });
  }

  /** Called when an upload that recorded its name ends: see {@link HeldPartials.releaseName}. */
  releasePartialName(partialPath: string): void {
    this.#partials.releaseName(partialPath);
  }

  /** The partials held for resumes whose names are known, sorted by name, then size. */
  async listPartials(): Promise<ListedPartial[]> {
    this.#served.checkedRoot();
    return await this.#partials.list(Date.now());
  }

  /**
   * Removes the partials held for `segments` (of `size` bytes, or of any
   * size when null), freeing their space; NOT_FOUND when none is held.
   */
  async dropPartials(segments: string[], size: number | null): Promise<DroppedPartials> {
    this.#served.checkedRoot();
    const dropped = await this.#partials.drop(segments, size);
    if (dropped.count === 0) {
      const sized = size === null ? "" : ` of ${size} bytes`;
      throw new FtsError(
        "NOT_FOUND",
        `no data of an interrupted upload${sized} is held for ${quote(segments)}`,
      );
    }
    return dropped;
  }

  /**
   * Bytes kept from a broken upload of `segments` with `size` bytes, which an
   * upload with `resume` would continue from; 0 when there are none or they expired.
   */
  heldBytes(segments: string[], size: number): number {
    this.#served.checkedRoot();
    return this.#partials.heldBytes(segments, size);
  }

  /** Removes broken uploads' data older than `PARTIAL_EXPIRY_MS` (protocol/limits.ts). */
  async removeExpiredPartials(nowMs = Date.now()): Promise<void> {
    this.#served.checkedRoot();
    await this.#partials.removeExpired(nowMs);
  }

  /**
   * Removes expired partials unless the last sweep was less than
   * `PARTIAL_SWEEP_INTERVAL_MS` before `nowMs`; returns whether it swept.
   * Uploads are what leave partials, so checking as each one begins keeps pace
   * with them without a timer.
   */
  async sweepExpiredPartials(nowMs: number): Promise<boolean> {
    if (!this.#partials.beginSweep(nowMs)) return false;
    await this.removeExpiredPartials(nowMs);
    return true;
  }

  /**
   * Creates a directory, and any missing parents; EXISTS if the name is
   * taken. Each directory made costs `ENTRY_BYTES` (entry_cost.ts), all of them
   * claimed at once against the quota and the reserve before any is made.
   * On failure the parents it created are removed again.
   */
  async mkdir(segments: string[]): Promise<void> {
    assertPathFits(this.root, segments);
    await this.#makeDirectories(segments, true);
  }

  /**
   * Sets the permission bits of a file or directory (the entry a final link
   * leads to, inside the root; links leading out are refused as everywhere).
   */
  chmod(segments: string[], mode: number): void {
    Deno.chmodSync(this.#served.resolveExisting(segments), mode);
  }

  /** The directory a rename's target goes into; NOT_FOUND naming it (not the source) if missing. */
  #existingTargetDirectory(to: string[]): CheckedDirectory {
    try {
      return this.#served.checkedExisting(to.slice(0, -1));
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      throw new FtsError(
        "NOT_FOUND",
        `the directory ${quote(to.slice(0, -1))} of the new name ${quote(to)} does not exist`,
      );
    }
  }

  /**
   * Renames within the root; EXISTS if `to` is taken and `overwrite` is not
   * set. A rename onto the same file (the same name, or another hard link to
   * it) changes nothing, as rename(2) does, and frees nothing. A directory
   * is moved only if every path in it still fits the system's limit where
   * it lands; otherwise BAD_NAME, before anything moves. That measure lets
   * other sessions run (see {@link DirectoryMoves}): what it checked of the
   * source and the target is checked again as it lands.
   */
  async rename(from: string[], to: string[], overwrite: boolean): Promise<void> {
    assertPathFits(this.root, from);
    assertPathFits(this.root, to);
    const fromParent = this.#served.checkedExisting(from.slice(0, -1));
    const toParent = this.#existingTargetDirectory(to);
    assertPathFits(toParent.path, to.slice(-1), to);
    const source = join(fromParent.path, from.at(-1)!);
    const target = join(toParent.path, to.at(-1)!);
    const moving = lstatOrNull(source);
    if (moving === null) {
      throw new FtsError("NOT_FOUND", `no such file or directory: ${quote(from)}`);
    }
    // What `target` holds: EXISTS, or the entry replaced (null if none), or
    // "same" if there is nothing to move. Checked before a measure, so that
    // a refusal costs no walk, and again as it lands.
    const replacing = () => {
      const existing = lstatOrNull(target);
      if (existing && !overwrite) {
        throw new FtsError("EXISTS", `${quote(to)} already exists`);
      }
      if (source === target || (existing !== null && sameIdentity(existing, moving))) return "same";
      // What rename(2) would refuse, said of the name that stands in the way: the target.
      if (existing?.isDirectory && !moving.isDirectory) {
        throw new FtsError("WRONG_TYPE", `${quote(to)} is a directory: a file cannot replace it`);
      }
      if (existing && !existing.isDirectory && moving.isDirectory) {
        throw new FtsError(
          "WRONG_TYPE",
          `${quote(to)} is not a directory: a directory cannot replace it`,
        );
      }
      if (existing?.isDirectory && !isEmptyDirectory(target)) {
        throw new FtsError("NOT_EMPTY", `${quote(to)} is a directory that is not empty`);
      }
      return existing;
    };
    // What it replaces, and what it takes from its old name, no other server's step changes between.
    const land = () => this.#acrossServers(landChecked);
    const landChecked = () => {
      const now = lstatOrNull(source);
      if (now === null || !sameIdentity(now, moving)) {
        throw new FtsError("NOT_FOUND", `${quote(from)} was moved or removed meanwhile`);
      }
      const existing = replacing();
      if (existing === "same") return false;
      // From these checks to the move nothing awaits, and the locks are held; without
      // overwrite, the move itself refuses a name another server's upload took since.
      let linked = false;
      if (overwrite) Deno.renameSync(source, target);
      else linked = moveOnlyOntoNothing(source, target, moving, to);
      this.#moves.entryCreated(target);
      assertCreatedIn(toParent, target, moving, to, () => {
        // Moved back where it came from, if that path still leads there.
        if (linked) Deno.removeSync(target);
        else Deno.renameSync(target, source);
      });
      // The old name goes only while it is still the file linked.
      const left = linked ? lstatOrNull(source) : null;
      if (left !== null && sameIdentity(left, moving)) Deno.removeSync(source);
      assertUnchanged(fromParent, from);
      if (existing) this.space.freed(entryBytes(existing));
      return true;
    };
    if (replacing() === "same") return;
    const moved = moving.isDirectory
      ? await this.#moves.moveWhenFits(source, target, to, land)
      : this.#stepLock.hold(land);
    if (!moved) return;
    await this.#syncDirectory(toParent.path);
    if (toParent.path !== fromParent.path) await this.#syncDirectory(fromParent.path);
  }

  /** Removes a file, a link, or an empty directory. */
  async remove(segments: string[]): Promise<void> {
    const parent = this.#served.resolveExisting(segments.slice(0, -1));
    // (A directory on the way swapped for a link between this check and the
    // unlink would aim the unlink elsewhere: Deno has no unlinkat.)
    const target = join(parent, segments.at(-1)!);
    this.#stepLock.hold(() =>
      this.#acrossServers(() => {
        const info = Deno.lstatSync(target);
        Deno.removeSync(target);
        this.space.freed(entryBytes(info));
      })
    );
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
      assertPathFits(made.parent.path, segments.slice(-1), segments);
    } catch (err) {
      this.removeCreated(made.created);
      throw err;
    }
    return made;
  }

  /**
   * Runs `place`, a step that puts a file at `target` (a publish: measure
   * what it replaces, place it, count it), as one step on the root: holding
   * the step lock, and telling directory moves of `target`. A step that may
   * replace a file (`replacing`) also holds {@link REPLACE_LOCK_FILE}, so that
   * no other server replaces it in between.
   */
  placeAtomically(target: string, place: () => void, replacing = false): void {
    this.#stepLock.hold(() => {
      if (replacing) this.#acrossServers(place);
      else place();
      this.#moves.entryCreated(target);
    });
  }

  /** Runs `step` holding {@link REPLACE_LOCK_FILE}: no other server's step that replaces or removes a name runs meanwhile. */
  #acrossServers<T>(step: () => T): T {
    const lock = this.#replaceLock();
    lock.lockSync(true);
    try {
      return step();
    } finally {
      lock.unlockSync();
    }
  }

  /** The open {@link REPLACE_LOCK_FILE}, opened at the first step that takes it. */
  #replaceLock(): Deno.FsFile {
    // Every server on the root may open it first at the same moment (see openCreated).
    this.#replaceLockFile ??= openCreated(join(this.root, REPLACE_LOCK_FILE));
    return this.#replaceLockFile;
  }

  /**
   * Removes directories a failed operation created, innermost first; only
   * empty ones, best effort. Each one removed gives its `ENTRY_BYTES` back.
   */
  removeCreated(created: string[]): void {
    this.#stepLock.hold(() => removeCreated(created, this.space));
  }

  /** {@link ServedRoot.makeDirectories} under this root's budget. */
  #makeDirectories(segments: string[], lastMustBeNew = false): Promise<MadeDirectories> {
    return this.#served.makeDirectories(segments, {
      space: this.space,
      syncDirectory: (path) => this.#syncDirectory(path),
      makeDirectory: (path) =>
        this.#stepLock.hold(() => {
          Deno.mkdirSync(path);
          this.#moves.entryCreated(path);
        }),
      lastMustBeNew,
    });
  }

  /** {@link syncDirectory}, which a file system in memory does not need. */
  async #syncDirectory(path: string): Promise<void> {
    if (!this.syncsInMemory) await syncDirectory(path);
  }
}

/** Removes a file or a tree; one gone already (another server took it over first) is fine. */
async function removeGone(path: string): Promise<void> {
  // A tree another server removes at the same time may lose an entry under this walk: walk again.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await Deno.remove(path, { recursive: true });
      return;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      if (attempt === 2) throw err;
    }
  }
}

/**
 * The partial keys of the uploads in flight in every server's temporary
 * directory under `tmpRoot`: their name files must stay.
 */
async function inFlightKeys(tmpRoot: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const server of Deno.readDir(tmpRoot)) {
    if (!server.isDirectory) continue;
    try {
      for await (const entry of Deno.readDir(join(tmpRoot, server.name))) {
        const key = inFlightKey(entry.name);
        if (key !== null) keys.add(key);
      }
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return keys;
}

/** A directory's identity as cells of {@link SharedRootState.identities}. */
function identityCells(directory: CheckedDirectory): [number, number] {
  return [directory.dev, directory.ino];
}

function entryOf(name: string, info: Deno.FileInfo): Entry {
  const type = info.isFile ? "file" : info.isDirectory ? "dir" : info.isSymlink ? "link" : "other";
  return { name, type, size: info.size, mtime: info.mtime?.getTime() ?? 0 };
}

/** Whether the directory at `path` holds nothing. */
function isEmptyDirectory(path: string): boolean {
  for (const _ of Deno.readDirSync(path)) return false;
  return true;
}

/**
 * Moves `source` (an entry like `moving`) onto `target` only if nothing is
 * there, even an entry another server's upload made this instant, or throws
 * EXISTS naming `to`. Called holding {@link REPLACE_LOCK_FILE}, so that only
 * uploads without overwrite (which take no lock: their link fails on a name
 * taken) can race it:
 * - a file is hard-linked there (link(2) fails on a name taken), and true is
 *   returned: the caller removes its old name once the new one is checked.
 *   Where the system refuses the link (`fs.protected_hardlinks`, a file of
 *   another user) it is renamed there after the check instead, and an
 *   upload without overwrite landing between the two is replaced;
 * - a directory is renamed onto an empty directory made there for it
 *   (mkdir(2) fails on a name taken; the rename fails if another server put
 *   something into it meanwhile, and then the empty directory goes, if it is
 *   still the one made), and false is returned.
 * Not a check followed by a rename, but for the refused link.
 */
function moveOnlyOntoNothing(
  source: string,
  target: string,
  moving: Deno.FileInfo,
  to: string[],
): boolean {
  const taken = () => new FtsError("EXISTS", `${quote(to)} already exists`);
  try {
    if (moving.isDirectory) Deno.mkdirSync(target);
    else Deno.linkSync(source, target);
  } catch (err) {
    if (err instanceof Deno.errors.AlreadyExists) throw taken();
    if (moving.isDirectory || !(err instanceof Deno.errors.PermissionDenied)) throw err;
    Deno.renameSync(source, target);
    return false;
  }
  if (!moving.isDirectory) return true;
  const made = Deno.lstatSync(target);
  try {
    Deno.renameSync(source, target);
  } catch (err) {
    const now = lstatOrNull(target);
    try {
      // Only the empty directory made here: rmdir(2) refuses one with entries.
      if (now?.isDirectory && sameIdentity(now, made)) Deno.removeSync(target);
    } catch {
      // Another server's entries are in it now: it is theirs.
    }
    const code = (err as { code?: string }).code;
    if (code === "ENOTEMPTY" || code === "EEXIST") throw taken();
    throw err;
  }
  return false;
}
