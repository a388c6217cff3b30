/**
 * An upload on its way: a temporary file in the state directory, written as
 * the bytes arrive, then published onto its name (or discarded, or kept as a
 * partial when the upload breaks off). Readers never see a partial file:
 * publishing is a rename (or a link) within one file system.
 *
 * @module
 */

import { join } from "node:path";
import {
  finishWritten,
  hashHeldPrefix,
  NameTakenError,
  placeFile,
  type TransferHash,
  writeToFile,
} from "../io/verified_transfer.ts";
import { commitGroup, type CommitMember } from "../io/commit_group.ts";
import type { FileVersion } from "../protocol/client_messages.ts";
import { FtsError } from "../protocol/errors.ts";
import { lstatOrNull, quote } from "./_storage_common.ts";
import { assertCreatedIn, type CheckedDirectory, type MadeDirectories } from "./containment.ts";
import { entryBytes } from "./entry_cost.ts";
import type { SpaceReservation } from "./space.ts";

/** How an upload is to be stored. */
export interface UploadOptions {
  /** The file's size in bytes, as declared. */
  size: number;
  /** Replace an entry already at the name. */
  overwrite: boolean;
  /** Keep the data as a partial if the upload breaks. */
  resumable: boolean;
  /** Start from a partial a broken upload left, if there is one. */
  resume: boolean;
  /** Modification time for the published file, ms since the epoch. */
  mtime?: number;
  /** Permission bits for the published file; 0o644 (less the umask) when absent. */
  mode?: number;
  /** Replace only this version of the file (see {@link assertUnchanged}); absent, no check. */
  ifUnchanged?: FileVersion;
}

/** Everything a pending upload knows about itself. */
export interface UploadState extends UploadOptions {
  /** The temporary file, in the state directory. */
  tmpPath: string;
  /** Where its data is kept if it breaks off (a resumable upload). */
  partialPath: string;
  /** The name it is published under. */
  segments: string[];
  /** Its claim on space, settled when it is published or discarded. */
  reservation: SpaceReservation;
  /** Bytes already held from a resumed upload. */
  offset: number;
  /**
   * The name's directory was missing when the upload began: publishing it
   * claims space for the directories and makes them.
   */
  makesDirectories: boolean;
  /**
   * The upload recorded its name as it began, to survive a restart of the
   * server (partials.ts): ending, it lets the name go.
   */
  recoverable: boolean;
}

/** What an upload needs of the root it goes into (the root's Storage). */
export interface UploadDestination {
  /** Fsync has nothing to wait for: the root is on a file system in memory. */
  readonly syncsInMemory: boolean;
  /** Creates the directories the name needs, checked; see {@link MadeDirectories}. */
  makeParentDirectories(segments: string[]): Promise<MadeDirectories>;
  /** Removes directories a failed publish created. */
  removeCreated(created: string[]): void;
  /**
   * Runs `place`, which puts the file at `target`, as one step on the root
   * (under the lock the server's workers share), telling directory moves of it.
   */
  placeAtomically(target: string, place: () => void, replacing?: boolean): void;
  /**
   * Keeps what `tmpPath` holds as the partial at `partialPath`, for a
   * resume, named as the upload of `segments` with `size` bytes.
   */
  keepPartial(tmpPath: string, partialPath: string, segments: string[], size: number): void;
  /** An upload that recorded its name (to survive a restart) ended without leaving a partial. */
  releasePartialName(partialPath: string): void;
}

/**
 * An upload being written to a temporary file; once received and verified,
 * a member of its connection's commit group (io/commit_group.ts).
 */
export class PendingUpload implements CommitMember {
  readonly #destination: UploadDestination;
  readonly #file: Deno.FsFile;
  /**
   * The open file's stat when it was created (and checked): its dev/ino,
   * which never change while it is open, are what the name must lead to
   * once published.
   */
  readonly #opened: Deno.FileInfo;
  readonly #state: UploadState;
  #closed = false;
  #nameReleased = false;
  /**
   * Writes a chunk that arrived after the held bytes, in order: a sink for
   * `receiveData` (io/verified_transfer.ts).
   */
  readonly write: (chunk: Uint8Array) => Promise<void>;

  private constructor(
    destination: UploadDestination,
    file: Deno.FsFile,
    opened: Deno.FileInfo,
    state: UploadState,
  ) {
    this.#destination = destination;
    this.#file = file;
    this.#opened = opened;
    this.#state = state;
    this.write = writeToFile(file);
  }

  /**
   * Opens the temporary file at `state.tmpPath` in `tmpDir`: created new, or
   * appended to when it holds a resumed partial's `offset` bytes, and checked
   * to be the file made there (not through a directory swapped meanwhile). On
   * failure the reservation is released and the temporary file removed.
   */
  static async create(
    destination: UploadDestination,
    tmpDir: CheckedDirectory,
    state: UploadState,
  ): Promise<PendingUpload> {
    const { tmpPath, offset, segments } = state;
    try {
      // Readable too: a resumed upload's held bytes are hashed from this handle.
      const file = Deno.openSync(tmpPath, {
        read: true,
        write: true,
        createNew: offset === 0,
        append: offset > 0,
        mode: 0o644,
      });
      let opened: Deno.FileInfo;
      try {
        opened = file.statSync();
        assertCreatedIn(tmpDir, tmpPath, opened, segments);
      } catch (err) {
        file.close();
        throw err;
      }
      return new PendingUpload(destination, file, opened, state);
    } catch (err) {
      state.reservation.release();
      await Deno.remove(tmpPath).catch(() => {});
      if (state.recoverable) destination.releasePartialName(state.partialPath);
      throw err;
    }
  }

  /**
   * Publishing it claims space for the directories its name needs, and makes
   * them: its group is committed before later uploads claim space, as when
   * each upload was published alone, so their claims cannot take that room.
   */
  get makesDirectories(): boolean {
    return this.#state.makesDirectories;
  }

  /** Bytes already held from a resumed upload: the client sends the rest. */
  get offset(): number {
    return this.#state.offset;
  }

  /**
   * Feeds the bytes already held (a resumed upload's first part) to `hash`,
   * from the open file: they count towards the whole file's digest, in the
   * resuming session's checksum, whichever the broken session used.
   */
  async hashHeld(hash: TransferHash): Promise<void> {
    await hashHeldPrefix(this.#file, this.#state.offset, hash);
  }

  /**
   * Makes the upload durable and visible, alone: a group of one
   * ({@link settle}, {@link place}, the directory's fsync), its failure thrown.
   */
  async publish(): Promise<void> {
    const [outcome] = await commitGroup([this]);
    if (!outcome!.ok) throw outcome!.error;
  }

  /**
   * The first step of a publish, for this upload's commit group
   * (io/commit_group.ts): sets the mtime, fsyncs the data (unless the root
   * is in memory) and closes the file.
   */
  async settle(): Promise<void> {
    const { mtime, mode, tmpPath } = this.#state;
    // The temporary file is the server's own, in its state directory: no link can be there.
    if (mode !== undefined) Deno.chmodSync(tmpPath, mode);
    this.#closed = true;
    await finishWritten(this.#file, { mtime, durable: this.#durable });
  }

  /**
   * The second step, once the data is durable: moves the upload onto its
   * name (atomically: readers see the old file or the new one, never a
   * mixture) and returns the directory to fsync, or null for a root in
   * memory. Without overwrite, a name that appeared meanwhile is refused
   * with EXISTS rather than replaced; with `ifUnchanged`, a file that is no
   * longer that version is refused with CHANGED (looked at and replaced in
   * the one step, under the lock every fts worker on the root takes); a name whose directory was swapped
   * meanwhile is taken back and refused with DENIED.
   */
  async place(): Promise<string | null> {
    const { tmpPath, segments, reservation, overwrite, ifUnchanged } = this.#state;
    const written = this.#opened;
    const { parent, created } = await this.#destination.makeParentDirectories(segments);
    try {
      const target = join(parent.path, segments.at(-1)!);
      // One step, nothing awaits: what is replaced is what was measured.
      this.#destination.placeAtomically(target, () => {
        const replaced = lstatOrNull(target);
        if (ifUnchanged !== undefined) assertUnchanged(segments, replaced, ifUnchanged);
        const replacedBytes = overwrite && replaced ? entryBytes(replaced) : 0;
        if (overwrite) reservation.assertFits(replacedBytes);
        placeFile(tmpPath, target, {
          overwrite,
          verify: (undo) => assertCreatedIn(parent, target, written, segments, undo),
        });
        reservation.commit(replacedBytes);
      }, overwrite);
    } catch (err) {
      this.#destination.removeCreated(created);
      if (err instanceof NameTakenError) {
        throw new FtsError("EXISTS", `${quote(segments)} already exists`, { cause: err });
      }
      throw err;
    }
    this.#releaseName();
    return this.#durable ? parent.path : null;
  }

  /**
   * Fsync has something to wait for: a file system in memory has no stable
   * storage, its fsync returns at once, and handing it to a thread would cost more.
   */
  get #durable(): boolean {
    return !this.#destination.syncsInMemory;
  }

  /** Throws the upload away; safe to call more than once and after a failed publish. */
  async discard(): Promise<void> {
    this.#close();
    this.#state.reservation.release();
    await Deno.remove(this.#state.tmpPath).catch(() => {});
    this.#releaseName();
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
    const { tmpPath, partialPath, segments, size } = this.#state;
    this.#destination.keepPartial(tmpPath, partialPath, segments, size);
    // Kept, the partial keeps the name; cut off before its first byte, nothing does.
    this.#releaseName();
  }

  /**
   * Lets the partial's name go, once: one this upload recorded (see
   * {@link UploadState.recoverable}), or the one of the partial it resumed.
   */
  #releaseName(): void {
    if ((!this.#state.recoverable && this.#state.offset === 0) || this.#nameReleased) return;
    this.#nameReleased = true;
    this.#destination.releasePartialName(this.#state.partialPath);
  }

  #close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#file.close();
  }
}

/**
 * Throws CHANGED unless `found` (the target's lstat, null when missing) is
 * a file of `expected`'s size and mtime: someone else replaced, changed or
 * removed it since the client saw it, and their file is left as it is.
 */
function assertUnchanged(
  segments: string[],
  found: Deno.FileInfo | null,
  expected: FileVersion,
): void {
  const mtime = found?.mtime?.getTime() ?? 0;
  if (found?.isFile && found.size === expected.size && mtime === expected.mtime) return;
  const now = found === null
    ? "it was removed"
    : !found.isFile
    ? "it is no longer a file"
    : `it has ${found.size} bytes, modified ${new Date(mtime).toISOString()}`;
  throw new FtsError(
    "CHANGED",
    `${quote(segments)} changed since it was listed (${expected.size} bytes, modified ` +
      `${new Date(expected.mtime).toISOString()}; now ${now}): it was left as it is`,
  );
}
