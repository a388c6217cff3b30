/**
 * Entry point of the sandboxed server worker. The main thread sends `start`
 * and, on a signal, `shutdown`; the worker answers `listening`, `failed` and
 * `stopped`. A `terminate` from a client stops the server from here and the
 * main thread exits on `stopped`.
 *
 * @module
 */

import { FtsServer } from "./listener.ts";
import { assertSandboxed } from "./sandbox.ts";
import { Storage } from "./storage.ts";

/** Messages from the main thread. */
export type ToWorker =
  | {
    type: "start";
    root: string;
    hostname: string;
    port: number;
    maxFileBytes: number;
    graceMs: number;
  }
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

async function start(message: Extract<ToWorker, { type: "start" }>): Promise<void> {
  try {
    await assertSandboxed(message.root);
    const storage = await Storage.open(message.root);
    const listener = Deno.listen({ hostname: message.hostname, port: message.port });
    graceMs = message.graceMs;
    server = new FtsServer(listener, {
      storage,
      maxFileBytes: message.maxFileBytes,
      onTerminate: () => void stop("terminate"),
    });
    server.start();
    const addr = listener.addr as Deno.NetAddr;
    post({ type: "listening", hostname: addr.hostname, port: addr.port });
  } catch (err) {
    post({ type: "failed", message: err instanceof Error ? err.message : String(err) });
  }
}

self.onmessage = (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (message.type === "start") void start(message);
  else if (message.type === "shutdown") void stop("signal");
};
