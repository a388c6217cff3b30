/**
 * The flags of one shell command (`ls -l`, `put -rf`), parsed by the
 * command's own table: flags may come before, between or after the names, as
 * GNU tools take them; `--` ends them, so `rm -- -x` names a file `-x`, and a
 * lone `-` is a name. An unknown flag is a usage error that names the flag
 * and the command's usage, never an option parser's own text.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** One flag of a command: its long name is its key in {@link CommandFlags}. */
export interface CommandFlag {
  /** A one-letter alias, without the dash. */
  short?: string;
  /** One line of help. */
  help: string;
}

/** A command's flags by long name (without the dashes). */
export type CommandFlags = Record<string, CommandFlag>;

/** What {@link parseCommandArgs} found. */
export interface ParsedCommandArgs<T extends CommandFlags> {
  /** Which flags were given. */
  flags: { -readonly [K in keyof T]: boolean };
  /** The other words, in order. */
  positionals: string[];
}

/** How many names a command takes. */
export interface PositionalCount {
  /** At least this many. */
  min: number;
  /** At most this many. @default {Infinity} */
  max?: number;
}

/**
 * Parses a command's words by its flag table. A usage error names the
 * command's synopsis (`usage`) when a flag is unknown or the count of names
 * is wrong.
 *
 * @example
 * ```ts
 * import { parseCommandArgs } from "./command_flags.ts";
 * const table = { long: { short: "l", help: "long" }, human: { short: "h", help: "sizes" } };
 * const { flags, positionals } = parseCommandArgs(["docs", "-lh"], table, "ls [-lh] [DIR]", {
 *   min: 0,
 *   max: 1,
 * });
 * console.assert(flags.long && flags.human && positionals[0] === "docs");
 * ```
 */
export function parseCommandArgs<T extends CommandFlags>(
  args: string[],
  table: T,
  usage: string,
  count: PositionalCount,
): ParsedCommandArgs<T> {
  const flags = Object.fromEntries(Object.keys(table).map((name) => [name, false])) as {
    -readonly [K in keyof T]: boolean;
  };
  const byShort = new Map<string, keyof T>();
  for (const [name, flag] of Object.entries(table)) {
    if (flag.short) byShort.set(flag.short, name);
  }
  const positionals: string[] = [];
  let flagsEnded = false;
  for (const word of args) {
    if (flagsEnded || word === "-" || !word.startsWith("-")) {
      positionals.push(word);
    } else if (word === "--") {
      flagsEnded = true;
    } else if (word.startsWith("--")) {
      const name = word.slice(2);
      if (!Object.hasOwn(table, name)) throw unknownFlag(word, usage);
      flags[name as keyof T] = true;
    } else {
      for (const letter of word.slice(1)) {
        const name = byShort.get(letter);
        if (name === undefined) throw unknownFlag(`-${letter}`, usage);
        flags[name] = true;
      }
    }
  }
  if (positionals.length < count.min || positionals.length > (count.max ?? Infinity)) {
    throw new UsageError(`usage: ${usage}`);
  }
  return { flags, positionals };
}

function unknownFlag(flag: string, usage: string): UsageError {
  const command = usage.split(" ")[0];
  return new UsageError(
    `${command} has no option '${flag}' (a name starting with '-' is written ./NAME, or ` +
      `after --); usage: ${usage}`,
  );
}
