/**
 * Which paths a `sync` leaves out: `--exclude PATTERN` and `--include
 * PATTERN`, with fts's pattern rules (client/glob.ts: `*`, `?`, `[a-z]`,
 * hidden names matched only by a pattern that starts with a dot). As in
 * rsync, a pattern without a `/` matches a name at any depth, one with a `/`
 * the whole path from the top of the tree (a leading `/` is the top), and a
 * trailing `/` matches directories only. A path is left out when an exclude
 * matches it and no include does; a directory left out takes everything in
 * it along. Left out means on both sides: a sync neither sends an excluded
 * file nor deletes the target's copy of one.
 *
 * @module
 */

import { compileGlob } from "./glob.ts";

/** One compiled pattern. */
interface PathPattern {
  matches: (name: string) => boolean;
  /** Matched against the whole path, not the last name. */
  anchored: boolean;
  /** Matches directories only. */
  dirsOnly: boolean;
}

/** The file a source tree may hold with more patterns to leave out, one per line. */
export const IGNORE_FILE = ".ftsignore";

/**
 * The excludes and includes of one sync.
 *
 * @example
 * ```ts
 * import { SyncFilter } from "./sync_filter.ts";
 * const filter = new SyncFilter(["*.log", "build/"], ["keep.log"]);
 * console.assert(filter.leavesOut("a/b/x.log", false));
 * console.assert(!filter.leavesOut("a/keep.log", false));
 * console.assert(filter.leavesOut("build", true) && !filter.leavesOut("build", false));
 * ```
 */
export class SyncFilter {
  readonly #excludes: PathPattern[];
  readonly #includes: PathPattern[];

  /** A filter leaving out what matches `excludes` and none of `includes`. */
  constructor(excludes: string[], includes: string[] = []) {
    this.#excludes = excludes.map(compilePattern);
    this.#includes = includes.map(compilePattern);
  }

  /** Whether the filter leaves nothing out. */
  get empty(): boolean {
    return this.#excludes.length === 0;
  }

  /** Whether `path` (relative to the top, `/`-separated) is left out by its own name. */
  leavesOut(path: string, isDir: boolean): boolean {
    const hit = (pattern: PathPattern) =>
      (!pattern.dirsOnly || isDir) &&
      pattern.matches(pattern.anchored ? path : path.slice(path.lastIndexOf("/") + 1));
    return this.#excludes.some(hit) && !this.#includes.some(hit);
  }
}

/**
 * The patterns of an ignore file's text: one per line; blank lines and lines
 * starting with `#` are skipped.
 *
 * @example
 * ```ts
 * import { ignorePatterns } from "./sync_filter.ts";
 * console.assert(ignorePatterns("# build output\nbuild/\n\n*.tmp\n").join(" ") === "build/ *.tmp");
 * ```
 */
export function ignorePatterns(text: string): string[] {
  return text.split(/\r?\n/).map((line) => line.trim()).filter((line) =>
    line !== "" && !line.startsWith("#")
  );
}

function compilePattern(text: string): PathPattern {
  const dirsOnly = text.endsWith("/");
  const body = text.replace(/\/+$/, "");
  const anchored = body.includes("/");
  return { matches: compileGlob(body.replace(/^\/+/, "")), anchored, dirsOnly };
}
