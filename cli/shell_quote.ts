/**
 * Quoting a word for a POSIX shell (`sh -c`, a tmux command line, an
 * installed shim), where `$`, `*` and the like would otherwise expand. The
 * fts shell's own words, which nothing expands, are written by
 * `escapeWord` (client/split_args.ts).
 *
 * @module
 */

/**
 * `word` in single quotes, each `'` in it written `'\''`, so that `sh` reads
 * it back as that one word, unexpanded.
 *
 * @example
 * ```ts
 * import { shellQuote } from "./shell_quote.ts";
 * console.assert(shellQuote("it's $HOME") === `'it'\\''s $HOME'`);
 * ```
 */
export function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}
