/**
 * Checksums computed off the thread that moves the bytes, where a core is
 * free. A {@link HashThreadPool} (made by a thread allowed to start workers:
 * the server's main thread, the client) runs hash threads
 * (io/hash_thread.ts), Workers with no permissions at all. Each thread that
 * moves bytes (a sandboxed session worker, the client) gets a
 * {@link HashThreadLink}: a port to every hash thread and a table of leases
 * in shared memory, so that one hash thread computes one transfer's hash at
 * a time whichever thread asked. A transfer of {@link OFF_THREAD_HASH_MIN_BYTES}
 * or more leases a free hash thread ({@link HashThreads.lease}); when none is
 * free it hashes in place, as a small transfer always does.
 *
 * The bytes are not copied: the transfer reads into buffers in shared memory
 * (see io/pump.ts) and hands the hash thread where a chunk is; it tells the
 * pump when it is done with that memory.
 *
 * @module
 */

import type { ChecksumName, Digest } from "../protocol/checksum.ts";
import { createStreamingHash, type TransferHash } from "./checksum.ts";
import type {
  FromHashThread,
  HashThreadControl,
  HashThreadReady,
  ToHashThread,
} from "./hash_thread.ts";

/**
 * Transfers smaller than this hash in place: handing chunks to another
 * thread costs a message each way per chunk, which pays only once hashing a
 * transfer takes tens of milliseconds.
 */
export const OFF_THREAD_HASH_MIN_BYTES = 16 << 20;

/**
 * Hash threads a pool starts by default: one per core but the one that moves
 * the bytes, and none on a single core, where there is no core to spare.
 */
export function defaultHashThreadCount(): number {
  return Math.max(0, (navigator.hardwareConcurrency ?? 1) - 1);
}

/** What a thread that moves bytes needs to use a pool's hash threads; sent to it with its ports transferred. */
export interface HashThreadLink {
  /** One port per hash thread, this thread's own. */
  ports: MessagePort[];
  /** One Int32 per hash thread, shared by every link of the pool: 1 while leased. */
  leases: SharedArrayBuffer;
}

const NO_PERMISSIONS = {
  read: false,
  write: false,
  net: false,
  env: false,
  run: false,
  ffi: false,
  sys: false,
  import: false,
} as const;

/** The hash threads of a process. */
export class HashThreadPool {
  readonly #threads: Worker[];
  readonly #leases: SharedArrayBuffer;

  private constructor(threads: Worker[]) {
    this.#threads = threads;
    this.#leases = new SharedArrayBuffer(
      Int32Array.BYTES_PER_ELEMENT * Math.max(1, threads.length),
    );
  }

  /**
   * Starts `count` hash threads; resolves once every one can take ports. A
   * hash thread failing is a fault in fts, not in a transfer: it is rethrown
   * here, where the process can stop.
   */
  static async start(count: number = defaultHashThreadCount()): Promise<HashThreadPool> {
    const threads = await Promise.all(Array.from({ length: count }, startHashThread));
    return new HashThreadPool(threads);
  }

  /** How many hash threads run. */
  get size(): number {
    return this.#threads.length;
  }

  /**
   * A link for one more thread that moves bytes (its ports are to be
   * transferred to it, or used where it was made).
   */
  link(): HashThreadLink {
    const ports = this.#threads.map((thread) => {
      const channel = new MessageChannel();
      thread.postMessage({ type: "serve", port: channel.port1 } satisfies HashThreadControl, [
        channel.port1,
      ]);
      return channel.port2;
    });
    return { ports, leases: this.#leases };
  }

  /** Stops every hash thread; links to them must not be used after. */
  terminate(): void {
    for (const thread of this.#threads) thread.terminate();
  }
}

function startHashThread(): Promise<Worker> {
  const thread = new Worker(new URL("./hash_thread.ts", import.meta.url), {
    type: "module",
    deno: { permissions: NO_PERMISSIONS },
  });
  return new Promise((resolve, reject) => {
    thread.onmessage = (event: MessageEvent<HashThreadReady>) => {
      if (event.data.type === "ready") resolve(thread);
    };
    thread.onerror = (event) => {
      event.preventDefault();
      thread.terminate();
      reject(new Error(`a hash thread failed: ${event.message}`));
    };
  }).then(() => {
    thread.onerror = (event) => {
      throw new Error(`a hash thread failed: ${event.message}`);
    };
    return thread;
  });
}

/** One thread's use of a pool's hash threads. */
export class HashThreads {
  readonly #leases: Int32Array;
  readonly #ports: HashPort[];

  /** Uses the hash threads `link` leads to. */
  constructor(link: HashThreadLink) {
    this.#leases = new Int32Array(link.leases);
    this.#ports = link.ports.map((port) => new HashPort(port));
  }

  /**
   * A hash of `algorithm` computed on a hash thread no other transfer holds,
   * or null when every one is busy (or there are none): then hash in place.
   */
  lease(algorithm: ChecksumName): OffThreadHash | null {
    for (let i = 0; i < this.#ports.length; i++) {
      if (Atomics.compareExchange(this.#leases, i, 0, 1) === 0) {
        return new OffThreadHash(
          algorithm,
          this.#ports[i]!,
          () => Atomics.store(this.#leases, i, 0),
        );
      }
    }
    return null;
  }
}

/** This thread's end of one hash thread's port: answers come back in the order asked. */
class HashPort {
  readonly #port: MessagePort;
  readonly #waiting: { resolve(message: FromHashThread): void }[] = [];

  constructor(port: MessagePort) {
    this.#port = port;
    port.onmessage = (event: MessageEvent<FromHashThread>) => {
      this.#waiting.shift()?.resolve(event.data);
    };
  }

  send(message: ToHashThread): void {
    this.#port.postMessage(message);
  }

  ask(message: ToHashThread): Promise<FromHashThread> {
    return new Promise((resolve) => {
      this.#waiting.push({ resolve });
      this.#port.postMessage(message);
    });
  }
}

/**
 * A transfer's hash, computed on a leased hash thread. Each chunk's memory
 * is the hash thread's until {@link update}'s promise resolves; the lease
 * ends with {@link digest} or {@link release}.
 */
export class OffThreadHash implements TransferHash {
  /** The checksum computed. */
  readonly algorithm: ChecksumName;
  readonly #port: HashPort;
  #release: (() => void) | null;

  /** A hash on the thread behind `port`, whose lease `release` gives back. */
  constructor(algorithm: ChecksumName, port: HashPort, release: () => void) {
    this.algorithm = algorithm;
    this.#port = port;
    this.#release = release;
    port.send({ type: "start", algorithm });
  }

  /**
   * Adds the next bytes. A chunk in shared memory is read where it is, and
   * the promise resolves once the hash thread is done with it; any other
   * chunk is copied, and the promise is already resolved.
   */
  update(chunk: Uint8Array): Promise<void> {
    if (this.#release === null) throw new Error("off-thread hash already finished");
    if (chunk.buffer instanceof SharedArrayBuffer) {
      return this.#port.ask({
        type: "update",
        buffer: chunk.buffer,
        offset: chunk.byteOffset,
        length: chunk.length,
      }).then(() => {});
    }
    this.#port.send({ type: "update-copy", bytes: chunk.slice() });
    return Promise.resolve();
  }

  /** The digest of every byte added; ends the lease. */
  async digest(): Promise<Digest> {
    if (this.#release === null) throw new Error("off-thread hash already finished");
    const answer = await this.#port.ask({ type: "digest" });
    this.release();
    if (answer.type !== "digest") {
      const why = answer.type === "failed" ? answer.message : answer.type;
      throw new Error(`a hash thread could not hash: ${why}`);
    }
    return { algorithm: this.algorithm, hex: answer.hex };
  }

  /** Ends the lease without a digest (the transfer failed); safe to call twice. */
  release(): void {
    this.#release?.();
    this.#release = null;
  }

  /** Ends the lease if {@link digest} did not. */
  [Symbol.dispose](): void {
    this.release();
  }
}

/**
 * This thread's hash threads: given by {@link useHashThreads} (a sandboxed
 * server worker, which may not start workers), or started here on first
 * need ({@link useOwnHashThreads}: the client), or none.
 */
let hashThreadsHere: Promise<HashThreads | null> | null = null;
let ownPool: (() => Promise<HashThreads | null>) | null = null;

/** Makes this thread hash large transfers on the hash threads `link` leads to. */
export function useHashThreads(link: HashThreadLink): void {
  hashThreadsHere = Promise.resolve(new HashThreads(link));
}

/**
 * A thread with a pool of its own ({@link useOwnHashThreads}) starts it for
 * the first transfer of this many bytes or more. Starting one costs about
 * 0.1 s of CPU, as much as hashing a few hundred MiB in place: a client
 * that moves one 64 MiB file (16 of them at once, in a benchmark, on two
 * cores) would spend more starting it than it saves. Once it runs, every
 * transfer of {@link OFF_THREAD_HASH_MIN_BYTES} or more uses it.
 */
export const OWN_HASH_THREADS_MIN_BYTES = 256 << 20;

/**
 * Makes this thread start a pool of its own the first time a transfer of
 * {@link OWN_HASH_THREADS_MIN_BYTES} or more begins: a session that moves
 * only smaller files never pays for it.
 */
export function useOwnHashThreads(count: number = defaultHashThreadCount()): void {
  ownPool = () =>
    HashThreadPool.start(count).then(
      (pool) => new HashThreads(pool.link()),
      () => null, // No hash threads: every transfer hashes in place, as on one core.
    );
}

/**
 * The hash a transfer of `size` bytes feeds its bytes to: on a free hash
 * thread when the transfer is large enough and this thread has hash
 * threads, else in place.
 *
 * @example
 * ```ts
 * import { createTransferHash } from "./hash_threads.ts";
 * using hash = await createTransferHash("xxh3-128", 3);
 * await hash.update(new TextEncoder().encode("abc"));
 * console.assert((await hash.digest()).hex === "06b05ab6733a618578af5f94892f3950");
 * ```
 */
export async function createTransferHash(
  algorithm: ChecksumName,
  size: number,
): Promise<TransferHash> {
  if (size >= OFF_THREAD_HASH_MIN_BYTES) {
    if (hashThreadsHere === null && ownPool !== null && size >= OWN_HASH_THREADS_MIN_BYTES) {
      hashThreadsHere = ownPool();
    }
    const leased = (await hashThreadsHere)?.lease(algorithm);
    if (leased) return leased;
  }
  return await createStreamingHash(algorithm);
}
