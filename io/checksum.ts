/**
 * Streaming checksums, the hashes every transfer is verified with: fed chunk
 * by chunk as the bytes pass, so no file is ever held whole. One for each of
 * the protocol's {@link ChecksumName}s:
 *
 * - `xxh3-128`: XXH3-128 with seed 0 (the digest `xxhsum -H2` prints), from
 *   the npm package hash-wasm. It is WebAssembly, so it runs in the
 *   sandboxed server worker, which has no FFI. Its hashers are WebAssembly
 *   instances, whose creation is asynchronous and costs about 150 µs, far
 *   more than hashing a small file: one is started when this module loads,
 *   and a finished hasher is kept for the next transfer instead of dropped.
 * - `sha256`: SHA-256 from node:crypto, which streams several times faster
 *   than WebCrypto, whose digest is one-shot.
 *
 * @module
 */

import { createHash, type Hash } from "node:crypto";
import { createXXHash128, type IHasher } from "hash-wasm";
import type { ChecksumName, Digest } from "../protocol/checksum.ts";

/** A checksum being computed over bytes that arrive in pieces, in order. */
export interface StreamingHash {
  /** Which checksum it computes. */
  readonly algorithm: ChecksumName;
  /** Adds the next bytes; the chunk is not kept after the call returns. Throws once {@link hex} has been read. */
  update(chunk: Uint8Array): void;
  /** The digest of every byte added, in lowercase hex; the same on every call. */
  hex(): string;
}

/**
 * XXH3-128 hashers kept between transfers, at most: as many as transfers
 * commonly run at once on a busy server; an idle one holds a WebAssembly
 * instance of some tens of KiB, and past this many they are left to the
 * garbage collector.
 */
export const MAX_IDLE_XXH3_HASHERS = 64;

const idleXxh3Hashers: IHasher[] = [];

/**
 * The first hasher, started as this module loads so that the first transfer
 * need not wait for it; taken by the first XXH3-128 hash. Not a top-level
 * await: in the server's worker that would hold up the module while the
 * main thread's first message arrives, and the message would be lost.
 */
let firstXxh3Hasher: Promise<IHasher> | null = createXXHash128();
// A failure is thrown to the hash that takes it, not left unhandled here.
firstXxh3Hasher.catch(() => {});

/**
 * Starts a hash of `algorithm`. An XXH3-128 hasher comes from those kept
 * between transfers when one is free, and goes back once its digest is read.
 *
 * @example
 * ```ts
 * import { createStreamingHash } from "./checksum.ts";
 * const hash = await createStreamingHash("xxh3-128");
 * hash.update(new TextEncoder().encode("a"));
 * hash.update(new TextEncoder().encode("bc"));
 * console.assert(hash.hex() === "06b05ab6733a618578af5f94892f3950");
 * ```
 */
export async function createStreamingHash(algorithm: ChecksumName): Promise<StreamingHash> {
  switch (algorithm) {
    case "xxh3-128":
      return new Xxh3Hash(await takeXxh3Hasher());
    case "sha256":
      return new Sha256Hash();
    default: {
      const unknown: never = algorithm;
      throw new Error(`no such checksum: ${unknown}`);
    }
  }
}

/**
 * The digest of every byte `hash` was fed, with its algorithm: what a
 * trailer or a reply carries.
 *
 * @example
 * ```ts
 * import { createStreamingHash, digestOf } from "./checksum.ts";
 * const digest = digestOf(await createStreamingHash("xxh3-128"));
 * console.assert(digest.hex === "99aa06d3014798d86001c324468d497f"); // of no bytes
 * ```
 */
export function digestOf(hash: StreamingHash): Digest {
  return { algorithm: hash.algorithm, hex: hash.hex() };
}

/** A hasher that is free: one kept from an earlier hash, or a new one. */
async function takeXxh3Hasher(): Promise<IHasher> {
  const first = firstXxh3Hasher;
  if (first !== null) {
    firstXxh3Hasher = null;
    return await first;
  }
  return idleXxh3Hashers.pop() ?? await createXXHash128();
}

/** XXH3-128 over a hash-wasm hasher that is returned for reuse once its digest is read. */
class Xxh3Hash implements StreamingHash {
  readonly algorithm = "xxh3-128";
  #hasher: IHasher | null;
  #hex: string | null = null;

  constructor(hasher: IHasher) {
    // init() resets a reused hasher to seed 0.
    this.#hasher = hasher.init();
  }

  update(chunk: Uint8Array): void {
    if (this.#hasher === null) throw finished(this.algorithm);
    this.#hasher.update(chunk);
  }

  hex(): string {
    if (this.#hex === null) {
      this.#hex = this.#hasher!.digest("hex");
      if (idleXxh3Hashers.length < MAX_IDLE_XXH3_HASHERS) idleXxh3Hashers.push(this.#hasher!);
      this.#hasher = null;
    }
    return this.#hex;
  }
}

/** SHA-256 over node:crypto. */
class Sha256Hash implements StreamingHash {
  readonly algorithm = "sha256";
  readonly #hash: Hash = createHash("sha256");
  #hex: string | null = null;

  update(chunk: Uint8Array): void {
    if (this.#hex !== null) throw finished(this.algorithm);
    this.#hash.update(chunk);
  }

  hex(): string {
    this.#hex ??= this.#hash.digest("hex");
    return this.#hex;
  }
}

function finished(algorithm: ChecksumName): Error {
  return new Error(`${algorithm} already finished: no more bytes can be added`);
}
