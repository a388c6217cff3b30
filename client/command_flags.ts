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
  /**
   * The name of the value the flag takes (`--exclude PATTERN`, or
   * `--exclude=PATTERN`), for `help`; it may be given more than once. A flag
   * without one is a switch.
   */
  value?: string;
}

/** A command's flags by long name (without the dashes). */
export type CommandFlags = Record<string, CommandFlag>;

/** What each flag of `T` parses to: a switch whether it was given, a flag with a value every value given. */
export type FlagValues<T extends CommandFlags> = {
  -readonly [K in keyof T]: T[K] extends { value: string } ? string[] : boolean;
};

/** What {@link parseCommandArgs} found. */
export interface ParsedCommandArgs<T extends CommandFlags> {
  /** Which flags were given, and the values of those that take one. */
  flags: FlagValues<T>;
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
  const found: Record<string, boolean | string[]> = Object.fromEntries(
    Object.entries(table).map(([name, flag]) => [name, flag.value === undefined ? false : []]),
  );
  const byShort = new Map<string, string>();
  for (const [name, flag] of Object.entries(table)) {
    if (flag.short) byShort.set(flag.short, name);
  }
  const positionals: string[] = [];
  let flagsEnded = false;
  for (let i = 0; i < args.length; i++) {
    const word = args[i]!;
    if (flagsEnded || word === "-" || !word.startsWith("-")) {
      positionals.push(word);
    } else if (word === "--") {
      flagsEnded = true;
    } else if (word.startsWith("--")) {
      const [name, inline] = splitInlineValue(word.slice(2));
      if (!Object.hasOwn(table, name)) throw unknownFlag(`--${name}`, usage);
      const values = found[name];
      if (!Array.isArray(values)) {
        if (inline !== undefined) throw new UsageError(`--${name} takes no value; usage: ${usage}`);
        found[name] = true;
        continue;
      }
      const value = inline ?? args[++i];
      if (value === undefined) {
        throw new UsageError(`--${name} needs a ${table[name]!.value}; usage: ${usage}`);
      }
      values.push(value);
    } else {
      for (const letter of word.slice(1)) {
        const name = byShort.get(letter);
        if (name === undefined || Array.isArray(found[name])) {
          throw unknownFlag(`-${letter}`, usage);
        }
        found[name] = true;
      }
    }
  }
  const flags = found as FlagValues<T>;
  if (positionals.length < count.min || positionals.length > (count.max ?? Infinity)) {
    throw new UsageError(`usage: ${usage}`);
  }
  return { flags, positionals };
}

/** `name=value` as its name and value; a name alone with no value. */
function splitInlineValue(word: string): [string, string | undefined] {
  const equals = word.indexOf("=");
  return equals < 0 ? [word, undefined] : [word.slice(0, equals), word.slice(equals + 1)];
}

function unknownFlag(flag: string, usage: string): UsageError {
  const command = usage.split(" ")[0];
  return new UsageError(
    `${command} has no option '${flag}' (a name starting with '-' is written ./NAME, or ` +
      `after --); usage: ${usage}`,
  );
}
