/**
 * The server's sandboxed workers, seen from the main thread: several serve
 * one root on one port (`SO_REUSEPORT`, where the kernel spreads new
 * connections over the listeners), so that sessions run on every core. The
 * first worker opens the root and binds the port (the system's choice for
 * port 0); the others then start on that port and attach to the root. The
 * pool answers what the workers share by message (the authentication
 * back-off), passes a client's `terminate` on, and stops them all.
 *
 * Linux only: elsewhere a port cannot be shared this way, and one worker
 * serves, as it does with `--workers 1`.
 *
 * @module
 */

import { AuthThrottle } from "./auth_throttle.ts";
import type { ServerConfig } from "./config.ts";
import { HashThreadPool } from "../io/hash_threads.ts";
import { startSandboxedWorker } from "./sandbox.ts";
import { answerBackoff } from "./shared_backoff.ts";
import { allocateSharedState, type SharedServerState } from "./shared_state.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

/** What the pool tells the main thread. */
export interface PoolEvents {
  /** A client asked the server to terminate, through any worker. */
  onTerminate(): void;
  /** A worker failed: `message` says how, for the operator. */
  onFailure(message: string): void;
}

/** The address the workers listen on. */
export interface ListenAddress {
  /** As the first worker's listener reports it. */
  hostname: string;
  /** The port every worker shares. */
  port: number;
}

/** How many workers serve on this system when `requested` are asked for. */
export function effectiveWorkers(requested: number): number {
  return Deno.build.os === "linux" ? requested : 1;
}

/** One running worker, and what it has said. */
interface RunningWorker {
  worker: Worker;
  /** Resolves when it listens; rejects with its failure at start. */
  listening: Promise<ListenAddress>;
  /** Resolves when it has stopped (or ended). */
  stopped: Promise<void>;
}

/** The workers of one server. */
export class WorkerPool {
  readonly #config: ServerConfig;
  readonly #count: number;
  readonly #events: PoolEvents;
  /** The state all workers share; the main thread holds it too (the log lock). */
  readonly shared: SharedServerState;
  readonly #throttle = new AuthThrottle();
  readonly #running: RunningWorker[] = [];
  /** Where large transfers are hashed, off the workers that move their bytes; shared by all. */
  #hashThreads: HashThreadPool | null = null;
  #stopping = false;

  /** A pool of `count` workers (see {@link effectiveWorkers}) serving `config`, not started. */
  constructor(config: ServerConfig, count: number, events: PoolEvents) {
    this.#config = config;
    this.#count = count;
    this.#events = events;
    this.shared = allocateSharedState(config.limits);
  }

  /**
   * Starts the workers: the first on the configured port, then the others,
   * at once, on the port it got. Resolves with the address once all listen;
   * rejects with the first failure.
   */
  async start(): Promise<ListenAddress> {
    this.#hashThreads = await HashThreadPool.start();
    const first = this.#spawn(1, this.#config.port);
    const address = await first.listening;
    const others: Promise<ListenAddress>[] = [];
    for (let id = 2; id <= this.#count && !this.#stopping; id++) {
      others.push(this.#spawn(id, address.port).listening);
    }
    await Promise.all(others);
    return address;
  }

  /**
   * Tells every worker to stop (each lets its transfers in flight finish for
   * the shutdown grace, all at once); resolves when all have stopped.
   */
  async stop(): Promise<void> {
    this.#stopping = true;
    for (const { worker } of this.#running) post(worker, { type: "shutdown" });
    await Promise.all(this.#running.map((running) => running.stopped));
    this.#hashThreads?.terminate();
  }

  /** Ends every worker now. */
  terminate(): void {
    this.#stopping = true;
    for (const { worker } of this.#running) worker.terminate();
    this.#hashThreads?.terminate();
  }

  /** Starts worker `id`, sandboxed to the root and `port`. */
  #spawn(id: number, port: number): RunningWorker {
    const config = { ...this.#config, port };
    const worker = startSandboxedWorker(
      new URL("./worker.ts", import.meta.url),
      config.root,
      config.hostname,
      port,
      config.store?.endpoint ?? null,
    );
    let listened: (address: ListenAddress) => void = () => {};
    let failed: (err: Error) => void = () => {};
    let stopped: () => void = () => {};
    const running: RunningWorker = {
      worker,
      listening: new Promise((resolve, reject) => {
        listened = resolve;
        failed = reject;
      }),
      stopped: new Promise((resolve) => stopped = resolve),
    };
    // Whoever awaits the start hears of a failure; afterwards, the events do.
    running.listening.catch(() => {});
    worker.onmessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "listening":
          listened({ hostname: message.hostname, port: message.port });
          break;
        case "failed":
          failed(new Error(message.message));
          stopped();
          this.#events.onFailure(`cannot serve: ${message.message}`);
          break;
        case "terminate":
          this.#events.onTerminate();
          break;
        case "stopped":
          stopped();
          break;
        case "auth-failure":
        case "auth-success":
          post(worker, answerBackoff(this.#throttle, message));
          break;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      failed(new Error(event.message));
      stopped();
      this.#events.onFailure(`server failed: ${event.message}`);
    };
    this.#running.push(running);
    const hashThreads = this.#hashThreads!.link();
    worker.postMessage(
      {
        type: "start",
        config,
        place: { id, opensRoot: id === 1, sharesPort: this.#count > 1, shared: this.shared },
        hashThreads,
      } satisfies ToWorker,
      hashThreads.ports,
    );
    return running;
  }
}

function post(worker: Worker, message: ToWorker): void {
  worker.postMessage(message);
}
