/**
 * The journal of entries created in the root while a directory move is
 * being measured (see path_limits.ts's `DirectoryMoves`), in shared memory so
 * that a move on one worker learns of the entries every worker creates. It
 * is a ring of paths, written only while some move watches it, so that the
 * requests of a server with no move in progress pay one read of a counter
 * per entry they create. Across processes (several servers on one root), it
 * would have to live in a file beside the root.
 *
 * Every method is to be called holding the root's step lock (shared_lock.ts),
 * the lock that the entries' creations hold too: an entry created and
 * recorded in one step is then either seen by a move's next read, or created
 * after the move has landed.
 *
 * @module
 */

/**
 * Bytes of paths the journal keeps: room for about ten thousand entries
 * created during one round of a move's measure. A move that falls further
 * behind than that is refused with BUSY, like one whose tree keeps gaining
 * entries.
 */
export const CREATION_JOURNAL_BYTES = 1024 * 1024;

/** Bytes of a record's length prefix: a path is at most 4095 bytes (MAX_PATH_BYTES). */
const LENGTH_BYTES = 2;

/** What a watcher reads: the paths recorded since its position, and the position after them. */
export interface JournalRead {
  /** The paths, oldest first. */
  paths: string[];
  /** Where the next read starts. */
  position: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * A ring of created paths shared by the threads that hold its buffer.
 *
 * @example
 * ```ts
 * import { CreationJournal } from "./creation_journal.ts";
 * const journal = new CreationJournal(CreationJournal.allocate());
 * journal.record("/srv/a"); // No watcher: not kept.
 * const start = journal.watch();
 * journal.record("/srv/b");
 * console.assert(journal.readSince(start)?.paths.join() === "/srv/b");
 * journal.unwatch();
 * ```
 */
export class CreationJournal {
  /** The write position (bytes ever written) and the number of watchers. */
  readonly #header: Float64Array;
  readonly #ring: Uint8Array;

  /** The shared memory of an empty journal: hand it to every thread that creates entries. */
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(2 * Float64Array.BYTES_PER_ELEMENT + CREATION_JOURNAL_BYTES);
  }

  /** This thread's view of the journal in `buffer`. */
  constructor(buffer: SharedArrayBuffer) {
    this.#header = new Float64Array(buffer, 0, 2);
    this.#ring = new Uint8Array(buffer, 2 * Float64Array.BYTES_PER_ELEMENT);
  }

  /** Starts watching: paths recorded from now on are kept; returns the position to read from. */
  watch(): number {
    this.#header[1] = this.#header[1]! + 1;
    return this.#header[0]!;
  }

  /** Stops watching (once per {@link watch}). */
  unwatch(): void {
    this.#header[1] = this.#header[1]! - 1;
  }

  /** Records that an entry was created (or moved in) at `path`, if anyone watches. */
  record(path: string): void {
    if (this.#header[1] === 0) return;
    const bytes = encoder.encode(path);
    const position = this.#header[0]!;
    this.#write(position, new Uint8Array([bytes.length & 0xff, bytes.length >> 8]));
    this.#write(position + LENGTH_BYTES, bytes);
    this.#header[0] = position + LENGTH_BYTES + bytes.length;
  }

  /**
   * The paths recorded since `position`, or null if some of them have been
   * written over already (more than {@link CREATION_JOURNAL_BYTES} since).
   */
  readSince(position: number): JournalRead | null {
    const end = this.#header[0]!;
    if (end - position > this.#ring.length) return null;
    const paths: string[] = [];
    let at = position;
    while (at < end) {
      const length = this.#read(at, LENGTH_BYTES);
      const bytes = length[0]! | (length[1]! << 8);
      paths.push(decoder.decode(this.#read(at + LENGTH_BYTES, bytes)));
      at += LENGTH_BYTES + bytes;
    }
    return { paths, position: end };
  }

  /** Writes `bytes` at stream position `position`, wrapping around the ring's end. */
  #write(position: number, bytes: Uint8Array): void {
    const start = position % this.#ring.length;
    const first = Math.min(bytes.length, this.#ring.length - start);
    this.#ring.set(bytes.subarray(0, first), start);
    this.#ring.set(bytes.subarray(first), 0);
  }

  /** A copy of `length` bytes at stream position `position`, wrapping around the ring's end. */
  #read(position: number, length: number): Uint8Array {
    const start = position % this.#ring.length;
    const first = Math.min(length, this.#ring.length - start);
    const bytes = new Uint8Array(length);
    bytes.set(this.#ring.subarray(start, start + first));
    bytes.set(this.#ring.subarray(0, length - first), first);
    return bytes;
  }
}
