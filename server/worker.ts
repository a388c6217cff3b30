/**
 * Entry point of a sandboxed server worker; `fts serve` runs one or several
 * (worker_pool.ts), all accepting on one port. The main thread sends `start`
 * and, to stop, `shutdown`; the worker answers `listening`, `failed` and
 * `stopped`, and sends `terminate` when a client asks the server to stop (the
 * main thread then stops every worker). What the workers share is in
 * shared_state.ts.
 *
 * @module
 */

import { type HashThreadLink, useHashThreads } from "../io/hash_threads.ts";
import type { ServerConfig } from "./config.ts";
import { ConnectionSlots } from "./connection_slots.ts";
import { type ConnListener, FtsServer } from "./listener.ts";
import { logEvent, setLogFormat, setLogLock, setLogWorker } from "./log.ts";
import { assertSandboxed } from "./sandbox.ts";
import { shareHeldUploads } from "./session.ts";
import { BackoffClient, type BackoffReply, type BackoffRequest } from "./shared_backoff.ts";
import type { SharedServerState } from "./shared_state.ts";
import { Storage } from "./storage.ts";
import type { Store } from "./store.ts";
import { BucketSpace } from "./s3/bucket_space.ts";
import { bucketClient } from "./s3/open_bucket.ts";
import { S3Store } from "./s3/s3_store.ts";
import { TlsListener } from "./tls_listener.ts";
import { TokenVerifier } from "./tokens.ts";
import { DATA_BUFFERS } from "../io/pump.ts";

/** Which worker this is, and what it shares with the others. */
export interface WorkerPlace {
  /** The worker's number, from 1, named in its log lines. */
  id: number;
  /**
   * Whether this worker opens the root (locks it, cleans up, measures it):
   * the first; the others attach to it once it has.
   */
  opensRoot: boolean;
  /** Whether the port is shared with other workers (`SO_REUSEPORT`, Linux only). */
  sharesPort: boolean;
  /** The state every worker shares. */
  shared: SharedServerState;
}

/** Messages from the main thread. */
export type ToWorker =
  | { type: "start"; config: ServerConfig; place: WorkerPlace; hashThreads: HashThreadLink }
  | { type: "shutdown" }
  | BackoffReply;

/** Messages to the main thread. */
export type FromWorker =
  | { type: "listening"; hostname: string; port: number }
  | { type: "failed"; message: string }
  | { type: "terminate" }
  | { type: "stopped" }
  | BackoffRequest;

declare const self: Worker;

let server: FtsServer | null = null;
let graceMs = 0;
let stopping = false;
const backoff = new BackoffClient((request) => post(request));

function post(message: FromWorker): void {
  self.postMessage(message);
}

async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server?.shutdown(graceMs);
  post({ type: "stopped" });
}

async function start(config: ServerConfig, place: WorkerPlace): Promise<void> {
  try {
    await assertSandboxed(
      config.root,
      { hostname: config.hostname, port: config.port },
      config.store?.endpoint ?? null,
    );
    setLogFormat(config.logFormat);
    setLogWorker(place.id);
    setLogLock(place.shared.logLock);
    DATA_BUFFERS.shareAllocations(place.shared.bufferPairs);
    shareHeldUploads(place.shared.heldUploads);
    const storage = await openStore(config, place);
    const listener = listen(config, place);
    graceMs = config.graceMs;
    server = new FtsServer(listener, {
      storage,
      limits: config.limits,
      verifier: config.tokens ? new TokenVerifier(config.tokens) : null,
      throttle: backoff,
      slots: new ConnectionSlots(place.shared.connections, config.limits),
      pendingRefusals: place.shared.pendingRefusals,
      readOnly: config.readOnly,
      checksums: config.checksums,
      onTerminate: () => {
        // This worker stops accepting at once; the main thread stops the others.
        post({ type: "terminate" });
        void stop();
      },
    });
    if (stopping) {
      listener.close(); // Told to stop while starting: "stopped" has gone out already.
      return;
    }
    server.start();
    const addr = listener.addr as Deno.NetAddr;
    post({ type: "listening", hostname: addr.hostname, port: addr.port });
  } catch (err) {
    post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
  }
}

/** The store the config names: its bucket, or the root (opened by the first worker, attached to by the others). */
async function openStore(config: ServerConfig, place: WorkerPlace): Promise<Store> {
  const { store } = config;
  if (store !== null) {
    const space = new BucketSpace(store.counts!, config.limits.quotaBytes);
    return new S3Store(bucketClient(store), store.prefix, space);
  }
  return place.opensRoot
    ? await Storage.open(config.root, config.limits, place.shared.root)
    : await Storage.attach(config.root, config.limits, place.shared.root);
}

/**
 * Listens on the configured address, sharing the port with the other
 * workers when `place` says so. The first worker on a given port checks
 * first that nothing listens there: a socket that shares its port joins any
 * other that does (of the same user), such as another server's.
 */
function listen(config: ServerConfig, place: WorkerPlace): ConnListener {
  const address = { hostname: config.hostname, port: config.port, reusePort: place.sharesPort };
  if (place.sharesPort && place.opensRoot && config.port !== 0) {
    Deno.listen({ hostname: config.hostname, port: config.port }).close();
  }
  // Not Deno.listenTls: see TlsListener for the descriptors it would leak.
  return config.tls
    ? TlsListener.open({ ...address, cert: config.tls.cert, key: config.tls.key })
    : Deno.listen(address);
}

// A failure nobody awaited must not take every session down with it: the
// session it came from has ended (or will, on its own error); log and go on.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  logEvent({ peer: "-", op: "server", result: "INTERNAL", detail: `unhandled: ${event.reason}` });
});

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      useHashThreads(message.hashThreads);
      void start(message.config, message.place);
      break;
    case "shutdown":
      void stop();
      break;
    case "auth-backoff":
      backoff.answer(message);
      break;
  }
};
