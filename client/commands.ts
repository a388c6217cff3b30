/**
 * The client's commands: one row each, driving parsing, dispatch, `help`
 * and completion. Commands return what to show; the shell and the one-shot
 * runner print it.
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { FtsError } from "../protocol/errors.ts";
import { ConnectionError } from "./errors.ts";
import { commandHelp, commandsHelp } from "./command_help.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { formatEntry, formatListing, formatLocalListing, formatSpace } from "./format.ts";
import { resolveRemote, shownRemote } from "./remote_path.ts";
import { PARTIALS_FLAGS, PARTIALS_USAGE, partialsCommand } from "./partials_command.ts";
import { remoteIsDirectory } from "./transfer_plan.ts";
import { DELETE_FLAGS, DELETE_USAGE, deleteCommand } from "./remove.ts";
import { SYNC_FLAGS, SYNC_USAGE, syncCommand } from "./sync_command.ts";
import { nearestWord } from "./suggest.ts";
import { terminalSafe } from "./terminal_safe.ts";
import {
  DOWNLOAD_USAGE,
  downloadCommand,
  TRANSFER_FLAGS,
  UPLOAD_FLAGS,
  UPLOAD_USAGE,
  uploadCommand,
} from "./transfers.ts";

export type { CommandContext, CommandOutcome };

/** What a command's arguments name, for completion. */
export type ArgumentKind = "remote" | "local" | "command" | "none";

/** One command of the client. */
export interface Command {
  /** The command's name first, then its aliases. */
  names: string[];
  /** The synopsis `help` shows, such as `list [-l] [-h] [-t] [DIR]`. */
  usage: string;
  /** One line on what the command does, for `help`. */
  summary: string;
  /** Its flags, for `help COMMAND` (the command parses them with the same table). */
  flags?: CommandFlags;
  /** What the first argument names (the rest follow the same kind, except for transfers). */
  completes: ArgumentKind;
  /** Runs the command with its arguments (the words after its name). */
  run(context: CommandContext, args: string[]): Promise<CommandOutcome>;
}

/** The flags of `list` and `lls`. */
const LIST_FLAGS = {
  long: { short: "l", help: "long format: type, size, time, name (what list shows anyway)" },
  human: { short: "h", help: "sizes in binary units (1.3 GiB)" },
  time: { short: "t", help: "newest first" },
} as const satisfies CommandFlags;

/** The flags of `mkdir`. */
const MKDIR_FLAGS = {
  parents: { short: "p", help: "no error if the directory is there already" },
} as const satisfies CommandFlags;

/** The flags of `rename`. */
const RENAME_FLAGS = {
  force: { short: "f", help: "replace an existing file" },
} as const satisfies CommandFlags;

/** The flags of `df`. */
const DF_FLAGS = {
  human: { short: "h", help: "sizes in binary units (1.3 GiB)" },
} as const satisfies CommandFlags;

const NO_FLAGS = {} as const satisfies CommandFlags;

/** An octal mode such as `755` or `0644`, permission bits only. */
function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) {
    throw new UsageError(
      `chmod takes an octal mode such as 755 or 0644 (permission bits only), not '${text}'`,
    );
  }
  return parseInt(text, 8);
}

/** Every command, in the order `help` lists them. */
export const COMMANDS: Command[] = [
  {
    names: ["list", "ls"],
    usage: "list [-l] [-h] [-t] [DIR]",
    summary: "list a directory on the server (default: the current one)",
    flags: LIST_FLAGS,
    completes: "remote",
    async run(context, args) {
      const { flags, positionals: [dir] } = parseCommandArgs(args, LIST_FLAGS, this.usage, {
        min: 0,
        max: 1,
      });
      const name = resolveRemote(context.remoteDir, dir ?? "");
      const entries = await context.connection.list(name);
      return {
        output: formatListing(entries, context.style, { human: flags.human, byTime: flags.time }),
        json: { dir: shownRemote(name), entries },
      };
    },
  },
  {
    names: ["stat", "info"],
    usage: "stat NAME",
    summary: "type, size, modification time, mode and SHA-256 of a remote file",
    completes: "remote",
    async run(context, args) {
      const [name] = positionals(args, 1, 1, this.usage);
      const entry = await context.connection.stat(resolveRemote(context.remoteDir, name!));
      return { output: formatEntry(entry), json: entry };
    },
  },
  {
    names: ["upload", "put"],
    usage: UPLOAD_USAGE,
    summary: "send files, a pattern's matches (*.log) or, with -r, directory trees; " +
      "REMOTE ending in / or a directory: into it",
    flags: UPLOAD_FLAGS,
    completes: "local",
    run: uploadCommand,
  },
  {
    names: ["download", "get"],
    usage: DOWNLOAD_USAGE,
    summary: "fetch files, a pattern's matches ('reports/*.csv') or, with -r, trees; " +
      "LOCAL ending in / or a directory: into it",
    flags: TRANSFER_FLAGS,
    completes: "remote",
    run: downloadCommand,
  },
  {
    names: ["sync"],
    usage: SYNC_USAGE,
    summary: "make a remote tree equal to a local one (--down: the other way), " +
      "sending only what differs; -n shows the plan",
    flags: SYNC_FLAGS,
    completes: "local",
    run: syncCommand,
  },
  {
    names: ["delete", "rm"],
    usage: DELETE_USAGE,
    summary: "delete files, patterns' matches and empty directories on the server; " +
      "-r: trees (the shell asks first for more than one)",
    flags: DELETE_FLAGS,
    completes: "remote",
    run: deleteCommand,
  },
  {
    names: ["mkdir"],
    usage: "mkdir [-p] DIR...",
    summary: "create directories on the server (and missing parents)",
    flags: MKDIR_FLAGS,
    completes: "remote",
    async run(context, args) {
      const { flags, positionals } = parseCommandArgs(args, MKDIR_FLAGS, this.usage, { min: 1 });
      const made: string[] = [];
      const there: string[] = [];
      for (const name of positionals) {
        const target = resolveRemote(context.remoteDir, name);
        try {
          await context.connection.mkdir(target);
          made.push(target);
        } catch (err) {
          const exists = flags.parents && err instanceof FtsError && err.code === "EXISTS" &&
            (await context.connection.stat(target)).type === "dir";
          if (!exists) throw err;
          there.push(target);
        }
      }
      return {
        output: [
          ...made.map((name) => `created ${terminalSafe(name)}/`),
          ...there.map((name) => `${terminalSafe(name)}/ is there already`),
        ].join("\n"),
        json: { op: "mkdir", names: made, existing: there },
      };
    },
  },
  {
    names: ["rename", "mv"],
    usage: "rename [-f] FROM TO",
    summary: "rename or move a file or directory on the server; TO a directory: into it",
    flags: RENAME_FLAGS,
    completes: "remote",
    async run(context, args) {
      const { flags, positionals: [from, to] } = parseCommandArgs(args, RENAME_FLAGS, this.usage, {
        min: 2,
        max: 2,
      });
      const force = flags.force;
      const source = resolveRemote(context.remoteDir, from!);
      const named = resolveRemote(context.remoteDir, to!);
      // As mv does: into a directory that is there (or a target ending in /), under its own name.
      const into = to!.endsWith("/") || await remoteIsDirectory(context.connection, named);
      const target = into && source !== named ? posix.join(named, posix.basename(source)) : named;
      await context.connection.rename(source, target, { overwrite: force });
      return {
        output: `renamed ${terminalSafe(source)} -> ${terminalSafe(target)}`,
        json: { op: "rename", from: source, to: target },
      };
    },
  },
  {
    names: ["chmod"],
    usage: "chmod MODE NAME...",
    summary: "set the permission bits of files or directories on the server (octal: 755)",
    completes: "remote",
    async run(context, args) {
      const [text, ...names] = positionals(args, 2, Infinity, this.usage);
      const mode = parseMode(text!);
      const changed: string[] = [];
      for (const name of names) {
        const target = resolveRemote(context.remoteDir, name);
        await context.connection.chmod(target, mode);
        changed.push(target);
      }
      const shown = mode.toString(8).padStart(4, "0");
      return {
        output: changed.map((name) => `mode ${shown} ${terminalSafe(name)}`).join("\n"),
        json: { op: "chmod", mode, names: changed },
      };
    },
  },
  {
    names: ["df"],
    usage: "df [-h]",
    summary: "free space and quota of the served directory",
    flags: DF_FLAGS,
    completes: "none",
    async run(context, args) {
      const { flags } = parseCommandArgs(args, DF_FLAGS, this.usage, { min: 0, max: 0 });
      const space = await context.connection.df();
      return { output: formatSpace(space, flags.human), json: space };
    },
  },
  {
    names: ["partials"],
    usage: PARTIALS_USAGE,
    summary: "list what the server keeps of interrupted uploads for put --resume " +
      "(held, of size, age, name); -d NAME...: drop it, freeing its space",
    flags: PARTIALS_FLAGS,
    completes: "remote",
    run: partialsCommand,
  },
  {
    names: ["cd"],
    usage: "cd [DIR]",
    summary: "change the remote directory (default: the top)",
    completes: "remote",
    async run(context, args) {
      const [dir] = positionals(args, 0, 1, this.usage);
      const target = resolveRemote(context.remoteDir, dir ?? "/");
      if (target !== "") {
        const entry = await context.connection.stat(target);
        if (entry.type !== "dir") throw new UsageError(`${target} is not a directory`);
      }
      context.remoteDir = target;
      return { json: { dir: shownRemote(target) } };
    },
  },
  {
    names: ["pwd"],
    usage: "pwd",
    summary: "show the remote directory",
    completes: "none",
    run(context, args) {
      positionals(args, 0, 0, this.usage);
      const dir = shownRemote(context.remoteDir);
      return Promise.resolve({ output: terminalSafe(dir), json: { dir } });
    },
  },
  {
    names: ["lcd"],
    usage: "lcd DIR",
    summary: "change the local directory",
    completes: "local",
    run(_context, args) {
      const [dir] = positionals(args, 1, 1, this.usage);
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
      positionals(args, 0, 0, this.usage);
      return Promise.resolve({ output: terminalSafe(Deno.cwd()), json: { dir: Deno.cwd() } });
    },
  },
  {
    names: ["lls"],
    usage: "lls [-l] [-h] [-t] [DIR]",
    summary: "list a local directory",
    flags: LIST_FLAGS,
    completes: "local",
    async run(context, args) {
      const { flags, positionals: [dir] } = parseCommandArgs(args, LIST_FLAGS, this.usage, {
        min: 0,
        max: 1,
      });
      const { text, entries } = await formatLocalListing(dir ?? ".", context.style, {
        human: flags.human,
        byTime: flags.time,
      });
      return { output: text, json: { dir: dir ?? ".", entries } };
    },
  },
  {
    names: ["help", "?"],
    usage: "help [COMMAND]",
    summary: "show the commands, or one command's usage",
    completes: "command",
    run(context, args) {
      return Promise.resolve(helpFor(["help", ...args], context.width)!);
    },
  },
  {
    names: ["logout", "quit", "exit", "bye"],
    usage: "logout",
    summary: "end the session",
    completes: "none",
    async run(context, args) {
      positionals(args, 0, 0, this.usage);
      // A connection that is gone has ended the session as a logout would.
      await context.connection.logout().catch((err) => {
        if (!(err instanceof ConnectionError)) throw err;
      });
      return { json: { op: "logout" }, endSession: true };
    },
  },
  {
    names: ["terminate"],
    usage: "terminate",
    summary: "stop the server (admin role; without authentication, from its own host)",
    completes: "none",
    async run(context, args) {
      positionals(args, 0, 0, this.usage);
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

/**
 * Runs one command given as words: the command's name, then its arguments.
 * `--help` among the arguments (before any `--`) shows the command's usage
 * instead of running it.
 */
export function runCommand(context: CommandContext, words: string[]): Promise<CommandOutcome> {
  const [name, ...args] = words;
  const command = findCommand(name ?? "");
  if (!command) throw unknownCommand(name ?? "");
  const help = helpFor(words, context.width);
  return help !== null ? Promise.resolve(help) : command.run(context, args);
}

/**
 * What `words` show when they ask for help and nothing else (`help`, `help
 * put`, `put --help`), which needs no server; null for any other command.
 * Help for an unknown command is a usage error.
 */
export function helpFor(words: string[], width: number | undefined): CommandOutcome | null {
  const [name, ...args] = words;
  const command = findCommand(name ?? "");
  if (!command) return null;
  const end = args.indexOf("--");
  if ((end < 0 ? args : args.slice(0, end)).includes("--help")) {
    return { output: commandHelp(command, width), json: commandJson(command) };
  }
  if (command.names[0] !== "help") return null;
  const [topic, ...more] = args;
  if (more.length > 0) throw new UsageError(`usage: ${command.usage}`);
  if (topic === undefined) {
    return {
      output: commandsHelp(COMMANDS, width),
      json: { commands: COMMANDS.map(commandJson) },
    };
  }
  const about = findCommand(topic);
  if (!about) throw unknownCommand(topic);
  return { output: commandHelp(about, width), json: commandJson(about) };
}

/** `unknown command 'lsit' (did you mean 'list'?)`, a usage error. */
export function unknownCommand(name: string): UsageError {
  const suggestion = nearestWord(name, COMMANDS.flatMap((command) => command.names));
  return new UsageError(
    `unknown command '${name}' (${suggestion ? `did you mean '${suggestion}'?` : "try 'help'"})`,
  );
}

/** A command as `--json help` describes it. */
function commandJson(command: Command): unknown {
  return {
    name: command.names[0],
    aliases: command.names.slice(1),
    usage: command.usage,
    summary: command.summary,
    flags: Object.entries(command.flags ?? {}).map(([name, flag]) => ({
      name: `--${name}`,
      short: flag.short ? `-${flag.short}` : undefined,
      help: flag.help,
    })),
  };
}

function positionals(args: string[], min: number, max: number, usage: string): string[] {
  return parseCommandArgs(args, NO_FLAGS, usage, { min, max }).positionals;
}
