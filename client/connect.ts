/**
 * `fts connect`: finds the server, connects, and runs one command, an
 * interactive prompt, or commands from standard input.
 *
 * @module
 */

import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { join, resolve } from "node:path";
import { Readable } from "node:stream";
import { parseChecksumFlag } from "../cli/checksum_flag.ts";
import { EXIT_OK, EXIT_OPERATION_FAILED } from "../cli/exit_codes.ts";
import { type FlagTable, type FlagValues, formatFlags, parseFlags } from "../cli/flags.ts";
import { listenForInterrupts } from "../cli/interrupt_signals.ts";
import { UsageError } from "../cli/usage_error.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import { normalizeFingerprint } from "../protocol/fingerprint.ts";
import { type Address, DEFAULT_CONNECT_HOST, parseAddress } from "./address.ts";
import { commandsHelp, DEFAULT_HELP_WIDTH } from "./command_help.ts";
import { COMMANDS, findCommand, helpFor, unknownCommand } from "./commands.ts";
import { useOwnHashThreads } from "../io/hash_threads.ts";
import { type ConnectOptions, FtsConnection } from "./connection.ts";
import type { CommandContext } from "./context.ts";
import { CommandInterrupt } from "./interruption.ts";
import { printFailure, printJsonEvent, printOutcome } from "./output.ts";
import { askOnTerminal } from "./terminal_question.ts";
import { REPLY_TIMEOUT_MS } from "./reply_deadline.ts";
import { historyFile, runShell } from "./shell.ts";
import { styleFor } from "./style.ts";
import { runResilient } from "./resilient_command.ts";
import { exitInsisted } from "./stoppable_command.ts";
import { nearestWord } from "./suggest.ts";
import { ConnectionError, type TlsTrust } from "./transport.ts";

/** Port file read when no port is given. */
export const DEFAULT_PORT_FILE = "port";

/** `fts connect`'s options: the parser and the help text are both made from this table. */
export const CONNECT_FLAGS = {
  "port-file": {
    kind: "string",
    value: "FILE",
    help: "where to read the port from",
    default: DEFAULT_PORT_FILE,
    defaultText: `./${DEFAULT_PORT_FILE}`,
  },
  batch: {
    kind: "string",
    short: "b",
    value: "FILE",
    help: "run the commands in FILE (- for standard input), one per line;\n" +
      "a line starting with '-' may fail without stopping the batch",
  },
  json: {
    kind: "boolean",
    inlineValues: ["stream"],
    help: "print each command's result as one JSON document; --json=stream:\n" +
      "a sync's events too, one JSON line each as they happen (NDJSON)",
  },
  quiet: { kind: "boolean", short: "q", help: "no progress lines" },
  token: { kind: "string", value: "TOKEN", help: "access token (also: FTS_TOKEN, --token-file)" },
  "token-file": {
    kind: "string",
    value: "FILE",
    help: "read the access token from FILE (its first line), which keeps it\n" +
      "out of the command line and the shell's history",
  },
  "reply-timeout": {
    kind: "string",
    value: "SECONDS",
    help: "give up on a server that sends or takes nothing for this long\n" +
      "while the client waits on it (and connect again, as after a drop)",
    defaultText: String(REPLY_TIMEOUT_MS / 1000),
  },
  tls: {
    kind: "boolean",
    help: "use TLS; trust the server's certificate on first use and\n" +
      "refuse it if it later changes (known hosts: $XDG_CONFIG_HOME/fts/known_hosts\n" +
      "or ~/.config/fts/known_hosts)",
  },
  fingerprint: {
    kind: "string",
    value: "SHA256",
    help: "use TLS and accept only this certificate fingerprint",
  },
  ca: {
    kind: "string",
    value: "FILE",
    help: "use TLS and verify the server against this CA certificate (PEM)",
  },
  checksum: {
    kind: "string",
    value: "NAME",
    help: "verify transfers with NAME, xxh3-128 or sha256; refuse a server\n" +
      "that does not offer it",
    defaultText: "the server's first choice",
  },
  help: { kind: "boolean", short: "h", help: "show this help" },
} as const satisfies FlagTable;

/** The help of `fts connect`, its options and the commands it runs. */
export const CONNECT_HELP = `Usage: fts connect [HOST[:PORT]] [OPTIONS] [COMMAND [ARG...]]

Connect to an fts server. HOST defaults to ${DEFAULT_CONNECT_HOST}; without a PORT the
port is read from the port file (default: ./${DEFAULT_PORT_FILE}), which \`fts serve\`
writes in the directory it is started in. With no HOST at all, the token and
TLS fingerprint also come from FILE.json beside it: no other flags needed. A
named HOST gets only --token / FTS_TOKEN, never the local server's token.

With a COMMAND, run it once and exit (0 on success). Without one, read
commands from a prompt (on a terminal) or one per line from standard input,
stopping at the first failure. Words are split as a POSIX shell splits them.

Options (before the COMMAND):
${formatFlags(CONNECT_FLAGS)}

${commandsHelp(COMMANDS)}

Exit codes: 0 success, 1 operation failed, 2 usage error, 3 connection or
authentication failed, 4 integrity check failed, 130 stopped by Ctrl-C.
`;

/** What the command line says: the options, the address, and the command to run. */
interface ConnectArgs {
  options: FlagValues<typeof CONNECT_FLAGS>;
  address?: Address;
  /** The address as typed. */
  addressText?: string;
  command: string[];
}

/** The columns of the terminal on stdout, or {@link DEFAULT_HELP_WIDTH} off a terminal. */
function terminalWidth(): number {
  try {
    return Deno.stdout.isTerminal() ? Deno.consoleSize().columns : DEFAULT_HELP_WIDTH;
  } catch {
    return DEFAULT_HELP_WIDTH;
  }
}

/**
 * Whether the first word, not a command, names a server: it has a port or
 * brackets, is an IP address, or the system resolves it. A word that is none
 * of these is a mistyped command (`fts connect lsit`), not a host.
 */
async function isHostOrAddress(text: string): Promise<boolean> {
  const address = parseAddress(text);
  if (address.port !== undefined || text.startsWith("[") || isIP(address.hostname) !== 0) {
    return true;
  }
  try {
    await lookup(address.hostname);
    return true;
  } catch {
    return false;
  }
}

/**
 * An option of `fts connect` typed after the command (`stat README.md
 * --json`) is a usage error that says where it goes, unless the command has
 * a flag of that name itself.
 */
function refuseMisplacedOptions(command: string[]): void {
  const [name, ...args] = command;
  const own = findCommand(name ?? "")?.flags ?? {};
  const ownShort = new Set(Object.values(own).map((flag) => flag.short));
  const end = args.indexOf("--");
  const words = end < 0 ? args : args.slice(0, end);
  for (const [index, word] of words.entries()) {
    const long = /^--([^=]+)/.exec(word)?.[1];
    const short = /^-([a-z])$/.exec(word)?.[1];
    const flag = long !== undefined
      ? Object.hasOwn(CONNECT_FLAGS, long) && !Object.hasOwn(own, long) && long !== "help"
        ? CONNECT_FLAGS[long as keyof typeof CONNECT_FLAGS]
        : undefined
      : short !== undefined && !ownShort.has(short)
      ? Object.values(CONNECT_FLAGS).find((flag) => "short" in flag && flag.short === short)
      : undefined;
    if (flag !== undefined) {
      // An option that takes a value moves with it (`--port-file F`, not `--port-file=F`).
      const takesNext = flag.kind !== "boolean" && !word.includes("=") && index + 1 < words.length;
      const moved = takesNext ? [word, words[index + 1]!] : [word];
      const rest = [name, ...args.filter((_, i) => i < index || i >= index + moved.length)];
      throw new UsageError(
        `${word} is an option of fts connect, not of ${name}: options go before the command ` +
          `(fts connect ${moved.join(" ")} ${rest.join(" ")})`,
      );
    }
  }
}

/** Runs `fts connect`; resolves with the exit code. */
export async function connect(args: string[]): Promise<number> {
  const parsed = parseConnectArgs(args);
  if (parsed.options.help) {
    console.log(CONNECT_HELP);
    return EXIT_OK;
  }
  // Large transfers hash on a thread of their own, started when one begins.
  useOwnHashThreads();
  let batch: Deno.FsFile | null = null;
  let connection: FtsConnection;
  let target: ConnectTarget;
  try {
    // The first word is a mistyped command (lsit), or a host that does not resolve.
    if (parsed.addressText !== undefined && !await isHostOrAddress(parsed.addressText)) {
      const word = parsed.addressText;
      if (nearestWord(word, COMMANDS.flatMap((command) => command.names)) !== undefined) {
        throw unknownCommand(word);
      }
      throw new UsageError(
        `'${word}' is neither a command (try 'help') nor a host that resolves`,
      );
    }
    if (parsed.command.length > 0 && !findCommand(parsed.command[0]!)) {
      throw unknownCommand(parsed.command[0]!);
    }
    refuseMisplacedOptions(parsed.command);
    // Help asks nothing of a server: it is shown without one.
    const help = helpFor(parsed.command, terminalWidth());
    if (help !== null) {
      printOutcome({ json: parsed.options.json !== false }, help);
      return EXIT_OK;
    }
    if (parsed.options.batch !== undefined && parsed.command.length > 0) {
      throw new UsageError(
        `-b ${parsed.options.batch} runs the commands in that file: give no COMMAND with it`,
      );
    }
    // Opened before connecting: a mistyped batch file name is a usage error, not a session.
    if (parsed.options.batch !== undefined && parsed.options.batch !== "-") {
      batch = await openBatchFile(parsed.options.batch);
    }
    target = await resolveTarget(parsed);
    connection = await FtsConnection.open(target.hostname, target.port, target.options);
  } catch (err) {
    batch?.close();
    // Failing to connect is a failure like any other: under --json it is a document too.
    return printFailure({ json: parsed.options.json !== false }, err);
  }
  const context: CommandContext = {
    connection,
    remoteDir: "",
    json: parsed.options.json !== false,
    ...(parsed.options.json === "stream" ? { jsonEvents: printJsonEvent } : {}),
    progress: !parsed.options.quiet && parsed.options.json === false && Deno.stderr.isTerminal(),
    style: styleFor(Deno.stdout),
    width: terminalWidth(),
    reopen: () => FtsConnection.open(target.hostname, target.port, target.options),
  };
  if (parsed.command.length > 0) {
    // Someone at a terminal can answer a preview's question; a script never waits for one.
    if (!context.json && Deno.stdin.isTerminal() && Deno.stdout.isTerminal()) {
      context.confirmPlan = askOnTerminal;
    }
    const interrupt = new CommandInterrupt();
    // Ctrl-C stops the command as in the shell; a second press exits at once. Either way the
    // message says how to continue, and the exit code is 130.
    using _signals = listenForInterrupts(["SIGINT"], () => {
      if (interrupt.press() === "insisted") exitInsisted(context, interrupt);
    });
    try {
      // A dropped connection is made again, as in the shell (the command may end on a new one).
      const outcome = await runResilient(context, parsed.command, interrupt);
      printOutcome(context, outcome);
      if (!outcome.endSession) await context.connection.logout();
      return outcome.incomplete ? EXIT_OPERATION_FAILED : EXIT_OK;
    } catch (err) {
      return printFailure(context, err);
    } finally {
      context.connection.close();
    }
  }
  if (batch !== null || parsed.options.batch === "-") {
    return await runShell(context, {
      interactive: false,
      input: Readable.fromWeb((batch ?? Deno.stdin).readable),
      batchName: parsed.options.batch,
    });
  }
  const interactive = Deno.stdin.isTerminal();
  return await runShell(context, {
    interactive,
    historyFile: interactive ? historyFile() ?? undefined : undefined,
  });
}

/** Where to connect, and with which credentials. */
interface ConnectTarget {
  hostname: string;
  port: number;
  options: ConnectOptions;
}

/**
 * The port file's companion holds the local server's token and certificate
 * fingerprint: they are used only when no address was given, so that the
 * client is certainly talking to the server that wrote them. A named host,
 * even one whose port comes from the port file, gets only --token and
 * FTS_TOKEN: the local token is never sent anywhere else.
 */
async function resolveTarget(parsed: ConnectArgs): Promise<ConnectTarget> {
  const address = parsed.address;
  const port = address?.port ?? await readPortFile(parsed.options["port-file"]);
  const local = address === undefined
    ? await readPortCompanion(parsed.options["port-file"])
    : { token: null, fingerprint: null };
  return {
    hostname: address?.hostname ?? DEFAULT_CONNECT_HOST,
    port,
    options: {
      token: parsed.options.token ?? await tokenFromFile(parsed.options["token-file"]) ??
        Deno.env.get("FTS_TOKEN") ?? local.token ?? undefined,
      tls: await tlsTrust(parsed, local.fingerprint),
      replyTimeoutMs: replyTimeoutMs(parsed.options["reply-timeout"]),
      checksum: wantedChecksum(parsed.options.checksum),
    },
  };
}

/** `--token-file FILE`: the token on its first line; undefined without the flag. */
async function tokenFromFile(path: string | undefined): Promise<string | undefined> {
  if (path === undefined) return undefined;
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new UsageError(`--token-file ${path}: ${(err as Error).message}`);
  }
  const token = text.split("\n")[0]!.trim();
  if (token === "") throw new UsageError(`--token-file ${path}: the first line is empty`);
  return token;
}

/** `--checksum NAME`: the one checksum the user asked for; none without the flag. */
function wantedChecksum(value: string | undefined): ChecksumName | undefined {
  if (value === undefined) return undefined;
  const names = parseChecksumFlag(value);
  if (names.length !== 1) throw new UsageError("--checksum takes one name on fts connect");
  return names[0];
}

/** `--reply-timeout SECONDS` in milliseconds; {@link REPLY_TIMEOUT_MS} without it. */
function replyTimeoutMs(seconds: string | undefined): number {
  if (seconds === undefined) return REPLY_TIMEOUT_MS;
  const value = Number(seconds);
  if (!/^\d+(\.\d+)?$/.test(seconds) || !(value > 0) || value * 1000 > 2 ** 31 - 1) {
    throw new UsageError(`--reply-timeout must be a number of seconds above 0, not '${seconds}'`);
  }
  return value * 1000;
}

/** Opens the file `-b` names; a missing one is a usage error. */
async function openBatchFile(path: string): Promise<Deno.FsFile> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(resolve(path));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new UsageError(`-b ${path}: no such batch file`);
    }
    throw err;
  }
  if (!(await file.stat()).isFile) {
    file.close();
    throw new UsageError(`-b ${path}: not a file (a batch file holds one command per line)`);
  }
  return file;
}

/**
 * Options are read up to the command; everything from the command on belongs
 * to it. The first word that is not a command name is the address, and the
 * options may go on after it.
 */
function parseConnectArgs(args: string[]): ConnectArgs {
  const before = parseFlags(CONNECT_FLAGS, args, { stopAt: () => true });
  const first = before.rest[0];
  if (first === undefined || findCommand(first)) {
    return { options: before.values, command: before.rest };
  }
  const after = parseFlags(CONNECT_FLAGS, before.rest.slice(1), { stopAt: () => true });
  const options = { ...before.values };
  for (const [name, value] of Object.entries(after.values) as [keyof typeof options, never][]) {
    if (value !== undefined && value !== false) options[name] = value;
  }
  return { options, address: parseAddress(first), addressText: first, command: after.rest };
}

/** How to verify the server, from the flags or the port file's companion; null for plain TCP. */
async function tlsTrust(
  parsed: ConnectArgs,
  localFingerprint: string | null,
): Promise<TlsTrust | null> {
  if (parsed.options.ca !== undefined) {
    return { kind: "ca", caCert: await Deno.readTextFile(resolve(parsed.options.ca)) };
  }
  const pinned = parsed.options.fingerprint ?? localFingerprint;
  if (pinned !== null && pinned !== undefined) {
    const fingerprint = normalizeFingerprint(pinned);
    if (fingerprint === null) {
      throw new UsageError("--fingerprint must be a SHA-256 fingerprint: 64 hex digits");
    }
    return { kind: "fingerprint", fingerprint };
  }
  if (!parsed.options.tls) return null;
  return { kind: "known-hosts", file: knownHostsFile() };
}

/** `$XDG_CONFIG_HOME/fts/known_hosts`, or `~/.config/fts/known_hosts`. */
function knownHostsFile(): string {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (xdg) return join(xdg, "fts", "known_hosts");
  if (home) return join(home, ".config", "fts", "known_hosts");
  throw new UsageError("--tls needs a home directory for its known-hosts file (set HOME)");
}

/** The port number in the port file. */
async function readPortFile(path: string): Promise<number> {
  let text: string;
  try {
    text = (await Deno.readTextFile(resolve(path))).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new ConnectionError(
        `no port file ${path}: start \`fts serve\` here, or give HOST:PORT`,
      );
    }
    throw err;
  }
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) {
    throw new ConnectionError(`port file ${path} does not hold a port number`);
  }
  return port;
}

/** The token and fingerprint a local client needs, from FILE.json beside the port file. */
async function readPortCompanion(
  path: string,
): Promise<{ token: string | null; fingerprint: string | null }> {
  let local: { token?: unknown; tls?: { fingerprint?: unknown } | null } = {};
  try {
    local = JSON.parse(await Deno.readTextFile(resolve(`${path}.json`)));
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound) && !(err instanceof SyntaxError)) throw err;
  }
  return {
    token: typeof local.token === "string" ? local.token : null,
    fingerprint: typeof local.tls?.fingerprint === "string" ? local.tls.fingerprint : null,
  };
}
