/**
 * Glob patterns for names: `*` (any run of characters but `/`), `?` (one
 * character), `[abc]` and `[a-z]` (one of a set), matched against one path
 * segment at a time; only the last segment of a pattern may hold wildcards.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** Reports whether `text` holds glob wildcards. */
export function isGlob(text: string): boolean {
  return /[*?[]/.test(text);
}

/**
 * Compiles a one-segment pattern into a RegExp.
 *
 * @example
 * ```ts
 * import { globToRegExp } from "./glob.ts";
 * console.assert(globToRegExp("*.csv").test("q1.csv"));
 * ```
 */
export function globToRegExp(pattern: string): RegExp {
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === "*") source += "[^/]*";
    else if (c === "?") source += "[^/]";
    else if (c === "[") {
      const end = pattern.indexOf("]", i + 2);
      if (end < 0) source += "\\[";
      else {
        const set = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
        source += set.startsWith("!") ? `[^${set.slice(1)}]` : `[${set}]`;
        i = end;
      }
    } else source += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  // Like a shell, a leading * does not match hidden names.
  return new RegExp(`^${pattern.startsWith(".") ? "" : "(?!\\.)"}${source}$`);
}

/**
 * Splits a pattern into its directory (no wildcards) and its last segment.
 * A wildcard in the directory is a usage error: patterns match one level.
 *
 * @example
 * ```ts
 * import { splitPattern } from "./glob.ts";
 * console.assert(splitPattern("reports/*.csv").dir === "reports");
 * ```
 */
export function splitPattern(pattern: string): { dir: string; last: string } {
  const slash = pattern.lastIndexOf("/");
  const dir = slash < 0 ? "" : pattern.slice(0, slash);
  if (isGlob(dir)) {
    throw new UsageError(
      `only the last part of a pattern may hold wildcards: '${pattern}' has them in '${dir}'`,
    );
  }
  return { dir, last: pattern.slice(slash + 1) };
}
