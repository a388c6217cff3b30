/**
 * What the storage modules share: a stat that says "nothing there" as null,
 * a JSON object read from a file of the state directory, and how a
 * request's name appears in an error message. Private to the modules of the
 * root (storage.ts, containment.ts, partials.ts, pending_upload.ts,
 * path_limits.ts, server_lease.ts, space_ledger.ts).
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

/**
 * The fields of the JSON object `text` holds, or null if it holds none
 * (not JSON, or JSON of another kind): files of the state directory are data
 * from disk, each field still to be checked.
 */
export function jsonObjectOrNull(text: string): Record<string, unknown> | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? value as Record<string, unknown>
    : null;
}

/** A request's name as error messages show it: its segments joined by "/", in JSON quotes. */
export function quote(segments: string[]): string {
  return JSON.stringify(segments.join("/"));
}

/** WRONG_TYPE for `segments`, saying `what` it is (or is not). */
export function wrongType(segments: string[], what: string): FtsError {
  return new FtsError("WRONG_TYPE", `${quote(segments)} ${what}`);
}
