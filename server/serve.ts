/**
 * `fts serve`: resolves the root, starts the sandboxed server workers
 * (worker_pool.ts), writes the port files, and turns signals and `terminate`
 * into a clean shutdown of every worker. Runs on the main thread, which never
 * reads from the network.
 *
 * @module
 */

import { EXIT_INTERRUPTED } from "../cli/exit_codes.ts";
import { listenForInterrupts } from "../cli/interrupt_signals.ts";
import { parseServeArgs, SERVE_HELP, type ServerConfig, type ServeSetup } from "./config.ts";
import { connectLines } from "./connect_lines.ts";
import { setLogLock, writeStderrLine } from "./log.ts";
import { removePortFiles, writePortFiles } from "./port_file.ts";
import { isLoopback } from "./session.ts";
import { openAncestorWarnings } from "./root_warnings.ts";
import { keptToken } from "./kept_token.ts";
import { canListen, keepLastPort, readLastPort } from "./last_port.ts";
import { ServerLease } from "./server_lease.ts";
import { loadTls } from "./tls_identity.ts";
import { effectiveWorkers, WorkerPool } from "./worker_pool.ts";
import { openBucket } from "./s3/open_bucket.ts";
import { LARGE_CREATE_NOTE } from "./s3/s3_store.ts";

/** Runs `fts serve` with its arguments; resolves with the exit code. */
export async function serve(args: string[]): Promise<number> {
  const setup = await parseServeArgs(args, Deno.env);
  if (setup === "help") {
    console.log(SERVE_HELP);
    return 0;
  }
  const { config } = setup;
  if (config.store !== null) {
    const { abortedUploads } = await openBucket(config.store, config.limits.quotaBytes);
    if (abortedUploads > 0) {
      console.error(`fts: aborted ${abortedUploads} multipart upload(s) abandoned long ago`);
    }
    // Said at start, once, rather than discovered by each refused upload.
    console.error(`fts: note: ${LARGE_CREATE_NOTE}`);
  } else {
    await Deno.mkdir(config.root, { recursive: true });
    config.root = await Deno.realPath(config.root);
  }
  if (setup.showToken && setup.stateDir !== null) await useKeptToken(setup, setup.stateDir);
  if (!setup.portGiven && setup.stateDir !== null) await useLastPort(setup, setup.stateDir);
  const tls = await loadTls(setup.tlsSource, setup.stateDir);
  config.tls = tls ? { cert: tls.cert, key: tls.key } : null;
  if (tls) console.log(`fts: TLS certificate SHA-256 fingerprint ${tls.fingerprint}`);
  const warning = exposureWarning(config);
  if (warning) console.error(`fts: warning: ${warning}`);
  if (config.store !== null) return await runWorkers(setup, tls?.fingerprint ?? null, null);
  // Checked here: the worker may not look above the root.
  for (const open of openAncestorWarnings(config.root)) console.error(`fts: warning: ${open}`);
  const lease = await ServerLease.take(config.root);
  return await runWorkers(setup, tls?.fingerprint ?? null, lease);
}

/**
 * Serves with the generated token kept from the last start, so that the
 * connect line it printed still works (or keeps this start's for the next).
 */
async function useKeptToken(setup: ServeSetup, stateDir: string): Promise<void> {
  const token = await keptToken(stateDir, setup.config.root, setup.localToken!, setup.newToken);
  setup.localToken = token;
  setup.config.tokens = (setup.config.tokens ?? []).map((t) =>
    t.name === "local" ? { ...t, token } : t
  );
}

/**
 * Listens on the port this root was served on last, so that the connect line
 * printed then still works; if that port is taken now, the system chooses.
 */
async function useLastPort(setup: ServeSetup, stateDir: string): Promise<void> {
  const { config } = setup;
  const last = await readLastPort(stateDir, config.root);
  if (last === null) return;
  if (canListen(config.hostname, last)) {
    config.port = last;
  } else {
    console.error(
      `fts: port ${last}, where this root was served last, is in use; choosing another`,
    );
  }
}

/** The warning for a server without authentication on an address other machines can reach. */
export function exposureWarning(config: ServerConfig): string | null {
  if (config.tokens !== null || isLoopback(config.hostname)) return null;
  return `authentication is off (--no-auth) and ${config.hostname} is reachable from other machines`;
}

/**
 * Runs the workers under `lease`, this server's lease on the root, which they
 * name in the root's shared state and which is refreshed until they stop
 * (none for a bucket: its servers share no state but the bucket).
 */
function runWorkers(
  setup: ServeSetup,
  fingerprint: string | null,
  lease: ServerLease | null,
): Promise<number> {
  const { config, portFile } = setup;
  return new Promise((done) => {
    let port = 0;
    let finished = false;
    let stopping = false;
    const pool: WorkerPool = new WorkerPool(config, effectiveWorkers(setup.workers), {
      onTerminate: () => void stop("terminate"),
      onFailure: (message) => {
        writeStderrLine(`fts: ${message}`);
        void finish(1);
      },
    });
    // The main thread's lines are whole among the workers' too.
    setLogLock(pool.shared.logLock);
    if (lease !== null) {
      pool.shared.root.server = { id: lease.id, expired: lease.expired };
      lease.keepRefreshed((message) => writeStderrLine(`fts: warning: ${message}`));
    }

    // One Ctrl-C, however many copies of it arrive (deno task passes one on), stops cleanly;
    // a second press stops waiting for transfers.
    listenForInterrupts(
      Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"],
      (presses) => void (presses === 1 ? stop("signal") : finish(EXIT_INTERRUPTED)),
    );

    const finish = async (code: number) => {
      if (finished) return;
      finished = true;
      // The listeners stay until the process exits: a copy of the Ctrl-C that deno task passes on
      // can come after the first, and with no listener SIGINT would kill fts (exit 130).
      if (port !== 0) await removePortFiles(portFile, port).catch(() => {});
      pool.terminate();
      await lease?.end();
      done(code);
    };
    /** Stops every worker, each letting its transfers finish, then exits 0. */
    const stop = async (reason: "terminate" | "signal") => {
      if (stopping) return;
      stopping = true;
      await pool.stop();
      writeStderrLine(`fts: stopped (${reason})`);
      await finish(0);
    };

    pool.start().then(async (address) => {
      if (stopping || finished) return;
      port = address.port;
      if (setup.stateDir !== null) {
        await keepLastPort(setup.stateDir, config.root, port).catch((err) =>
          writeStderrLine(
            `fts: warning: could not keep the port for the next start: ${err.message}`,
          )
        );
      }
      await writePortFiles(portFile, port, {
        token: setup.localToken,
        tls: fingerprint ? { fingerprint } : null,
      });
      const shown = address.hostname.includes(":")
        ? `[${address.hostname}]:${port}`
        : `${address.hostname}:${port}`;
      // One write, so whoever waits for the "serving" line also has the connect line.
      const lines = [`fts: serving ${config.root} on ${shown}`];
      if (setup.showToken) {
        const connect = connectLines({
          hostname: address.hostname,
          port,
          token: setup.localToken!,
          fingerprint,
          interfaces: listInterfaces(),
        });
        lines.push(...connect.map((line) => `fts: connect with: ${line}`));
      }
      console.log(lines.join("\n"));
    }, () => {
      // Reported by onFailure.
    });
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
