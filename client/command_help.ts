/**
 * The text of `help` and `COMMAND --help`, wrapped to the terminal's width.
 *
 * @module
 */

import type { CommandFlags } from "./command_flags.ts";

/** Columns help is wrapped to when the width of the terminal is unknown (not a terminal). */
export const DEFAULT_HELP_WIDTH = 80;

/** Fewest columns help is wrapped to, however narrow the terminal. */
export const MIN_HELP_WIDTH = 40;

/** What help needs of a command. */
export interface HelpEntry {
  /** Its name, then its aliases. */
  names: string[];
  /** Its synopsis. */
  usage: string;
  /** What it does. */
  summary: string;
  /** Its flags. */
  flags?: CommandFlags;
}

/** Lines of a local shell command, which is no row of the table. */
const LOCAL_SHELL_HELP = "!COMMAND runs COMMAND in a local shell (sh), in the interactive " +
  "shell only.";

/** The paragraph on transfers under the list of commands. */
const TRANSFER_HELP = "Transfer flags: -f overwrite, -r whole directory trees, -p keep " +
  "modification times and mode bits, --resume continue an interrupted transfer. Patterns: " +
  "* ? [abc] in the last part of a name. A leading / starts at the top of the served " +
  "directory. Flags may come after the names; a name starting with - is written ./-x or " +
  "after --.";

/**
 * The list of commands, each as its synopsis (with its aliases) and its
 * summary indented below it, wrapped to `width` columns.
 *
 * @example
 * ```ts
 * import { commandsHelp } from "./command_help.ts";
 * const text = commandsHelp([{ names: ["pwd"], usage: "pwd", summary: "the directory" }], 40);
 * console.assert(text.split("\n").every((line) => line.length <= 40));
 * ```
 */
export function commandsHelp(commands: HelpEntry[], width = DEFAULT_HELP_WIDTH): string {
  const columns = Math.max(MIN_HELP_WIDTH, width);
  const lines = ["Commands (names are case-insensitive; COMMAND --help shows one):"];
  for (const command of commands) {
    const aliases = command.names.slice(1);
    lines.push(
      ...wrap(
        `${command.usage}${aliases.length ? `  (also: ${aliases.join(", ")})` : ""}`,
        columns,
        "  ",
      ),
      ...wrap(command.summary, columns, "      "),
    );
  }
  return [
    ...lines,
    "",
    ...wrap(LOCAL_SHELL_HELP, columns, ""),
    ...wrap(TRANSFER_HELP, columns, ""),
  ].join("\n");
}

/**
 * One command's usage, summary, flags and names, wrapped to `width` columns.
 *
 * @example
 * ```ts
 * import { commandHelp } from "./command_help.ts";
 * const text = commandHelp({
 *   names: ["mkdir"],
 *   usage: "mkdir [-p] DIR...",
 *   summary: "make directories",
 *   flags: { parents: { short: "p", help: "no error if there" } },
 * });
 * console.assert(text.startsWith("usage: mkdir [-p] DIR...") && text.includes("-p, --parents"));
 * ```
 */
export function commandHelp(command: HelpEntry, width = DEFAULT_HELP_WIDTH): string {
  const columns = Math.max(MIN_HELP_WIDTH, width);
  const lines = [
    ...wrap(`usage: ${command.usage}`, columns, ""),
    ...wrap(command.summary, columns, ""),
  ];
  const flags = Object.entries(command.flags ?? {});
  if (flags.length > 0) {
    const names = flags.map(([name, flag]) =>
      `${flag.short ? `-${flag.short}, ` : "    "}--${name}${flag.value ? ` ${flag.value}` : ""}`
    );
    const nameWidth = Math.max(...names.map((name) => name.length));
    lines.push("options:");
    flags.forEach(([, flag], index) => {
      const indent = " ".repeat(nameWidth + 4);
      const [first = "", ...rest] = wrap(flag.help, columns, indent);
      lines.push(`  ${names[index]!.padEnd(nameWidth)}  ${first.slice(indent.length)}`, ...rest);
    });
  }
  lines.push(`names: ${command.names.join(", ")}`);
  return lines.join("\n");
}

/** Splits `text` into lines of at most `width` columns, each starting with `indent`. */
function wrap(text: string, width: number, indent: string): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && indent.length + line.length + 1 + word.length > width) {
      lines.push(indent + line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  lines.push(indent + line);
  return lines;
}
