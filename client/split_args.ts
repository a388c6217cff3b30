/**
 * Splits a command line into words the way a POSIX shell does, without any
 * expansion: quotes group, backslashes escape. One scanner serves both a line
 * that is run ({@link splitArgs}, strict about open quotes) and a line being
 * typed ({@link wordsBeingTyped}, which forgives them), so completion sees
 * the words the command will see.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** Characters a backslash escapes inside double quotes, as in a POSIX shell. */
const ESCAPABLE_IN_DOUBLE_QUOTES = new Set(["$", "`", '"', "\\", "\n"]);

/** Characters the scanner treats specially outside quotes: a backslash makes each literal. */
const SPECIAL_OUTSIDE_QUOTES = /[\s'"\\]/g;

/** What one scan of a line found. */
interface Scan {
  /** The words, the last one included if the line ends inside it. */
  words: string[];
  /** Where the last word starts in the line, or -1 when the line ends between words. */
  lastStart: number;
}

/**
 * Scans `line` into words. Strict, an open quote is a usage error; forgiving,
 * it runs to the end of the line.
 */
function scanWords(line: string, forgiving: boolean): Scan {
  const words: string[] = [];
  let word = "";
  let start = -1;
  let i = 0;
  const unterminated = (what: string) => {
    if (!forgiving) throw new UsageError(`unterminated ${what} quote`);
  };
  while (i < line.length) {
    const c = line[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (start >= 0) words.push(word);
      word = "";
      start = -1;
      i += 1;
      continue;
    }
    if (start < 0) start = i;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) unterminated("single");
      word += line.slice(i + 1, end < 0 ? line.length : end);
      i = end < 0 ? line.length : end + 1;
    } else if (c === '"') {
      i += 1;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && ESCAPABLE_IN_DOUBLE_QUOTES.has(line[i + 1] ?? "")) i += 1;
        word += line[i] ?? "";
        i += 1;
      }
      if (i >= line.length) unterminated("double");
      i += 1;
    } else if (c === "\\") {
      word += line[i + 1] ?? "";
      i += 2;
    } else {
      word += c;
      i += 1;
    }
  }
  if (start >= 0) words.push(word);
  return { words, lastStart: start };
}

/**
 * Splits `line` into words; an open quote is a usage error.
 *
 * @example
 * ```ts
 * import { splitArgs } from "./split_args.ts";
 * const words = splitArgs(`put "my file.txt" 'a b'`);
 * console.assert(words.join("|") === "put|my file.txt|a b");
 * ```
 */
export function splitArgs(line: string): string[] {
  return scanWords(line, false).words;
}

/**
 * Splits a line being typed as {@link splitArgs} would, forgiving an open
 * quote or a trailing backslash. The last word is the one under the cursor
 * ("" after a space); `raw` is its text as typed, which a completion replaces.
 *
 * @example
 * ```ts
 * import { wordsBeingTyped } from "./split_args.ts";
 * const { words, raw } = wordsBeingTyped(`get "two wo`);
 * console.assert(words.at(-1) === "two wo" && raw === `"two wo`);
 * ```
 */
export function wordsBeingTyped(line: string): { words: string[]; raw: string } {
  const { words, lastStart } = scanWords(line, true);
  if (lastStart < 0) words.push("");
  return { words, raw: lastStart < 0 ? "" : line.slice(lastStart) };
}

/**
 * Writes `word` so that {@link splitArgs} reads it back as that one word.
 *
 * @example
 * ```ts
 * import { escapeWord } from "./split_args.ts";
 * console.assert(escapeWord("two words.txt") === "two\\ words.txt");
 * ```
 */
export function escapeWord(word: string): string {
  return word.replace(SPECIAL_OUTSIDE_QUOTES, "\\$&");
}
