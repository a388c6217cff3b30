/**
 * The client's commands: one row each, driving parsing, dispatch and `help`.
 * Commands return what to show; the shell and the one-shot runner print it.
 *
 * @module
 */

import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "../cli/usage_error.ts";
import type { FtsConnection } from "./connection.ts";
import { formatListing, formatTransfer } from "./format.ts";

/** What running a command produced. */
export interface CommandOutcome {
  /** Text for standard output. */
  output?: string;
  /** The session is over (logout or terminate). */
  endSession?: boolean;
}

/** One command of the client. */
export interface Command {
  names: string[];
  usage: string;
  summary: string;
  run(connection: FtsConnection, args: string[]): Promise<CommandOutcome>;
}

/** Every command, in the order `help` lists them. */
export const COMMANDS: Command[] = [
  {
    names: ["list", "ls"],
    usage: "list [DIR]",
    summary: "list a directory on the server (default: the top)",
    async run(connection, args) {
      const [dir] = positionals(args, 0, 1, "list [DIR]");
      const name = dir === undefined || dir === "." || dir === "/" ? "" : dir.replace(/\/+$/, "");
      return { output: formatListing(await connection.list(name)) };
    },
  },
  {
    names: ["upload", "put"],
    usage: "upload [--force] LOCAL [REMOTE]",
    summary: "send a local file; REMOTE defaults to its base name, REMOTE/ puts it in a directory",
    async run(connection, args) {
      const { force, rest } = forceFlag(args);
      const [local, remote] = positionals(rest, 1, 2, "upload [--force] LOCAL [REMOTE]");
      const name = remote === undefined
        ? basename(local!)
        : remote.endsWith("/")
        ? remote + basename(local!)
        : remote;
      const result = await connection.upload(local!, name, { overwrite: force });
      return { output: formatTransfer("uploaded", local!, name, result) };
    },
  },
  {
    names: ["download", "get"],
    usage: "download [--force] REMOTE [LOCAL]",
    summary:
      "fetch a file; LOCAL defaults to its base name here, or names a directory to put it in",
    async run(connection, args) {
      const { force, rest } = forceFlag(args);
      const [remote, local] = positionals(rest, 1, 2, "download [--force] REMOTE [LOCAL]");
      const target = await localTarget(remote!, local);
      const result = await connection.download(remote!, target, { overwrite: force });
      return { output: formatTransfer("downloaded", remote!, target, result) };
    },
  },
  {
    names: ["delete", "rm"],
    usage: "delete NAME",
    summary: "delete a file or an empty directory on the server",
    async run(connection, args) {
      const [name] = positionals(args, 1, 1, "delete NAME");
      await connection.delete(name!);
      return { output: `deleted ${name}` };
    },
  },
  {
    names: ["help", "?"],
    usage: "help [COMMAND]",
    summary: "show the commands, or one command's usage",
    run(_connection, args) {
      const [name] = positionals(args, 0, 1, "help [COMMAND]");
      if (name === undefined) return Promise.resolve({ output: commandsHelp() });
      const command = findCommand(name);
      if (!command) throw new UsageError(`unknown command '${name}'`);
      return Promise.resolve({ output: commandHelp(command) });
    },
  },
  {
    names: ["logout", "quit", "exit", "bye"],
    usage: "logout",
    summary: "end the session",
    async run(connection, args) {
      positionals(args, 0, 0, "logout");
      await connection.logout();
      return { endSession: true };
    },
  },
  {
    names: ["terminate"],
    usage: "terminate",
    summary: "stop the server (only from the server's own host)",
    async run(connection, args) {
      positionals(args, 0, 0, "terminate");
      await connection.terminate();
      connection.close();
      return { output: "the server is shutting down", endSession: true };
    },
  },
];

/** Finds a command by any of its names, case-insensitively. */
export function findCommand(name: string): Command | undefined {
  const lower = name.toLowerCase();
  return COMMANDS.find((command) => command.names.includes(lower));
}

/** Runs one command given as words: the command's name, then its arguments. */
export function runCommand(connection: FtsConnection, words: string[]): Promise<CommandOutcome> {
  const [name, ...args] = words;
  const command = findCommand(name ?? "");
  if (!command) throw new UsageError(`unknown command '${name}' (try 'help')`);
  return command.run(connection, args);
}

/** The list of commands, for `help`. */
export function commandsHelp(): string {
  const width = Math.max(...COMMANDS.map((command) => command.usage.length));
  const lines = COMMANDS.map((command) => {
    const aliases = command.names.slice(1).join(", ");
    return `  ${command.usage.padEnd(width)}  ${command.summary}${
      aliases ? ` (also: ${aliases})` : ""
    }`;
  });
  return `Commands (names are case-insensitive):\n${lines.join("\n")}`;
}

function commandHelp(command: Command): string {
  return `usage: ${command.usage}\n${command.summary}\nnames: ${command.names.join(", ")}`;
}

function forceFlag(args: string[]): { force: boolean; rest: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { force: { type: "boolean", short: "f" } },
      allowPositionals: true,
      strict: true,
    });
    return { force: values.force === true, rest: positionals };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function positionals(args: string[], min: number, max: number, usage: string): string[] {
  if (args.length < min || args.length > max) throw new UsageError(`usage: ${usage}`);
  return args;
}

/** Where a download lands: LOCAL, or inside LOCAL when it is a directory, or the remote base name here. */
async function localTarget(remote: string, local: string | undefined): Promise<string> {
  const name = basename(remote);
  if (local === undefined) return name;
  try {
    if ((await Deno.stat(local)).isDirectory) return join(local, name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return local;
}
