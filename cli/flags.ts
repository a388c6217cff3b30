/**
 * Command-line flags declared once: each flag's kind, value, default and
 * help line live in one table, from which both the parser and the help text
 * are made, so that neither can forget a flag the other has.
 *
 * @module
 */

import { UsageError } from "./usage_error.ts";

/** One flag: how it is written, what it takes, and its line of help. */
export interface FlagSpec {
  /**
   * What the flag takes: nothing (`boolean`), text (`string`), a whole
   * number within {@link FlagSpec.min} and {@link FlagSpec.max} (`integer`),
   * or a byte size such as `64M` (`size`).
   */
  kind: "boolean" | "string" | "integer" | "size";
  /** A one-letter alias, without the dash. */
  short?: string;
  /** The value's name in the help text, such as `DIR` or `SECONDS`. */
  value?: string;
  /** The help text; `\n` starts a further line, indented under the first. */
  help: string;
  /** The value when the flag is not given, written as on the command line. */
  default?: string;
  /** What the help says the default is, when that is not {@link FlagSpec.default} itself. */
  defaultText?: string;
  /** The least value of an `integer` flag. @default {0} */
  min?: number;
  /** The largest value of an `integer` flag. @default {Number.MAX_SAFE_INTEGER} */
  max?: number;
  /**
   * Values a `boolean` flag may also be given as `--name=VALUE` (`--json=stream`):
   * its parsed value is then that word instead of true. Any other value is a usage error.
   */
  inlineValues?: readonly string[];
}

/** A command's flags, by long name (without the dashes). */
export type FlagTable = Record<string, FlagSpec>;

/** The parsed value of one flag: its type follows from its kind and whether it has a default. */
export type FlagValue<S extends FlagSpec> = S["kind"] extends "boolean"
  ? S extends { inlineValues: readonly (infer V)[] } ? boolean | V : boolean
  :
    | (S["kind"] extends "string" ? string : number)
    | (S extends { default: string } ? never : undefined);

/** The parsed values of a table's flags. */
export type FlagValues<T extends FlagTable> = { [K in keyof T]: FlagValue<T[K]> };

/** Options for {@link parseFlags}. */
export interface ParseFlagsOptions {
  /**
   * Called for each word that is not a flag: true stops parsing there, and
   * that word and all after it are returned as `rest` unread (a command and
   * its own arguments). Without it, such a word is a usage error.
   */
  stopAt?(word: string): boolean;
}

/**
 * Parses `args` by `table`: `--name VALUE`, `--name=VALUE`, `-x VALUE`, and
 * boolean flags alone. An unknown flag, a missing or malformed value, or a
 * stray word is a {@link UsageError} naming the flag.
 *
 * @example
 * ```ts
 * import { parseFlags } from "./flags.ts";
 * const table = {
 *   quiet: { kind: "boolean", short: "q", help: "no progress" },
 *   port: { kind: "integer", value: "N", help: "port", default: "0", max: 65535 },
 * } as const;
 * const { values, rest } = parseFlags(table, ["-q", "--port=8080", "ls", "-l"], {
 *   stopAt: () => true,
 * });
 * console.assert(values.quiet && values.port === 8080 && rest.join(" ") === "ls -l");
 * ```
 */
export function parseFlags<T extends FlagTable>(
  table: T,
  args: string[],
  options: ParseFlagsOptions = {},
): { values: FlagValues<T>; rest: string[] } {
  const byShort = new Map(
    Object.entries(table).flatMap(([name, spec]) => spec.short ? [[spec.short, name]] : []),
  );
  const given = new Map<string, string | true>();
  let rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      rest = args.slice(i + 1);
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      if (options.stopAt?.(arg)) {
        rest = args.slice(i);
        break;
      }
      throw new UsageError(`unexpected argument '${arg}'`);
    }
    const equals = arg.indexOf("=");
    const written = arg.startsWith("--") && equals > 0 ? arg.slice(0, equals) : arg;
    const name = written.startsWith("--") ? written.slice(2) : byShort.get(written.slice(1));
    const spec = name === undefined ? undefined : table[name];
    if (name === undefined || spec === undefined) {
      throw new UsageError(`unknown option '${written}'`);
    }
    if (spec.kind === "boolean") {
      const inline = arg.slice(equals + 1);
      if (written !== arg && !spec.inlineValues?.includes(inline)) {
        const allowed = spec.inlineValues?.map((value) => `${written}=${value}`).join(", ");
        throw new UsageError(
          allowed === undefined
            ? `${written} takes no value`
            : `${written} takes no value but ${allowed}, not '${inline}'`,
        );
      }
      given.set(name, written === arg ? true : inline);
      continue;
    }
    const value = written !== arg ? arg.slice(equals + 1) : args[++i];
    if (value === undefined || value === "") throw new UsageError(`${written} needs a value`);
    given.set(name, value);
  }
  const values: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(table)) {
    const text = given.get(name) ?? spec.default;
    values[name] = spec.kind === "boolean"
      ? text === true || (typeof text === "string" && spec.inlineValues?.includes(text) === true &&
        text)
      : convert(`--${name}`, spec, text);
  }
  return { values: values as FlagValues<T>, rest };
}

/** A flag's text as its kind says; undefined stays undefined. */
function convert(flag: string, spec: FlagSpec, text: string | true | undefined) {
  if (text === undefined || text === true) return undefined;
  if (spec.kind === "string") return text;
  if (spec.kind === "size") return parseSize(text, flag);
  const min = spec.min ?? 0;
  const max = spec.max ?? Number.MAX_SAFE_INTEGER;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not '${text}'`);
  }
  return value;
}

/** The multipliers of a size's unit letter: powers of 1024. */
const SIZE_UNITS: Record<string, number> = {
  "": 1,
  K: 2 ** 10,
  M: 2 ** 20,
  G: 2 ** 30,
  T: 2 ** 40,
};

/**
 * Parses a byte size: digits, optionally followed by K, M, G or T (powers of
 * 1024, with an optional `iB` or `B`); `flag` names it in the error.
 *
 * @example
 * ```ts
 * import { parseSize } from "./flags.ts";
 * console.assert(parseSize("64M", "--reserve") === 64 * 1024 * 1024);
 * ```
 */
export function parseSize(text: string, flag: string): number {
  const match = /^(\d+)([KMGT]?)i?B?$/i.exec(text.trim());
  const value = match ? Number(match[1]) * SIZE_UNITS[match[2]!.toUpperCase()]! : NaN;
  if (!Number.isSafeInteger(value)) {
    throw new UsageError(`${flag} must be a size such as 1048576, 512K, 64M or 2G, not '${text}'`);
  }
  return value;
}

/** Where a flag's help text starts: wide enough for most flags and their values. */
const HELP_COLUMN = 29;

/**
 * The help lines of the named flags (all of them, in table order, without
 * `names`), each as `  --name VALUE   help (default: …)`, aligned.
 *
 * @example
 * ```ts
 * import { formatFlags } from "./flags.ts";
 * const table = { quiet: { kind: "boolean", short: "q", help: "no progress lines" } } as const;
 * console.assert(formatFlags(table) === "  -q, --quiet                no progress lines");
 * ```
 */
export function formatFlags<T extends FlagTable>(table: T, names?: (keyof T & string)[]): string {
  const lines: string[] = [];
  for (const name of names ?? Object.keys(table)) {
    const spec = table[name]!;
    const written = `${spec.short ? `-${spec.short}, ` : ""}--${name}` +
      (spec.value ? ` ${spec.value}` : "");
    const shownDefault = spec.defaultText ?? spec.default;
    const text = spec.help + (shownDefault === undefined ? "" : ` (default: ${shownDefault})`);
    const head = `  ${written}`;
    const [first = "", ...more] = wrapWords(text.replaceAll("\n", " "), HELP_WIDTH - HELP_COLUMN);
    if (head.length < HELP_COLUMN - 1) lines.push(head.padEnd(HELP_COLUMN) + first);
    else lines.push(head, " ".repeat(HELP_COLUMN) + first);
    for (const line of more) lines.push(" ".repeat(HELP_COLUMN) + line);
  }
  return lines.join("\n");
}

/** Columns the help of flags fits in: a terminal's usual 80. */
export const HELP_WIDTH = 80;

/** Splits `text` at spaces into lines of at most `width` columns (a longer word stands alone). */
function wrapWords(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ").filter((w) => w !== "")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(line);
  return lines;
}
