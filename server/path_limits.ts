/**
 * Paths the system can reach: a name is refused (BAD_NAME) before it makes a
 * path longer than one system call takes, so that nothing the server creates
 * or moves is beyond the reach of a later request to list or delete it.
 *
 * @module
 */

import { join, sep } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { quote } from "./_storage_common.ts";
import { CreationJournal } from "./creation_journal.ts";
import { SharedLock, type SyncStep } from "./shared_lock.ts";

/**
 * The longest path, in bytes, one system call takes: Linux's PATH_MAX is 4096
 * bytes with the terminating NUL, and a longer path fails with ENAMETOOLONG.
 */
export const MAX_PATH_BYTES = 4095;

const encoder = new TextEncoder();

/**
 * Throws BAD_NAME if `segments` under the directory `base` would make a
 * path longer than the system takes ({@link MAX_PATH_BYTES}); `named` is
 * the whole name, for the message.
 *
 * @example
 * ```ts
 * import { assertPathFits } from "./path_limits.ts";
 * assertPathFits("/srv/files", ["docs", "a.txt"]); // fits: returns
 * let refused = false;
 * try {
 *   // Twenty segments of 255 bytes: a path of over 5000 bytes.
 *   assertPathFits("/srv/files", Array(20).fill("x".repeat(255)));
 * } catch {
 *   refused = true;
 * }
 * console.assert(refused);
 * ```
 */
export function assertPathFits(base: string, segments: string[], named = segments): void {
  const bytes = encoder.encode(join(base, ...segments)).length;
  if (bytes > MAX_PATH_BYTES) {
    throw new FtsError(
      "BAD_NAME",
      `bad name ${quote(named)}: its path on the server would be longer than the system's ` +
        `limit of ${MAX_PATH_BYTES} bytes`,
    );
  }
}

/**
 * How many entries a subtree's measure reads before letting other sessions
 * run: a batch holds the server for a millisecond or so.
 */
export const MEASURE_BATCH_ENTRIES = 1000;

/**
 * How many times a move measures again what was created in its subtree
 * while it measured, before it gives up with BUSY: each round measures only
 * the new entries and ends at once when none came, so only entries created
 * there without pause (a peer racing the move) reach it.
 */
export const MAX_MEASURE_ROUNDS = 8;

/**
 * Directory moves that make paths longer: each measures its subtree before
 * it moves (no path may land past {@link MAX_PATH_BYTES}, where no request
 * could list or delete it), reading in batches so that other sessions go
 * on meanwhile. An entry another request creates in the subtree while it is
 * measured fits where it is, and might not where it goes: every operation
 * that creates or moves in an entry tells {@link entryCreated}, in the step
 * that creates it, and the move measures those too before it lands, in the
 * same step as the move itself.
 *
 * Those steps hold the root's step lock (shared_lock.ts), and what is told
 * goes into a journal in shared memory (creation_journal.ts): a move on one
 * worker sees what every worker creates.
 *
 * A request that checked its path before the move and creates after it
 * fails on its own: its path, through the moved directory, no longer exists.
 *
 * @example
 * ```ts
 * import { DirectoryMoves } from "./path_limits.ts";
 * const root = Deno.makeTempDirSync();
 * Deno.mkdirSync(`${root}/a/b`, { recursive: true });
 * const moves = new DirectoryMoves();
 * await moves.moveWhenFits(`${root}/a`, `${root}/longer`, ["longer"], () => {
 *   Deno.renameSync(`${root}/a`, `${root}/longer`);
 * });
 * console.assert(Deno.statSync(`${root}/longer/b`).isDirectory);
 * Deno.removeSync(root, { recursive: true });
 * ```
 */
export class DirectoryMoves {
  readonly #lock: SharedLock;
  readonly #journal: CreationJournal;

  /**
   * Moves told of creations under `lock` (the root's step lock) through
   * `journal`; both are this thread's own when not given.
   */
  constructor(
    lock: SharedLock = new SharedLock(),
    journal: CreationJournal = new CreationJournal(CreationJournal.allocate()),
  ) {
    this.#lock = lock;
    this.#journal = journal;
  }

  /**
   * An entry was just made, or moved in, at `path` (a resolved path): each
   * move measuring a subtree that holds it measures it too. Call it in the
   * step that creates the entry, holding the step lock.
   */
  entryCreated(path: string): void {
    this.#lock.hold(() => this.#journal.record(path));
  }

  /**
   * Calls `move` once every path in the directory at `source`, moved to
   * `target`, fits {@link MAX_PATH_BYTES}; throws BAD_NAME otherwise, before
   * anything moves, naming `named` (the request's target). A move that makes
   * no path longer is not measured. `move` runs holding the step lock, in
   * the step of the last check, so nothing is created in between; BUSY if
   * entries kept being created in the subtree for {@link MAX_MEASURE_ROUNDS}
   * rounds.
   */
  async moveWhenFits<T>(
    source: string,
    target: string,
    named: string[],
    move: SyncStep<T>,
  ): Promise<T> {
    const targetBytes = encoder.encode(target).length;
    const sourceBytes = encoder.encode(source).length;
    if (targetBytes <= sourceBytes) return this.#lock.hold(move);
    const busy = () =>
      new FtsError(
        "BUSY",
        `${quote(named)}: the directory kept changing while it was measured; try again`,
      );
    let position = this.#lock.hold(() => this.#journal.watch());
    try {
      await measureSubtrees([{ path: source, bytesThere: targetBytes }], named);
      for (let round = 1;; round++) {
        const next = this.#lock.hold((): { moved: T } | { created: string[] } => {
          const read = this.#journal.readSince(position);
          if (read === null) throw busy();
          position = read.position;
          const created = read.paths.filter((path) => path.startsWith(source + sep));
          return created.length === 0 ? { moved: move() as T } : { created };
        });
        if ("moved" in next) return next.moved;
        if (round > MAX_MEASURE_ROUNDS) throw busy();
        await measureSubtrees(
          next.created.map((path) => ({
            path,
            bytesThere: targetBytes + encoder.encode(path).length - sourceBytes,
          })),
          named,
        );
      }
    } finally {
      this.#lock.hold(() => this.#journal.unwatch());
    }
  }
}

/** A path to measure, with the length its path would have where it lands. */
interface PendingMeasure {
  /** The entry's path now. */
  path: string;
  /** The bytes of its path where it lands. */
  bytesThere: number;
}

/**
 * Throws BAD_NAME (naming `named`) if any of `entries`, or anything under
 * those that are directories, would pass {@link MAX_PATH_BYTES} where it
 * lands. Reads without following links and stops at the first path over
 * the limit, so its depth is bounded by the limit; lets other sessions run
 * every {@link MEASURE_BATCH_ENTRIES} entries. An entry gone meanwhile is
 * skipped: wherever it went, its creation was told again.
 */
async function measureSubtrees(entries: PendingMeasure[], named: string[]): Promise<void> {
  const tooLong = () =>
    new FtsError(
      "BAD_NAME",
      `bad name ${quote(named)}: a path in the directory moved there would be longer than ` +
        `the system's limit of ${MAX_PATH_BYTES} bytes`,
    );
  const directories: PendingMeasure[] = [];
  for (const entry of entries) {
    if (entry.bytesThere > MAX_PATH_BYTES) throw tooLong();
    directories.push(entry);
  }
  let sinceYield = 0;
  while (directories.length > 0) {
    const { path, bytesThere } = directories.pop()!;
    let names: Deno.DirEntry[];
    try {
      // Read off the event loop; a name that is no directory (a file told as created) is skipped.
      names = await Array.fromAsync(Deno.readDir(path));
    } catch (err) {
      // Past the limit where it is already: moved deeper, it is past it still.
      if ((err as { code?: unknown }).code === "ENAMETOOLONG") throw tooLong();
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory) continue;
      throw err;
    }
    for (const entry of names) {
      const entryBytes = bytesThere + 1 + encoder.encode(entry.name).length;
      if (entryBytes > MAX_PATH_BYTES) throw tooLong();
      if (entry.isDirectory) {
        directories.push({ path: join(path, entry.name), bytesThere: entryBytes });
      }
    }
    sinceYield += names.length;
    if (sinceYield >= MEASURE_BATCH_ENTRIES) {
      sinceYield = 0;
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }
}
