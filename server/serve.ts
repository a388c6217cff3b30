/**
 * `fts serve`: resolves the root, starts the sandboxed server worker, writes
 * the port file, and turns signals and `terminate` into a clean shutdown.
 * Runs on the main thread, which never reads from the network.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { MAX_FILE_BYTES } from "../protocol/limits.ts";
import { removePortFile, writePortFile } from "./port_file.ts";
import { startSandboxedWorker } from "./sandbox.ts";
import { UsageError } from "../cli/usage_error.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

/** Served directory when `--root` is not given. */
export const DEFAULT_ROOT = "uploads";
/** Listen address when `--host` is not given: this host only, until authentication exists. */
export const DEFAULT_HOST = "127.0.0.1";
/** Port file when `--port-file` is not given. */
export const DEFAULT_PORT_FILE = "port";
/** How long transfers in flight may take to finish once shutdown starts. */
export const SHUTDOWN_GRACE_MS = 10_000;

export const SERVE_HELP = `Usage: fts serve [--root DIR] [--host HOST] [--port N] [--port-file FILE]

Serve one directory to any number of fts clients.

Options:
  --root DIR         directory to serve, created if missing (default: ./${DEFAULT_ROOT})
  --host HOST        address to listen on (default: ${DEFAULT_HOST}, this host only)
  --port N           port to listen on; 0 lets the system choose (default: 0)
  --port-file FILE   where to write the port number (default: ./${DEFAULT_PORT_FILE})
  -h, --help         show this help

The server prints "fts: serving DIR on HOST:PORT" once it listens, and removes
the port file when it stops (on terminate, Ctrl-C or SIGTERM).
`;

/** Runs `fts serve` with its arguments; resolves with the exit code. */
export async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: "string", default: DEFAULT_ROOT },
      host: { type: "string", default: DEFAULT_HOST },
      port: { type: "string", default: "0" },
      "port-file": { type: "string", default: DEFAULT_PORT_FILE },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) {
    console.log(SERVE_HELP);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UsageError(`--port must be a number from 0 to 65535, got '${values.port}'`);
  }
  const hostname = values.host.replace(/^\[(.*)\]$/, "$1");
  await Deno.mkdir(resolve(values.root), { recursive: true });
  const root = await Deno.realPath(resolve(values.root));
  const portFile = resolve(values["port-file"]);
  return await runWorker({
    type: "start",
    root,
    hostname,
    port,
    maxFileBytes: MAX_FILE_BYTES,
    graceMs: SHUTDOWN_GRACE_MS,
  }, portFile);
}

function runWorker(start: Extract<ToWorker, { type: "start" }>, portFile: string): Promise<number> {
  const worker = startSandboxedWorker(
    new URL("./worker.ts", import.meta.url),
    start.root,
    start.hostname,
  );
  return new Promise((done) => {
    let port = 0;
    let signals = 0;
    const onSignal = () => {
      signals += 1;
      if (signals === 1) worker.postMessage({ type: "shutdown" } satisfies ToWorker);
      else void finish(130); // A second Ctrl-C: stop waiting for transfers.
    };
    const signalNames: Deno.Signal[] = Deno.build.os === "windows"
      ? ["SIGINT"]
      : ["SIGINT", "SIGTERM"];
    for (const name of signalNames) Deno.addSignalListener(name, onSignal);

    const finish = async (code: number) => {
      for (const name of signalNames) Deno.removeSignalListener(name, onSignal);
      if (port !== 0) await removePortFile(portFile, port).catch(() => {});
      worker.terminate();
      done(code);
    };

    worker.onmessage = async (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "listening": {
          port = message.port;
          await writePortFile(portFile, port);
          const shown = message.hostname.includes(":")
            ? `[${message.hostname}]:${port}`
            : `${message.hostname}:${port}`;
          console.log(`fts: serving ${start.root} on ${shown}`);
          break;
        }
        case "failed":
          console.error(`fts: cannot serve: ${message.message}`);
          await finish(1);
          break;
        case "stopped":
          console.error(`fts: stopped (${message.reason})`);
          await finish(0);
          break;
      }
    };
    worker.onerror = (event) => {
      event.preventDefault();
      console.error(`fts: server failed: ${event.message}`);
      void finish(1);
    };
    worker.postMessage(start satisfies ToWorker);
  });
}
