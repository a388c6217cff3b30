/**
 * The client's commands: one row each, driving parsing, dispatch, `help`
 * and completion. Commands return what to show; the shell and the one-shot
 * runner print it.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "../cli/usage_error.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { formatEntry, formatListing, formatLocalListing } from "./format.ts";
import { resolveRemote } from "./remote_path.ts";
import { terminalSafe } from "./terminal_safe.ts";
import { downloadCommand, uploadCommand } from "./transfers.ts";

export type { CommandContext, CommandOutcome };

/** What a command's arguments name, for completion. */
export type ArgumentKind = "remote" | "local" | "command" | "none";

/** One command of the client. */
export interface Command {
  /** The command's name first, then its aliases. */
  names: string[];
  /** The synopsis `help` shows, such as `list [DIR]`. */
  usage: string;
  /** One line on what the command does, for `help`. */
  summary: string;
  /** What the first argument names (the rest follow the same kind, except for transfers). */
  completes: ArgumentKind;
  /** Runs the command with its arguments (the words after its name). */
  run(context: CommandContext, args: string[]): Promise<CommandOutcome>;
}

/** Every command, in the order `help` lists them. */
export const COMMANDS: Command[] = [
  {
    names: ["list", "ls"],
    usage: "list [DIR]",
    summary: "list a directory on the server (default: the current one)",
    completes: "remote",
    async run(context, args) {
      const [dir] = positionals(args, 0, 1, "list [DIR]");
      const name = resolveRemote(context.remoteDir, dir ?? "");
      const entries = await context.connection.list(name);
      return { output: formatListing(entries, context.style), json: { dir: name, entries } };
    },
  },
  {
    names: ["stat", "info"],
    usage: "stat NAME",
    summary: "type, size, modification time and SHA-256 of a remote file",
    completes: "remote",
    async run(context, args) {
      const [name] = positionals(args, 1, 1, "stat NAME");
      const entry = await context.connection.stat(resolveRemote(context.remoteDir, name!));
      return { output: formatEntry(entry), json: entry };
    },
  },
  {
    names: ["upload", "put"],
    usage: "upload [-f] [-r] [-p] [--resume] LOCAL [REMOTE]",
    summary: "send a file, a pattern's matches (*.log) or, with -r, a directory tree",
    completes: "local",
    run: uploadCommand,
  },
  {
    names: ["download", "get"],
    usage: "download [-f] [-r] [-p] [--resume] REMOTE [LOCAL]",
    summary: "fetch a file, a pattern's matches ('reports/*.csv') or, with -r, a tree",
    completes: "remote",
    run: downloadCommand,
  },
  {
    names: ["delete", "rm"],
    usage: "delete NAME",
    summary: "delete a file or an empty directory on the server",
    completes: "remote",
    async run(context, args) {
      const [name] = positionals(args, 1, 1, "delete NAME");
      const target = resolveRemote(context.remoteDir, name!);
      await context.connection.delete(target);
      return { output: `deleted ${terminalSafe(target)}`, json: { op: "delete", name: target } };
    },
  },
  {
    names: ["mkdir"],
    usage: "mkdir DIR",
    summary: "create a directory on the server (and missing parents)",
    completes: "remote",
    async run(context, args) {
      const [name] = positionals(args, 1, 1, "mkdir DIR");
      const target = resolveRemote(context.remoteDir, name!);
      await context.connection.mkdir(target);
      return { output: `created ${terminalSafe(target)}/`, json: { op: "mkdir", name: target } };
    },
  },
  {
    names: ["rename", "mv"],
    usage: "rename [-f] FROM TO",
    summary: "rename or move a file or directory on the server",
    completes: "remote",
    async run(context, args) {
      const { force, rest } = forceFlag(args);
      const [from, to] = positionals(rest, 2, 2, "rename [-f] FROM TO");
      const source = resolveRemote(context.remoteDir, from!);
      const target = resolveRemote(context.remoteDir, to!);
      await context.connection.rename(source, target, { overwrite: force });
      return {
        output: `renamed ${terminalSafe(source)} -> ${terminalSafe(target)}`,
        json: { op: "rename", from: source, to: target },
      };
    },
  },
  {
    names: ["cd"],
    usage: "cd [DIR]",
    summary: "change the remote directory (default: the top)",
    completes: "remote",
    async run(context, args) {
      const [dir] = positionals(args, 0, 1, "cd [DIR]");
      const target = resolveRemote(context.remoteDir, dir ?? "/");
      if (target !== "") {
        const entry = await context.connection.stat(target);
        if (entry.type !== "dir") throw new UsageError(`${target} is not a directory`);
      }
      context.remoteDir = target;
      return { json: { dir: target } };
    },
  },
  {
    names: ["pwd"],
    usage: "pwd",
    summary: "show the remote directory",
    completes: "none",
    run(context, args) {
      positionals(args, 0, 0, "pwd");
      return Promise.resolve({
        output: `/${terminalSafe(context.remoteDir)}`,
        json: { dir: context.remoteDir },
      });
    },
  },
  {
    names: ["lcd"],
    usage: "lcd DIR",
    summary: "change the local directory",
    completes: "local",
    run(_context, args) {
      const [dir] = positionals(args, 1, 1, "lcd DIR");
      Deno.chdir(dir!);
      return Promise.resolve({ json: { dir: Deno.cwd() } });
    },
  },
  {
    names: ["lpwd"],
    usage: "lpwd",
    summary: "show the local directory",
    completes: "none",
    run(_context, args) {
      positionals(args, 0, 0, "lpwd");
      return Promise.resolve({ output: terminalSafe(Deno.cwd()), json: { dir: Deno.cwd() } });
    },
  },
  {
    names: ["lls"],
    usage: "lls [DIR]",
    summary: "list a local directory",
    completes: "local",
    async run(context, args) {
      const [dir] = positionals(args, 0, 1, "lls [DIR]");
      const { text, entries } = await formatLocalListing(dir ?? ".", context.style);
      return { output: text, json: { dir: dir ?? ".", entries } };
    },
  },
  {
    names: ["help", "?"],
    usage: "help [COMMAND]",
    summary: "show the commands, or one command's usage",
    completes: "command",
    run(_context, args) {
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
    completes: "none",
    async run(context, args) {
      positionals(args, 0, 0, "logout");
      await context.connection.logout();
      return { endSession: true };
    },
  },
  {
    names: ["terminate"],
    usage: "terminate",
    summary: "stop the server (admin role; without authentication, from its own host)",
    completes: "none",
    async run(context, args) {
      positionals(args, 0, 0, "terminate");
      await context.connection.terminate();
      context.connection.close();
      return {
        output: "the server is shutting down",
        json: { op: "terminate" },
        endSession: true,
      };
    },
  },
];

/** Finds a command by any of its names, case-insensitively. */
export function findCommand(name: string): Command | undefined {
  const lower = name.toLowerCase();
  return COMMANDS.find((command) => command.names.includes(lower));
}

/** Runs one command given as words: the command's name, then its arguments. */
export function runCommand(context: CommandContext, words: string[]): Promise<CommandOutcome> {
  const [name, ...args] = words;
  const command = findCommand(name ?? "");
  if (!command) throw new UsageError(`unknown command '${name}' (try 'help')`);
  return command.run(context, args);
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
  return `Commands (names are case-insensitive):\n${lines.join("\n")}\n\n` +
    "Transfer flags: -f overwrite, -r whole directory trees, -p keep modification times,\n" +
    "--resume continue an interrupted transfer. Patterns: * ? [abc] in the last part of a name.";
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
