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

/**
 * Whether `directory`, a directory a download plans below `destination`,
 * is there already as a real directory (false when it is missing). A
 * symbolic link there is refused with `DENIED`, anything else with
 * `WRONG_TYPE`: a download writes nothing through a link below the
 * destination it was given, so a link there can never lead it outside.
 * (The destination itself may be a link: the user named it.) Called for
 * every directory of a plan, parents first, so every component between the
 * destination and a file is checked.
 *
 * @example
 * ```ts
 * import { plannedDirectoryExists } from "./local_target.ts";
 * console.assert(plannedDirectoryExists(".", "./no-such-directory-here") === false);
 * ```
 */
export function plannedDirectoryExists(destination: string, directory: string): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(directory);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (info.isDirectory) return true;
  if (info.isSymlink) {
    throw new FtsError(
      "DENIED",
      `${JSON.stringify(directory)} is a symbolic link below the destination ${
        JSON.stringify(destination)
      }; a download never writes through one (remove it, or download into the directory it ` +
        "leads to); nothing was downloaded",
    );
  }
  throw new FtsError(
    "WRONG_TYPE",
    `${JSON.stringify(directory)} is in the way of a directory of the download into ${
      JSON.stringify(destination)
    }: it is not a directory; nothing was downloaded`,
  );
}
