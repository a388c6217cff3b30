/**
 * `fts serve`'s flags, their defaults, and the configuration they produce
 * for the server worker. Every limit is a flag with a documented default.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { MAX_CONTROL_BYTES, MAX_FILE_BYTES, MIN_CONTROL_BYTES } from "../protocol/limits.ts";
import { type AccessToken, checkToken, generateToken, parseTokensFile } from "./tokens.ts";

/** Served directory when `--root` is not given. */
export const DEFAULT_ROOT = "uploads";
/** Listen address with authentication on: every interface. */
export const DEFAULT_HOST_WITH_AUTH = "0.0.0.0";
/** Listen address with `--no-auth`: this host only. */
export const DEFAULT_HOST_WITHOUT_AUTH = "127.0.0.1";
/** Port file when `--port-file` is not given. */
export const DEFAULT_PORT_FILE = "port";
/** How long transfers in flight may take to finish once shutdown starts, in seconds. */
export const DEFAULT_SHUTDOWN_GRACE_S = 10;
/** Connections served at once; one more gets BUSY at once. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** Connections one peer address may hold at once. */
export const DEFAULT_MAX_CONNECTIONS_PER_PEER = 256;
/** A session that sends nothing for this long is closed. */
export const DEFAULT_IDLE_TIMEOUT_S = 300;
/** Time from connect to a completed handshake and authentication. */
export const DEFAULT_HANDSHAKE_TIMEOUT_S = 10;
/**
 * Least bytes per second an upload's or download's data must move: 8 kbit/s,
 * below any link an honest client transfers over (2G GPRS is several times
 * this), above a trickle that only feeds the idle timer.
 */
export const DEFAULT_MIN_RATE_BYTES_PER_S = 1024;
/**
 * The window that rate is measured over: long enough to ride out a stall (a
 * Wi-Fi handover, TCP's retransmission back-off), short enough to free a
 * trickling peer's slot within a minute.
 */
export const DEFAULT_MIN_RATE_WINDOW_S = 30;
/** Free space an upload must leave on the root's file system. */
export const DEFAULT_RESERVE_BYTES = 64 * 1024 * 1024;

/** Limits the worker enforces. */
export interface ServerLimits {
  maxConnections: number;
  maxConnectionsPerPeer: number;
  idleTimeoutMs: number;
  handshakeTimeoutMs: number;
  /** Least bytes per second in an upload's or download's data; 0 for no floor. */
  minRateBytesPerSecond: number;
  /** The window {@link ServerLimits.minRateBytesPerSecond} is measured over. */
  minRateWindowMs: number;
  maxControlBytes: number;
  maxFileBytes: number;
  /** Bytes the root's files may use in all, or null for no quota. */
  quotaBytes: number | null;
  reserveBytes: number;
}

/** Everything the server worker needs; structured-cloneable. */
export interface ServerConfig {
  root: string;
  hostname: string;
  port: number;
  /** Accepted tokens, or null when authentication is off (`--no-auth`). */
  tokens: AccessToken[] | null;
  tls: { cert: string; key: string } | null;
  readOnly: boolean;
  logFormat: "text" | "json";
  graceMs: number;
  limits: ServerLimits;
}

/** What the main thread keeps for itself: files it writes, secrets it shows. */
export interface ServeSetup {
  config: ServerConfig;
  portFile: string;
  /** The admin token written beside the port file for clients in the same directory. */
  localToken: string | null;
  /** Print the local token with the connect line (it was generated, not given). */
  showToken: boolean;
  tlsSource: { certFile: string; keyFile: string } | "generate" | null;
  stateDir: string | null;
}

export const SERVE_HELP = `Usage: fts serve [OPTIONS]

Serve one directory to any number of fts clients.

Where:
  --root DIR                 directory to serve, created if missing (default: ./${DEFAULT_ROOT})
  --host HOST                address to listen on (default: ${DEFAULT_HOST_WITH_AUTH}, all interfaces;
                             ${DEFAULT_HOST_WITHOUT_AUTH} with --no-auth)
  --port N                   port; 0 lets the system choose (default: 0)
  --port-file FILE           where to write the port (default: ./${DEFAULT_PORT_FILE}); FILE.json beside it,
                             readable by the owner only, lets local clients connect without flags

Authentication (default: a random admin token, printed at start):
  --token TOKEN              accept this admin token (also: FTS_TOKEN)
  --tokens FILE              accept the tokens in FILE, lines of 'ROLE NAME TOKEN'
                             (roles: read, write, admin)
  --no-auth                  accept everyone (terminate only from this host)

Encryption:
  --tls                      TLS with a certificate generated once and kept in the state directory
  --tls-cert FILE --tls-key FILE   TLS with this certificate and key (PEM)
  --state-dir DIR            where --tls keeps its certificate (default: $XDG_STATE_HOME/fts
                             or ~/.local/state/fts)

Limits:
  --max-connections N        connections at once; more get BUSY (default: ${DEFAULT_MAX_CONNECTIONS})
  --max-connections-per-peer N   per peer address (default: ${DEFAULT_MAX_CONNECTIONS_PER_PEER})
  --idle-timeout SECONDS     close sessions silent this long (default: ${DEFAULT_IDLE_TIMEOUT_S})
  --handshake-timeout SECONDS   to connect and authenticate (default: ${DEFAULT_HANDSHAKE_TIMEOUT_S})
  --min-rate SIZE            close a transfer (or a request) whose bytes move slower than SIZE
                             bytes per second over a window; 0 turns it off (default: 1K)
  --min-rate-window SECONDS  the window --min-rate is measured over (default: ${DEFAULT_MIN_RATE_WINDOW_S})
  --max-control-bytes N      largest control message (default: ${MAX_CONTROL_BYTES})
  --max-file-size SIZE       largest file accepted (default: no limit below 2^53-1 bytes)
  --quota SIZE               bytes the root's files may use in all (default: none)
  --reserve SIZE             free space an upload must leave (default: 64M)
  --read-only                refuse uploads, deletes, mkdir and rename
  --shutdown-grace SECONDS   on terminate, Ctrl-C or SIGTERM, how long transfers in flight may
                             take to finish before they are cut off (default: ${DEFAULT_SHUTDOWN_GRACE_S})

Output:
  --log-format text|json     request log on stderr (default: text)
  -h, --help                 show this help

SIZE is bytes, or a number with K, M, G or T (powers of 1024).
The server prints "fts: serving DIR on HOST:PORT" once it listens, and
removes its port file when it stops (terminate, Ctrl-C or SIGTERM).
`;

/** Parses `fts serve`'s arguments. `env` supplies FTS_TOKEN. Reads the tokens file. */
export async function parseServeArgs(
  args: string[],
  env: { get(name: string): string | undefined },
): Promise<ServeSetup | "help"> {
  const { values } = parseArgs({
    args,
    options: {
      root: { type: "string", default: DEFAULT_ROOT },
      host: { type: "string" },
      port: { type: "string", default: "0" },
      "port-file": { type: "string", default: DEFAULT_PORT_FILE },
      token: { type: "string" },
      tokens: { type: "string" },
      "no-auth": { type: "boolean" },
      tls: { type: "boolean" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "state-dir": { type: "string" },
      "max-connections": { type: "string" },
      "max-connections-per-peer": { type: "string" },
      "idle-timeout": { type: "string" },
      "handshake-timeout": { type: "string" },
      "min-rate": { type: "string" },
      "min-rate-window": { type: "string" },
      "max-control-bytes": { type: "string" },
      "max-file-size": { type: "string" },
      quota: { type: "string" },
      reserve: { type: "string" },
      "read-only": { type: "boolean" },
      "shutdown-grace": { type: "string" },
      "log-format": { type: "string", default: "text" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return "help";

  const envToken = env.get("FTS_TOKEN");
  const tokenGiven = values.token ?? envToken;
  const noAuth = values["no-auth"] === true;
  if (noAuth && (tokenGiven !== undefined || values.tokens !== undefined)) {
    throw new UsageError("--no-auth cannot be combined with --token, FTS_TOKEN or --tokens");
  }
  if (values.token !== undefined && values.tokens !== undefined) {
    throw new UsageError("give --token or --tokens, not both");
  }
  let tokens: AccessToken[] | null = null;
  let localToken: string | null = null;
  let showToken = false;
  if (!noAuth) {
    localToken = generateToken();
    tokens = [{ name: "local", role: "admin", token: localToken }];
    if (values.tokens !== undefined) {
      const path = resolve(values.tokens);
      tokens.push(...parseTokensFile(await Deno.readTextFile(path), path));
    } else if (tokenGiven !== undefined) {
      try {
        checkToken(tokenGiven, values.token !== undefined ? "--token" : "FTS_TOKEN");
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      tokens.push({ name: "admin", role: "admin", token: tokenGiven });
    } else {
      showToken = true;
    }
  }

  const logFormat = values["log-format"];
  if (logFormat !== "text" && logFormat !== "json") {
    throw new UsageError(`--log-format must be text or json, not '${logFormat}'`);
  }
  const certFile = values["tls-cert"];
  const keyFile = values["tls-key"];
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert and --tls-key go together");
  }
  const tlsSource = certFile !== undefined
    ? { certFile: resolve(certFile), keyFile: resolve(keyFile!) }
    : values.tls
    ? "generate" as const
    : null;

  const port = integer(values.port, "--port", 0, 65535);
  const hostname = (values.host ?? (noAuth ? DEFAULT_HOST_WITHOUT_AUTH : DEFAULT_HOST_WITH_AUTH))
    .replace(/^\[(.*)\]$/, "$1");
  const limits: ServerLimits = {
    maxConnections: integer(values["max-connections"], "--max-connections", 1, 1_000_000) ??
      DEFAULT_MAX_CONNECTIONS,
    maxConnectionsPerPeer: integer(
      values["max-connections-per-peer"],
      "--max-connections-per-peer",
      1,
      1_000_000,
    ) ?? DEFAULT_MAX_CONNECTIONS_PER_PEER,
    idleTimeoutMs: 1000 *
      (integer(values["idle-timeout"], "--idle-timeout", 1, 86_400) ?? DEFAULT_IDLE_TIMEOUT_S),
    handshakeTimeoutMs: 1000 *
      (integer(values["handshake-timeout"], "--handshake-timeout", 1, 3600) ??
        DEFAULT_HANDSHAKE_TIMEOUT_S),
    minRateBytesPerSecond: size(values["min-rate"], "--min-rate") ?? DEFAULT_MIN_RATE_BYTES_PER_S,
    minRateWindowMs: 1000 *
      (integer(values["min-rate-window"], "--min-rate-window", 1, 3600) ??
        DEFAULT_MIN_RATE_WINDOW_S),
    maxControlBytes: integer(
      values["max-control-bytes"],
      "--max-control-bytes",
      MIN_CONTROL_BYTES,
      MAX_CONTROL_BYTES,
    ) ?? MAX_CONTROL_BYTES,
    maxFileBytes: size(values["max-file-size"], "--max-file-size") ?? MAX_FILE_BYTES,
    quotaBytes: size(values.quota, "--quota") ?? null,
    reserveBytes: size(values.reserve, "--reserve") ?? DEFAULT_RESERVE_BYTES,
  };
  return {
    config: {
      root: resolve(values.root),
      hostname,
      port: port ?? 0,
      tokens,
      tls: null,
      readOnly: values["read-only"] === true,
      logFormat,
      graceMs: 1000 *
        (integer(values["shutdown-grace"], "--shutdown-grace", 0, 3600) ??
          DEFAULT_SHUTDOWN_GRACE_S),
      limits,
    },
    portFile: resolve(values["port-file"]),
    localToken,
    showToken,
    tlsSource,
    stateDir: values["state-dir"] !== undefined
      ? resolve(values["state-dir"])
      : defaultStateDir(env),
  };
}

/** `$XDG_STATE_HOME/fts`, or `~/.local/state/fts`; null when neither is known. */
function defaultStateDir(env: { get(name: string): string | undefined }): string | null {
  const xdg = env.get("XDG_STATE_HOME");
  if (xdg) return resolve(xdg, "fts");
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  return home ? resolve(home, ".local", "state", "fts") : null;
}

function integer(text: string | undefined, flag: string, min: number, max: number) {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  return value;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/** Parses a byte size: digits, optionally followed by K, M, G or T (powers of 1024). */
export function size(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const match = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`${flag} must be a size such as 1048576, 512K, 64M or 2G, not '${text}'`);
  }
  return value;
}
