/**
 * Where a downloaded name may land: the one function that decides whether
 * a local target lies inside the destination a download was given.
 *
 * @module
 */

import { isAbsolute, join, relative, resolve, sep } from "node:path";
import { FtsError } from "../protocol/errors.ts";

/**
 * Joins `segments` under `destination` and checks that the result lies
 * inside it. Each segment must be one path segment (not empty, not `.` or
 * `..`, no `/`, `\` or NUL), and the joined path, resolved, must be below
 * the resolved destination; otherwise `BAD_NAME`.
 *
 * @example
 * ```ts
 * import { localPathInside } from "./local_target.ts";
 * console.assert(localPathInside("dest", ["a", "b.txt"]).endsWith("b.txt"));
 * ```
 */
export function localPathInside(destination: string, segments: string[]): string {
  for (const segment of segments) {
    if (
      segment === "" || segment === "." || segment === ".." || segment.includes("/") ||
      segment.includes("\\") || segment.includes("\0")
    ) {
      throw outside(destination, segments, `${JSON.stringify(segment)} is not one path segment`);
    }
  }
  const target = join(destination, ...segments);
  const below = relative(resolve(destination), resolve(target));
  if (
    segments.length === 0 || below === "" || below === ".." || below.startsWith(`..${sep}`) ||
    isAbsolute(below)
  ) {
    throw outside(destination, segments, "it would not lie inside the destination");
  }
  return target;
}

function outside(destination: string, segments: string[], reason: string): FtsError {
  return new FtsError(
    "BAD_NAME",
    `bad name ${JSON.stringify(segments.join("/"))} for a download into ${destination}: ${reason}`,
  );
}
