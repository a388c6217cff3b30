/**
 * The quota of a bucket-backed server (`--quota`): free space has no meaning
 * in a bucket, so only the quota is enforced. What the served prefix uses is
 * counted from its listing when the server starts (on the main thread) and
 * kept up to date by this server's own uploads and removals, in memory its
 * workers share; other servers' changes are seen at the next start (README).
 *
 * @module
 */

import { FtsError } from "../../protocol/errors.ts";
import type { DfFields } from "../../protocol/messages.ts";
import type { StoreSpace } from "../store.ts";

/** The cells: bytes of objects counted as stored, and those plus uploads in flight. */
const CELL = { used: 0, claimed: 1 } as const;

/**
 * The free space reported: a bucket has none to measure, so it is reported
 * as unbounded, and clients that check the room before a sync find the
 * quota the bound (as they do on a local root with a quota).
 */
export const BUCKET_FREE_BYTES = Number.MAX_SAFE_INTEGER;

/** A claim on the quota for one upload, settled once. */
export interface BucketClaim {
  /** The upload was published, replacing an object of `replacedBytes` (0 for none). */
  commit(replacedBytes: number): void;
  /** The upload ended without publishing. */
  release(): void;
}

/** The quota and the counts of one bucket-backed server's workers. */
export class BucketSpace implements StoreSpace {
  readonly #cells: BigInt64Array;
  readonly #quotaBytes: number | null;

  /** Shared counts (from {@link allocate}) under a quota (null for none). */
  constructor(counts: SharedArrayBuffer, quotaBytes: number | null) {
    this.#cells = new BigInt64Array(counts);
    this.#quotaBytes = quotaBytes;
  }

  /** The shared counts, starting from `usedBytes` (what the listing at start found). */
  static allocate(usedBytes: number): SharedArrayBuffer {
    const counts = new SharedArrayBuffer(2 * BigInt64Array.BYTES_PER_ELEMENT);
    new BigInt64Array(counts).fill(BigInt(usedBytes));
    return counts;
  }

  /**
   * Claims `size` bytes for an upload that may replace an object of
   * `replacingBytes`, or throws NO_SPACE when that would exceed the quota.
   */
  claim(size: number, replacingBytes: number, what: string): BucketClaim {
    const cost = BigInt(size);
    for (;;) {
      const claimed = Atomics.load(this.#cells, CELL.claimed);
      const inUse = Number(claimed) - replacingBytes;
      if (this.#quotaBytes !== null && inUse + size > this.#quotaBytes) {
        throw new FtsError(
          "NO_SPACE",
          `${what} would exceed the quota of ${this.#quotaBytes} bytes ` +
            `(${Math.max(0, inUse)} in use or in flight)`,
        );
      }
      if (Atomics.compareExchange(this.#cells, CELL.claimed, claimed, claimed + cost) === claimed) {
        break;
      }
    }
    let settled = false;
    return {
      commit: (replacedBytes) => {
        if (settled) return;
        settled = true;
        Atomics.add(this.#cells, CELL.used, cost - BigInt(replacedBytes));
        Atomics.sub(this.#cells, CELL.claimed, BigInt(replacedBytes));
      },
      release: () => {
        if (settled) return;
        settled = true;
        Atomics.sub(this.#cells, CELL.claimed, cost);
      },
    };
  }

  /** An object of `bytes` was removed. */
  freed(bytes: number): void {
    Atomics.sub(this.#cells, CELL.used, BigInt(bytes));
    Atomics.sub(this.#cells, CELL.claimed, BigInt(bytes));
  }

  /** An object of `bytes` was made without an upload (a copy). */
  added(bytes: number): void {
    Atomics.add(this.#cells, CELL.used, BigInt(bytes));
    Atomics.add(this.#cells, CELL.claimed, BigInt(bytes));
  }

  /** Free space {@link BUCKET_FREE_BYTES}, no reserve; the quota and what it counts. */
  report(): Promise<DfFields> {
    const claimed = Math.max(0, Number(Atomics.load(this.#cells, CELL.claimed)));
    return Promise.resolve({
      freeBytes: BUCKET_FREE_BYTES,
      reserveBytes: 0,
      quotaBytes: this.#quotaBytes,
      usedBytes: this.#quotaBytes === null ? 0 : claimed,
    });
  }
}
