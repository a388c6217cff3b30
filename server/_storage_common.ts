/**
 * What the storage modules share: a stat that says "nothing there" as null,
 * and how a request's name appears in an error message. Private to
 * storage.ts, containment.ts, partials.ts, pending_upload.ts and path_limits.ts.
 *
 * @module
 */

import { FtsError } from "../protocol/errors.ts";

/** Deno.lstatSync, or null when nothing is at `path`; other failures throw. */
export function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** A request's name as error messages show it: its segments joined by "/", in JSON quotes. */
export function quote(segments: string[]): string {
  return JSON.stringify(segments.join("/"));
}

/** WRONG_TYPE for `segments`, saying `what` it is (or is not). */
export function wrongType(segments: string[], what: string): FtsError {
  return new FtsError("WRONG_TYPE", `${quote(segments)} ${what}`);
}
