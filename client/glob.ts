/**
 * Glob patterns for names: `*` (any run of characters but `/`), `?` (one
 * character), `[abc]`, `[a-z]` and `[!x]` (one of a set, or not), matched
 * against one path segment at a time; only the last segment of a pattern may
 * hold wildcards. A wildcard at the start of a segment does not match a
 * leading `.`, as in a shell.
 *
 * Matching takes O(pattern × name) steps at worst, never more: names come
 * from a server's listing or a local directory, and a backtracking RegExp
 * took minutes on `a*a*a*a*a*b` against a name of 250 `a`s.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** A compiled pattern, shaped like the RegExp it replaces: callers only `test()`. */
export interface GlobMatcher {
  /** Reports whether `name` matches the whole pattern. */
  test(name: string): boolean;
}

/** One position of a compiled segment. */
type Token =
  | { kind: "star" }
  | { kind: "any" }
  | { kind: "literal"; char: string }
  | { kind: "set"; negated: boolean; ranges: [low: number, high: number][] };

/** Reports whether `text` holds glob wildcards. */
export function isGlob(text: string): boolean {
  return /[*?[]/.test(text);
}

/**
 * Compiles a pattern into a function that reports whether a name matches it.
 * Pattern and name are split at `/` and matched segment by segment.
 *
 * @example
 * ```ts
 * import { compileGlob } from "./glob.ts";
 * const isCsv = compileGlob("*.csv");
 * console.assert(isCsv("q1.csv") && !isCsv(".hidden.csv"));
 * ```
 */
export function compileGlob(pattern: string): (name: string) => boolean {
  const segments = pattern.split("/").map(compileSegment);
  return (name) => {
    const parts = name.split("/");
    if (parts.length !== segments.length) return false;
    return segments.every((segment, i) => matchSegment(segment, parts[i]!));
  };
}

/**
 * Compiles a pattern into an object with a RegExp's `test()`, for callers
 * written against the RegExp this module used to return.
 *
 * @example
 * ```ts
 * import { globToRegExp } from "./glob.ts";
 * console.assert(globToRegExp("*.csv").test("q1.csv"));
 * ```
 */
export function globToRegExp(pattern: string): GlobMatcher {
  const matches = compileGlob(pattern);
  return { test: matches };
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

/** Parses one segment (no `/`) of a pattern; a `[` without its `]` is literal. */
function compileSegment(segment: string): Token[] {
  const chars = Array.from(segment);
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "*") {
      // Consecutive stars match what one does.
      if (tokens.at(-1)?.kind !== "star") tokens.push({ kind: "star" });
    } else if (c === "?") tokens.push({ kind: "any" });
    else if (c === "[") {
      const set = parseSet(chars, i);
      if (set === null) tokens.push({ kind: "literal", char: c });
      else {
        tokens.push(set.token);
        i = set.end;
      }
    } else tokens.push({ kind: "literal", char: c });
  }
  return tokens;
}

/**
 * Parses the set that opens at `chars[open]` (`[`): an optional `!` or `^`
 * negates it, a `]` right after that is a member, `x-y` is a range.
 * Returns null when no `]` closes it.
 */
function parseSet(
  chars: string[],
  open: number,
): { token: Token; end: number } | null {
  let i = open + 1;
  const negated = chars[i] === "!" || chars[i] === "^";
  if (negated) i++;
  const first = i;
  const ranges: [number, number][] = [];
  for (; i < chars.length; i++) {
    const c = chars[i]!;
    if (c === "]" && i > first) return { token: { kind: "set", negated, ranges }, end: i };
    const low = c.codePointAt(0)!;
    const high = chars[i + 2];
    if (chars[i + 1] === "-" && high !== undefined && high !== "]") {
      ranges.push([low, high.codePointAt(0)!]);
      i += 2;
    } else ranges.push([low, low]);
  }
  return null;
}

/** Reports whether a token other than a star matches the one character `char`. */
function matchesChar(token: Token, char: string): boolean {
  switch (token.kind) {
    case "star":
    case "any":
      return true;
    case "literal":
      return token.char === char;
    case "set": {
      const point = char.codePointAt(0)!;
      const inSet = token.ranges.some(([low, high]) => low <= point && point <= high);
      return inSet !== token.negated;
    }
  }
}

/**
 * Matches one segment with the two-pointer method: on a mismatch, only the
 * most recent star takes one more character and matching resumes after it.
 * Earlier stars never need to be revisited (whatever they could absorb, the
 * later star can too), so each name position is retried at most once per
 * pattern position: O(tokens × characters) steps in all.
 */
function matchSegment(tokens: Token[], segment: string): boolean {
  const chars = Array.from(segment);
  // Like a shell, a wildcard (or set) at the start does not match a hidden name.
  if (chars[0] === "." && !(tokens[0]?.kind === "literal" && tokens[0].char === ".")) {
    return false;
  }
  let t = 0;
  let c = 0;
  let starToken = -1;
  let starChar = 0;
  while (c < chars.length) {
    const token = tokens[t];
    if (token?.kind === "star") {
      starToken = t++;
      starChar = c;
    } else if (token !== undefined && matchesChar(token, chars[c]!)) {
      t++;
      c++;
    } else if (starToken >= 0) {
      t = starToken + 1;
      c = ++starChar;
    } else return false;
  }
  while (tokens[t]?.kind === "star") t++;
  return t === tokens.length;
}
