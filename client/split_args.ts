/**
 * Splits a command line into words the way a POSIX shell does, without any
 * expansion: quotes group, backslashes escape.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** Characters a backslash escapes inside double quotes, as in a POSIX shell. */
const ESCAPABLE_IN_DOUBLE_QUOTES = new Set(["$", "`", '"', "\\", "\n"]);

/**
 * Splits `line` into words.
 *
 * @example
 * ```ts
 * import { splitArgs } from "./split_args.ts";
 * const words = splitArgs(`put "my file.txt" 'a b'`);
 * console.assert(words.join("|") === "put|my file.txt|a b");
 * ```
 */
export function splitArgs(line: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      i += 1;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new UsageError("unterminated single quote");
      word += line.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i += 1;
      while (i < line.length && line[i] !== '"') {
        if (line[i] === "\\" && ESCAPABLE_IN_DOUBLE_QUOTES.has(line[i + 1] ?? "")) i += 1;
        word += line[i];
        i += 1;
      }
      if (i >= line.length) throw new UsageError("unterminated double quote");
      inWord = true;
      i += 1;
    } else if (c === "\\") {
      if (i + 1 < line.length) word += line[i + 1];
      inWord = true;
      i += 2;
    } else {
      word += c;
      inWord = true;
      i += 1;
    }
  }
  if (inWord) words.push(word);
  return words;
}
