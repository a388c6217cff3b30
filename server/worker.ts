/**
 * Entry point of the sandboxed server worker. The main thread sends `start`
 * and, on a signal, `shutdown`; the worker answers `listening`, `failed` and
 * `stopped`. A `terminate` from a client stops the server from here and the
 * main thread exits on `stopped`.
 *
 * @module
 */

import { AuthThrottle } from "./auth_throttle.ts";
import type { ServerConfig } from "./config.ts";
import { type ConnListener, FtsServer } from "./listener.ts";
import { logEvent, setLogFormat } from "./log.ts";
import { assertSandboxed } from "./sandbox.ts";
import { Storage } from "./storage.ts";
import { TlsListener } from "./tls_listener.ts";
import { TokenVerifier } from "./tokens.ts";

/** Messages from the main thread. */
export type ToWorker =
  | { type: "start"; config: ServerConfig }
  | { type: "shutdown" };

/** Messages to the main thread. */
export type FromWorker =
  | { type: "listening"; hostname: string; port: number }
  | { type: "failed"; message: string }
  | { type: "stopped"; reason: "terminate" | "signal" };

declare const self: Worker;

let server: FtsServer | null = null;
let graceMs = 0;
let stopping = false;

function post(message: FromWorker): void {
  self.postMessage(message);
}

async function stop(reason: "terminate" | "signal"): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server?.shutdown(graceMs);
  post({ type: "stopped", reason });
}

async function start(config: ServerConfig): Promise<void> {
  try {
    await assertSandboxed(config.root, { hostname: config.hostname, port: config.port });
    setLogFormat(config.logFormat);
    const storage = await Storage.open(config.root, config.limits);
    const address = { hostname: config.hostname, port: config.port };
    // Not Deno.listenTls: see TlsListener for the descriptors it would leak.
    const listener: ConnListener = config.tls
      ? TlsListener.open({ ...address, cert: config.tls.cert, key: config.tls.key })
      : Deno.listen(address);
    graceMs = config.graceMs;
    server = new FtsServer(listener, {
      storage,
      limits: config.limits,
      verifier: config.tokens ? new TokenVerifier(config.tokens) : null,
      throttle: new AuthThrottle(),
      readOnly: config.readOnly,
      checksums: config.checksums,
      onTerminate: () => void stop("terminate"),
    });
    server.start();
    const addr = listener.addr as Deno.NetAddr;
    post({ type: "listening", hostname: addr.hostname, port: addr.port });
  } catch (err) {
    post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
  }
}

// A failure nobody awaited must not take every session down with it: the
// session it came from has ended (or will, on its own error); log and go on.
globalThis.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  logEvent({ peer: "-", op: "server", result: "INTERNAL", detail: `unhandled: ${event.reason}` });
});

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "start") void start(message.config);
  else if (message.type === "shutdown") void stop("signal");
};
