/**
 * Slows down repeated authentication failures from one peer address: each
 * failure doubles the wait before the next refusal is sent, up to a ceiling.
 *
 * @module
 */

/** Wait after a peer's first failure. */
export const AUTH_FAILURE_BASE_DELAY_MS = 250;
/** The longest wait: long enough to make guessing hopeless, short enough not to tie up a slot. */
export const AUTH_FAILURE_MAX_DELAY_MS = 8_000;
/** A peer's failures are forgotten after this long without one. */
export const AUTH_FAILURE_MEMORY_MS = 15 * 60_000;
/** Peers remembered at once; the oldest is forgotten first, so memory stays bounded. */
export const AUTH_FAILURE_MAX_PEERS = 10_000;

/** Failure counts per peer address. */
export class AuthThrottle {
  readonly #failures = new Map<string, { count: number; lastMs: number }>();

  /** How long to wait before refusing this peer now, counting this failure. */
  recordFailure(peer: string, nowMs = Date.now()): number {
    const previous = this.#failures.get(peer);
    const count = previous && nowMs - previous.lastMs < AUTH_FAILURE_MEMORY_MS
      ? previous.count + 1
      : 1;
    this.#failures.delete(peer); // Re-insert: the Map keeps insertion order, oldest first.
    this.#failures.set(peer, { count, lastMs: nowMs });
    if (this.#failures.size > AUTH_FAILURE_MAX_PEERS) {
      this.#failures.delete(this.#failures.keys().next().value!);
    }
    return Math.min(AUTH_FAILURE_BASE_DELAY_MS * 2 ** (count - 1), AUTH_FAILURE_MAX_DELAY_MS);
  }

  /** Forgets a peer's failures after it authenticated. */
  recordSuccess(peer: string): void {
    this.#failures.delete(peer);
  }
}
