/**
 * The authentication back-off shared by the server's workers: the main
 * thread keeps the one {@link AuthThrottle}, and a worker's sessions ask it
 * by message. A failure is already answered after a delay, so the round trip
 * costs nothing that matters; and since each session awaits the answer
 * before it replies to its peer, a peer's failures count in the order they
 * happened, whichever workers they landed on. Across processes (several
 * servers on one root) each server would keep its own.
 *
 * @module
 */

import type { AuthThrottle } from "./auth_throttle.ts";

/** The back-off as a session sees it. */
export interface AuthBackoff {
  /** How long to wait before refusing `peer` (an address) now, counting this failure. */
  recordFailure(peer: string): Promise<number>;
  /** Forgets `peer`'s failures: it authenticated. */
  recordSuccess(peer: string): Promise<void>;
}

/** A worker's question to the main thread. */
export interface BackoffRequest {
  /** A failure to count, or a success that forgets the failures. */
  type: "auth-failure" | "auth-success";
  /** Pairs the answer with the question. */
  id: number;
  /** The peer's address. */
  peer: string;
}

/** The main thread's answer. */
export interface BackoffReply {
  /** What the message is. */
  type: "auth-backoff";
  /** The question's id. */
  id: number;
  /** How long to wait before refusing (0 for a success). */
  delayMs: number;
}

/**
 * A worker's side: questions go out through `post`, answers come in through
 * {@link BackoffClient.answer}.
 *
 * @example
 * ```ts
 * import { AuthThrottle } from "./auth_throttle.ts";
 * import { answerBackoff, BackoffClient } from "./shared_backoff.ts";
 * const throttle = new AuthThrottle(); // On the main thread.
 * const client: BackoffClient = new BackoffClient((request) =>
 *   queueMicrotask(() => client.answer(answerBackoff(throttle, request)))
 * );
 * console.assert(await client.recordFailure("10.0.0.1") === 250);
 * console.assert(await client.recordFailure("10.0.0.1") === 500);
 * ```
 */
export class BackoffClient implements AuthBackoff {
  readonly #post: (request: BackoffRequest) => void;
  readonly #waiting = new Map<number, (delayMs: number) => void>();
  #nextId = 1;

  /** A client sending its questions with `post` (the worker's postMessage). */
  constructor(post: (request: BackoffRequest) => void) {
    this.#post = post;
  }

  /** Asks the main thread to count a failure of `peer`; resolves with the delay. */
  recordFailure(peer: string): Promise<number> {
    return this.#ask("auth-failure", peer);
  }

  /** Asks the main thread to forget `peer`'s failures; resolves once it has. */
  async recordSuccess(peer: string): Promise<void> {
    await this.#ask("auth-success", peer);
  }

  /** Delivers an answer from the main thread. */
  answer(reply: BackoffReply): void {
    const resolve = this.#waiting.get(reply.id);
    this.#waiting.delete(reply.id);
    resolve?.(reply.delayMs);
  }

  #ask(type: BackoffRequest["type"], peer: string): Promise<number> {
    const id = this.#nextId++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.#post({ type, id, peer });
    });
  }
}

/** The main thread's side: answers one worker's question from the server's throttle. */
export function answerBackoff(throttle: AuthThrottle, request: BackoffRequest): BackoffReply {
  if (request.type === "auth-failure") {
    return { type: "auth-backoff", id: request.id, delayMs: throttle.recordFailure(request.peer) };
  }
  throttle.recordSuccess(request.peer);
  return { type: "auth-backoff", id: request.id, delayMs: 0 };
}
