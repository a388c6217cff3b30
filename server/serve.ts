/**
 * `fts serve`: resolves the root, starts the sandboxed server worker, writes
 * the port files, and turns signals and `terminate` into a clean shutdown.
 * Runs on the main thread, which never reads from the network.
 *
 * @module
 */

import { parseServeArgs, SERVE_HELP, type ServerConfig, type ServeSetup } from "./config.ts";
import { connectLines } from "./connect_lines.ts";
import { removePortFiles, writePortFiles } from "./port_file.ts";
import { startSandboxedWorker } from "./sandbox.ts";
import { isLoopback } from "./session.ts";
import { openAncestorWarnings } from "./root_warnings.ts";
import { loadTls } from "./tls_identity.ts";
import type { FromWorker, ToWorker } from "./worker.ts";

/** Runs `fts serve` with its arguments; resolves with the exit code. */
export async function serve(args: string[]): Promise<number> {
  const setup = await parseServeArgs(args, Deno.env);
  if (setup === "help") {
    console.log(SERVE_HELP);
    return 0;
  }
  const { config } = setup;
  await Deno.mkdir(config.root, { recursive: true });
  config.root = await Deno.realPath(config.root);
  const tls = await loadTls(setup.tlsSource, setup.stateDir);
  config.tls = tls ? { cert: tls.cert, key: tls.key } : null;
  if (tls) console.log(`fts: TLS certificate SHA-256 fingerprint ${tls.fingerprint}`);
  const warning = exposureWarning(config);
  if (warning) console.error(`fts: warning: ${warning}`);
  // Checked here: the worker may not look above the root.
  for (const open of openAncestorWarnings(config.root)) console.error(`fts: warning: ${open}`);
  return await runWorker(setup, tls?.fingerprint ?? null);
}

/** The warning for a server without authentication on an address other machines can reach. */
export function exposureWarning(config: ServerConfig): string | null {
  if (config.tokens !== null || isLoopback(config.hostname)) return null;
  return `authentication is off (--no-auth) and ${config.hostname} is reachable from other machines`;
}

function runWorker(setup: ServeSetup, fingerprint: string | null): Promise<number> {
  const { config, portFile } = setup;
  const worker = startSandboxedWorker(
    new URL("./worker.ts", import.meta.url),
    config.root,
    config.hostname,
    config.port,
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
      if (port !== 0) await removePortFiles(portFile, port).catch(() => {});
      worker.terminate();
      done(code);
    };

    worker.onmessage = async (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "listening": {
          port = message.port;
          await writePortFiles(portFile, port, {
            token: setup.localToken,
            tls: fingerprint ? { fingerprint } : null,
          });
          const shown = message.hostname.includes(":")
            ? `[${message.hostname}]:${port}`
            : `${message.hostname}:${port}`;
          // One write, so whoever waits for the "serving" line also has the connect line.
          const lines = [`fts: serving ${config.root} on ${shown}`];
          if (setup.showToken) {
            const connect = connectLines({
              hostname: message.hostname,
              port,
              token: setup.localToken!,
              fingerprint,
              interfaces: listInterfaces(),
            });
            lines.push(...connect.map((line) => `fts: connect with: ${line}`));
          }
          console.log(lines.join("\n"));
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
    worker.postMessage({ type: "start", config } satisfies ToWorker);
  });
}

/** This host's network interfaces; none when the system will not tell. */
function listInterfaces(): Deno.NetworkInterfaceInfo[] {
  try {
    return Deno.networkInterfaces();
  } catch {
    return [];
  }
}
