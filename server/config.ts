/**
 * `fts serve`'s flags, their defaults, and the configuration they produce
 * for the server worker. Every limit is a flag with a documented default.
 *
 * @module
 */

import { resolve } from "node:path";
import { parseChecksumFlag } from "../cli/checksum_flag.ts";
import { type FlagTable, formatFlags, parseFlags } from "../cli/flags.ts";
import { UsageError } from "../cli/usage_error.ts";
import { type ChecksumName, CHECKSUMS } from "../protocol/checksum.ts";
import { MAX_CONTROL_BYTES, MAX_FILE_BYTES, MIN_CONTROL_BYTES } from "../protocol/limits.ts";
import { type AccessToken, checkToken, generateToken, parseTokensFile } from "./tokens.ts";
import { type BucketStoreConfig, parseStoreFlags } from "./s3/store_config.ts";

/** Served directory when `--root` is not given. */
export const DEFAULT_ROOT = "uploads";
/** Listen address with authentication on: every interface, IPv6 and IPv4 (one dual-stack socket). */
export const DEFAULT_HOST_WITH_AUTH = "::";
/** Listen address with authentication on where this host has no IPv6: every IPv4 interface. */
export const DEFAULT_HOST_WITH_AUTH_IPV4 = "0.0.0.0";
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
/**
 * The most workers `--workers` takes: each is a V8 isolate of its own (about
 * 14 MiB at rest), and past the number of cores another adds nothing.
 */
export const MAX_WORKERS = 64;
/** Workers when `--workers` is not given: one per core, at most {@link MAX_WORKERS}. */
export const DEFAULT_WORKERS: number = Math.max(
  1,
  Math.min(MAX_WORKERS, navigator.hardwareConcurrency),
);

/** Limits the worker enforces. */
export interface ServerLimits {
  /** Connections served at once; one more gets BUSY. */
  maxConnections: number;
  /** Connections one peer address may hold at once. */
  maxConnectionsPerPeer: number;
  /** A session that sends nothing for this long, in milliseconds, is closed. */
  idleTimeoutMs: number;
  /** Time from connect to a completed handshake and authentication, in milliseconds. */
  handshakeTimeoutMs: number;
  /** Least bytes per second in an upload's or download's data; 0 for no floor. */
  minRateBytesPerSecond: number;
  /** The window {@link ServerLimits.minRateBytesPerSecond} is measured over. */
  minRateWindowMs: number;
  /** Largest control message, in bytes. */
  maxControlBytes: number;
  /** Largest file accepted, in bytes. */
  maxFileBytes: number;
  /** Bytes the root's files may use in all, or null for no quota. */
  quotaBytes: number | null;
  /** Free space, in bytes, an upload must leave on the root's file system. */
  reserveBytes: number;
}

/** Everything the server worker needs; structured-cloneable. */
export interface ServerConfig {
  /** The served directory, an absolute path; `s3://BUCKET[/PREFIX]` when {@link store} is set. */
  root: string;
  /** The S3 bucket served instead of a directory (`--store`), or null. */
  store: BucketStoreConfig | null;
  /** The address to listen on, IPv6 without brackets. */
  hostname: string;
  /** The port to listen on; 0 lets the system choose. */
  port: number;
  /** Accepted tokens, or null when authentication is off (`--no-auth`). */
  tokens: AccessToken[] | null;
  /** The TLS certificate and key (PEM), or null for plain TCP. */
  tls: { cert: string; key: string } | null;
  /** Refuse uploads, deletes, mkdir and rename (`--read-only`). */
  readOnly: boolean;
  /** The checksums offered to clients, in order of preference (`--checksum`). */
  checksums: ChecksumName[];
  /** How the request log on stderr is written. */
  logFormat: "text" | "json";
  /** How long transfers in flight may take to finish once shutdown starts, in milliseconds. */
  graceMs: number;
  /** Limits the worker enforces. */
  limits: ServerLimits;
}

/** What the main thread keeps for itself: files it writes, secrets it shows. */
export interface ServeSetup {
  /** What the worker is given. */
  config: ServerConfig;
  /** Where the port is written, an absolute path; `FILE.json` goes beside it. */
  portFile: string;
  /** The admin token written beside the port file for clients in the same directory. */
  localToken: string | null;
  /** Print the local token with the connect line (it was generated, not given). */
  showToken: boolean;
  /** Replace the kept generated token with a new one (`--new-token`). */
  newToken: boolean;
  /** Whether `--port` was given; without it the root's last port is taken again if free. */
  portGiven: boolean;
  /** Where the TLS identity comes from: files, "generate" (`--tls`), or null for plain TCP. */
  tlsSource: { certFile: string; keyFile: string } | "generate" | null;
  /** Where `--tls` keeps its certificate; null when no state directory is known. */
  stateDir: string | null;
  /** Sandboxed workers to serve with (`--workers`); one where the port cannot be shared. */
  workers: number;
}

/** `fts serve`'s flags: the parser and the help text are both made from this table. */
export const SERVE_FLAGS = {
  root: {
    kind: "string",
    value: "DIR",
    help: "directory to serve, created if missing",
    defaultText: `./${DEFAULT_ROOT}`,
  },
  store: {
    kind: "string",
    value: "s3://BUCKET[/PREFIX]",
    help: "serve an existing S3 bucket (or a prefix of it) instead of a\n" +
      "directory; credentials from AWS_ACCESS_KEY_ID and\n" +
      "AWS_SECRET_ACCESS_KEY or the shared credentials file",
  },
  "s3-endpoint": {
    kind: "string",
    value: "URL",
    help: "the S3 server, http(s)://HOST[:PORT] (also: AWS_ENDPOINT_URL)",
  },
  "s3-region": {
    kind: "string",
    value: "REGION",
    help: "the region requests are signed for (also: AWS_REGION)",
    defaultText: "us-east-1",
  },
  host: {
    kind: "string",
    value: "HOST",
    help: "address to listen on",
    defaultText:
      `${DEFAULT_HOST_WITH_AUTH}, all interfaces, IPv6 and IPv4\n(${DEFAULT_HOST_WITH_AUTH_IPV4} without IPv6); ${DEFAULT_HOST_WITHOUT_AUTH} with --no-auth`,
  },
  port: {
    kind: "integer",
    value: "N",
    help: "port; 0 lets the system choose",
    defaultText:
      "this root's port at its last start if it is free,\nkept in the state directory; else the system's choice",
    max: 65535,
  },
  "port-file": {
    kind: "string",
    value: "FILE",
    help: "where to write the port; FILE.json beside it, readable by the\n" +
      "owner only, lets local clients connect without flags",
    default: DEFAULT_PORT_FILE,
    defaultText: `./${DEFAULT_PORT_FILE}`,
  },
  token: { kind: "string", value: "TOKEN", help: "accept this admin token (also: FTS_TOKEN)" },
  tokens: {
    kind: "string",
    value: "FILE",
    help: "accept the tokens in FILE, lines of 'ROLE NAME TOKEN'\n(roles: read, write, admin)",
  },
  "no-auth": { kind: "boolean", help: "accept everyone (terminate only from this host)" },
  "new-token": {
    kind: "boolean",
    help:
      "generate a new token instead of the one kept in the state\ndirectory from the last start",
  },
  tls: {
    kind: "boolean",
    help: "TLS with a certificate generated once and kept in the state directory",
  },
  "tls-cert": {
    kind: "string",
    value: "FILE",
    help: "TLS with this certificate (PEM), and --tls-key",
  },
  "tls-key": { kind: "string", value: "FILE", help: "the certificate's private key (PEM)" },
  "state-dir": {
    kind: "string",
    value: "DIR",
    help: "where the generated token and --tls's certificate are kept",
    defaultText: "$XDG_STATE_HOME/fts\nor ~/.local/state/fts",
  },
  checksum: {
    kind: "string",
    value: "NAME[,NAME]",
    help: "checksums offered to clients, best first; a client\n" +
      "must use one, so sha256 alone requires SHA-256",
    default: CHECKSUMS.join(","),
  },
  "max-connections": {
    kind: "integer",
    value: "N",
    help: "connections at once; more get BUSY",
    default: String(DEFAULT_MAX_CONNECTIONS),
    min: 1,
    max: 1_000_000,
  },
  "max-connections-per-peer": {
    kind: "integer",
    value: "N",
    help: "per peer address",
    default: String(DEFAULT_MAX_CONNECTIONS_PER_PEER),
    min: 1,
    max: 1_000_000,
  },
  "idle-timeout": {
    kind: "integer",
    value: "SECONDS",
    help: "close sessions silent this long",
    default: String(DEFAULT_IDLE_TIMEOUT_S),
    min: 1,
    max: 86_400,
  },
  "handshake-timeout": {
    kind: "integer",
    value: "SECONDS",
    help: "to connect and authenticate",
    default: String(DEFAULT_HANDSHAKE_TIMEOUT_S),
    min: 1,
    max: 3600,
  },
  "min-rate": {
    kind: "size",
    value: "SIZE",
    help: "close a transfer (or a request) whose bytes move slower than SIZE\n" +
      "bytes per second over a window; 0 turns it off",
    default: String(DEFAULT_MIN_RATE_BYTES_PER_S),
    defaultText: "1K",
  },
  "min-rate-window": {
    kind: "integer",
    value: "SECONDS",
    help: "the window --min-rate is measured over",
    default: String(DEFAULT_MIN_RATE_WINDOW_S),
    min: 1,
    max: 3600,
  },
  "max-control-bytes": {
    kind: "integer",
    value: "N",
    help: "largest control message",
    default: String(MAX_CONTROL_BYTES),
    min: MIN_CONTROL_BYTES,
    max: MAX_CONTROL_BYTES,
  },
  "max-file-size": {
    kind: "size",
    value: "SIZE",
    help: "largest file accepted",
    default: String(MAX_FILE_BYTES),
    defaultText: "no limit below 2^53-1 bytes",
  },
  quota: {
    kind: "size",
    value: "SIZE",
    help: "bytes the root's entries may use in all",
    defaultText: "none",
  },
  reserve: {
    kind: "size",
    value: "SIZE",
    help: "free space an upload must leave",
    default: String(DEFAULT_RESERVE_BYTES),
    defaultText: "64M",
  },
  "read-only": {
    kind: "boolean",
    help: "refuse uploads, deletes, mkdir, rename, chmod and dropping partials",
  },
  workers: {
    kind: "integer",
    value: "N",
    help: "sandboxed workers serving sessions on the one port, every limit\n" +
      "shared; one on systems other than Linux",
    default: String(DEFAULT_WORKERS),
    defaultText: `one per core, here ${DEFAULT_WORKERS}`,
    min: 1,
    max: MAX_WORKERS,
  },
  "shutdown-grace": {
    kind: "integer",
    value: "SECONDS",
    help: "on terminate, Ctrl-C or SIGTERM, how long transfers in flight may\n" +
      "take to finish before they are cut off",
    default: String(DEFAULT_SHUTDOWN_GRACE_S),
    max: 3600,
  },
  "log-format": {
    kind: "string",
    value: "text|json",
    help: "request log on stderr",
    default: "text",
  },
  help: { kind: "boolean", short: "h", help: "show this help" },
} as const satisfies FlagTable;

/** The help of `fts serve`, its flags grouped as people look for them. */
export const SERVE_HELP = `Usage: fts serve [OPTIONS]

Serve one directory, or an S3 bucket (--store), to any number of fts clients.

Where:
${
  formatFlags(SERVE_FLAGS, [
    "root",
    "store",
    "s3-endpoint",
    "s3-region",
    "host",
    "port",
    "port-file",
  ])
}

Authentication (default: a random admin token, printed at start):
${formatFlags(SERVE_FLAGS, ["token", "tokens", "no-auth", "new-token"])}

Encryption:
${formatFlags(SERVE_FLAGS, ["tls", "tls-cert", "tls-key", "state-dir"])}

Verification:
${formatFlags(SERVE_FLAGS, ["checksum"])}

Limits:
${
  formatFlags(SERVE_FLAGS, [
    "max-connections",
    "max-connections-per-peer",
    "idle-timeout",
    "handshake-timeout",
    "min-rate",
    "min-rate-window",
    "max-control-bytes",
    "max-file-size",
    "quota",
    "reserve",
    "read-only",
    "shutdown-grace",
  ])
}

Performance:
${formatFlags(SERVE_FLAGS, ["workers"])}

Output:
${formatFlags(SERVE_FLAGS, ["log-format", "help"])}

SIZE is bytes, or a number with K, M, G or T (powers of 1024).
The server prints "fts: serving DIR on HOST:PORT" once it listens, and
removes its port file when it stops (terminate, Ctrl-C or SIGTERM).
`;

/** Parses `fts serve`'s arguments. `env` supplies FTS_TOKEN. Reads the tokens file. */
export async function parseServeArgs(
  args: string[],
  env: { get(name: string): string | undefined },
): Promise<ServeSetup | "help"> {
  const { values } = parseFlags(SERVE_FLAGS, args);
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
  if (values["new-token"] && (noAuth || tokenGiven !== undefined || values.tokens !== undefined)) {
    throw new UsageError(
      "--new-token replaces the generated token, and there is none with --token, FTS_TOKEN, --tokens or --no-auth",
    );
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

  if (values.root !== undefined && values.store !== undefined) {
    throw new UsageError("give --root or --store, not both");
  }
  const store = parseStoreFlags(
    { store: values.store, endpoint: values["s3-endpoint"], region: values["s3-region"] },
    env,
  );
  const hostname = (values.host ?? (noAuth ? DEFAULT_HOST_WITHOUT_AUTH : everyInterface()))
    .replace(/^\[(.*)\]$/, "$1");
  const limits: ServerLimits = {
    maxConnections: values["max-connections"],
    maxConnectionsPerPeer: values["max-connections-per-peer"],
    idleTimeoutMs: 1000 * values["idle-timeout"],
    handshakeTimeoutMs: 1000 * values["handshake-timeout"],
    minRateBytesPerSecond: values["min-rate"],
    minRateWindowMs: 1000 * values["min-rate-window"],
    maxControlBytes: values["max-control-bytes"],
    maxFileBytes: values["max-file-size"],
    quotaBytes: values.quota ?? null,
    reserveBytes: values.reserve,
  };
  return {
    config: {
      root: store === null ? resolve(values.root ?? DEFAULT_ROOT) : store.name,
      store,
      hostname,
      port: values.port ?? 0,
      tokens,
      tls: null,
      readOnly: values["read-only"] === true,
      checksums: parseChecksumFlag(values.checksum),
      logFormat,
      graceMs: 1000 * values["shutdown-grace"],
      limits,
    },
    portFile: resolve(values["port-file"]),
    localToken,
    showToken,
    newToken: values["new-token"] === true,
    portGiven: values.port !== undefined,
    tlsSource,
    stateDir: values["state-dir"] !== undefined
      ? resolve(values["state-dir"])
      : defaultStateDir(env),
    workers: values.workers,
  };
}

/** `$XDG_STATE_HOME/fts`, or `~/.local/state/fts`; null when neither is known. */
function defaultStateDir(env: { get(name: string): string | undefined }): string | null {
  const xdg = env.get("XDG_STATE_HOME");
  if (xdg) return resolve(xdg, "fts");
  const home = env.get("HOME") ?? env.get("USERPROFILE");
  return home ? resolve(home, ".local", "state", "fts") : null;
}

/**
 * The address that means every interface here: `::` (which takes IPv4
 * connections too, as `::ffff:a.b.c.d`) when this host can listen on IPv6,
 * else `0.0.0.0`.
 */
function everyInterface(): string {
  try {
    Deno.listen({ hostname: DEFAULT_HOST_WITH_AUTH, port: 0 }).close();
    return DEFAULT_HOST_WITH_AUTH;
  } catch {
    return DEFAULT_HOST_WITH_AUTH_IPV4;
  }
}
