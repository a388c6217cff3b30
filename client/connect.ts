/**
 * `fts connect`: finds the server, connects, and runs one command, an
 * interactive prompt, or commands from standard input.
 *
 * @module
 */

import { resolve } from "node:path";
import { EXIT_OK } from "../cli/exit_codes.ts";
import { UsageError } from "../cli/usage_error.ts";
import { type Address, DEFAULT_CONNECT_HOST, parseAddress } from "./address.ts";
import { commandsHelp, findCommand, runCommand } from "./commands.ts";
import { ConnectionError, FtsConnection } from "./connection.ts";
import { runShell } from "./shell.ts";

/** Port file read when no port is given. */
export const DEFAULT_PORT_FILE = "port";

export const CONNECT_HELP = `Usage: fts connect [HOST[:PORT]] [--port-file FILE] [COMMAND [ARG...]]

Connect to an fts server. HOST defaults to ${DEFAULT_CONNECT_HOST}; without a PORT the
port is read from the port file (default: ./${DEFAULT_PORT_FILE}), which \`fts serve\`
writes in the directory it is started in.

With a COMMAND, run it once and exit (0 on success). Without one, read
commands from a prompt (on a terminal) or one per line from standard input,
stopping at the first failure. Words are split as a POSIX shell splits them.

Options:
  --port-file FILE   where to read the port from (default: ./${DEFAULT_PORT_FILE})
  -h, --help         show this help

${commandsHelp()}

Exit codes: 0 success, 1 operation failed, 2 usage error, 3 connection failed,
4 integrity check failed.
`;

interface ConnectArgs {
  address?: Address;
  portFile: string;
  command: string[];
  help: boolean;
}

/** Runs `fts connect`; resolves with the exit code. */
export async function connect(args: string[]): Promise<number> {
  const parsed = parseConnectArgs(args);
  if (parsed.help) {
    console.log(CONNECT_HELP);
    return EXIT_OK;
  }
  const hostname = parsed.address?.hostname ?? DEFAULT_CONNECT_HOST;
  const port = parsed.address?.port ?? await portFromFile(parsed.portFile);
  if (parsed.command.length > 0 && !findCommand(parsed.command[0]!)) {
    throw new UsageError(`unknown command '${parsed.command[0]}'`);
  }
  const connection = await FtsConnection.open(hostname, port);
  if (parsed.command.length > 0) {
    try {
      const outcome = await runCommand(connection, parsed.command);
      if (outcome.output) console.log(outcome.output);
      if (!outcome.endSession) await connection.logout();
      return EXIT_OK;
    } finally {
      connection.close();
    }
  }
  return await runShell(connection, { interactive: Deno.stdin.isTerminal() });
}

/**
 * Options are read up to the command; everything from the command on belongs
 * to it. The first word that is not a command name is the address.
 */
function parseConnectArgs(args: string[]): ConnectArgs {
  const parsed: ConnectArgs = { portFile: DEFAULT_PORT_FILE, command: [], help: false };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") {
      parsed.help = true;
    } else if (arg === "--port-file" || arg.startsWith("--port-file=")) {
      const value = arg.includes("=") ? arg.slice(arg.indexOf("=") + 1) : args[++i];
      if (!value) throw new UsageError("--port-file needs a file name");
      parsed.portFile = value;
    } else if (arg.startsWith("-")) {
      throw new UsageError(`unknown option '${arg}'`);
    } else if (parsed.address === undefined && !findCommand(arg)) {
      parsed.address = parseAddress(arg);
    } else {
      parsed.command = args.slice(i);
      break;
    }
  }
  return parsed;
}

async function portFromFile(path: string): Promise<number> {
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
