/**
 * A lock in shared memory, for the steps that the server's workers (threads
 * of one process) must not interleave: a step that measures the root, changes
 * it and counts the change (a publish, a rename, a delete), or writes a log
 * line. Within one worker such a step was atomic already (nothing in it
 * awaits); the lock makes it atomic across workers too.
 *
 * Only synchronous steps may hold it, so that a holder never waits for
 * another thread's event loop: {@link SharedLock.hold} refuses, by its type,
 * a step that returns a promise. Across processes (several servers on one
 * root) the steps that must not interleave take a lock on the file system
 * within it: the space ledger's (space_ledger.ts), `.fts/replace.lock`
 * (storage.ts).
 *
 * @module
 */

/** The cell's states: free; held; held with threads waiting to be woken. */
const FREE = 0;
const HELD = 1;
const CONTENDED = 2;

/** What {@link SharedLock.hold} accepts: a step that returns anything but a promise. */
export type SyncStep<T> = () => T extends PromiseLike<unknown> ? never : T;

/**
 * A mutual-exclusion lock over one 32-bit cell of a `SharedArrayBuffer`.
 * Each thread makes its own `SharedLock` over the same buffer, once: a
 * thread that already holds it may take it again (a step calling another
 * step), counted per instance.
 *
 * @example
 * ```ts
 * import { SharedLock } from "./shared_lock.ts";
 * const buffer = SharedLock.allocate(); // Posted to each worker, which wraps it once.
 * const lock = new SharedLock(buffer);
 * let count = 0;
 * lock.hold(() => {
 *   count += 1;
 *   lock.hold(() => count += 1); // The holder may take it again.
 * });
 * console.assert(count === 2);
 * ```
 */
export class SharedLock {
  readonly #cell: Int32Array;
  /** How many holds this thread has open on the lock: 0 when it does not hold it. */
  #depth = 0;

  /** The shared memory of one lock, free: hand it to every thread that takes the lock. */
  static allocate(): SharedArrayBuffer {
    return new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT);
  }

  /** This thread's handle on the lock in `buffer` (see {@link SharedLock.allocate}). */
  constructor(buffer: SharedArrayBuffer = SharedLock.allocate()) {
    this.#cell = new Int32Array(buffer, 0, 1);
  }

  /**
   * Runs `step` holding the lock, and returns what it returns; the lock is
   * given back when it returns or throws. Waits (blocking this thread) while
   * another thread holds it: steps are a few system calls long.
   */
  hold<T>(step: SyncStep<T>): T {
    if (this.#depth > 0) {
      this.#depth += 1;
      try {
        return step();
      } finally {
        this.#depth -= 1;
      }
    }
    this.#acquire();
    this.#depth = 1;
    try {
      return step();
    } finally {
      this.#depth = 0;
      this.#release();
    }
  }

  /** Takes the cell from FREE, sleeping on it while another thread holds it (a futex mutex). */
  #acquire(): void {
    let state = Atomics.compareExchange(this.#cell, 0, FREE, HELD);
    if (state === FREE) return;
    if (state !== CONTENDED) state = Atomics.exchange(this.#cell, 0, CONTENDED);
    while (state !== FREE) {
      Atomics.wait(this.#cell, 0, CONTENDED);
      state = Atomics.exchange(this.#cell, 0, CONTENDED);
    }
  }

  /** Frees the cell and wakes one waiter if any thread may be waiting. */
  #release(): void {
    if (Atomics.exchange(this.#cell, 0, FREE) === CONTENDED) Atomics.notify(this.#cell, 0, 1);
  }
}
