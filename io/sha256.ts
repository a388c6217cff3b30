/**
 * Streaming SHA-256, the hash every transfer is verified with: fed chunk by
 * chunk as the bytes pass, so no file is ever held whole. node:crypto
 * streams several times faster than WebCrypto, whose digest is one-shot.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";

/**
 * Anything a transfer feeds its bytes to, in order: a {@link Sha256}, or a
 * node:crypto `Hash`.
 */
export interface StreamingHash {
  /** Adds the next bytes; the chunk is not kept after the call returns. */
  update(chunk: Uint8Array): void;
}

/**
 * A SHA-256 being computed over bytes that arrive in pieces.
 *
 * @example
 * ```ts
 * import { Sha256 } from "./sha256.ts";
 * const hash = new Sha256();
 * hash.update(new TextEncoder().encode("a"));
 * hash.update(new TextEncoder().encode("bc"));
 * console.assert(
 *   hash.hex() === "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
 * );
 * ```
 */
export class Sha256 implements StreamingHash {
  readonly #hash: Hash = createHash("sha256");
  #hex: string | null = null;

  /** Adds the next bytes. Throws once {@link hex} has been read. */
  update(chunk: Uint8Array): void {
    if (this.#hex !== null) throw new Error("SHA-256 already finished: no more bytes can be added");
    this.#hash.update(chunk);
  }

  /** The digest of every byte added, as 64 lowercase hex digits; the same on every call. */
  hex(): string {
    this.#hex ??= this.#hash.digest("hex");
    return this.#hex;
  }
}
