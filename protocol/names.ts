/**
 * The rules for names on the wire: relative paths inside the served root,
 * separated by `/`.
 *
 * @module
 */

import { FtsError } from "./errors.ts";
import { MAX_NAME_BYTES, MAX_SEGMENT_BYTES } from "./limits.ts";

/** Top-level entry of the root where the server keeps its own state; never listed, never addressable. */
export const STATE_DIR_NAME = ".fts";

const encoder = new TextEncoder();

// Device names Windows reserves in every directory, with or without an extension:
// refused everywhere, so that any tree fts stores can be downloaded to any system.
// Windows also takes `CON ` and `nul.` for the device (it drops trailing spaces and dots),
// and counts CONIN$, CONOUT$ and the superscript digits ¹²³ among them.
const WINDOWS_DEVICE_NAME =
  /^(con|prn|aux|nul|conin\$|conout\$|com[1-9\u00b9\u00b2\u00b3]|lpt[1-9\u00b9\u00b2\u00b3])(\..*)?[. ]*$/i;

// C0 controls, DEL and C1 controls: invisible in listings and unsafe in terminals.
// deno-lint-ignore no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks a name and returns its segments, or throws `BAD_NAME`.
 *
 * Refused: empty names, absolute paths, empty, `.` or `..` segments, unpaired
 * UTF-16 surrogates, NUL and other control characters, backslashes, Windows
 * device names (`CON`, `nul.txt`, `COM1`, `CON `, `CONIN$`, …), segments over
 * 255 bytes, names over 4096 bytes, and the server's own state directory as
 * any file system might see it (`.fts`, `.FTS`, `.fts.`, `.ftſ`, `.f\u200bts`).
 *
 * @example
 * ```ts
 * import { parseName } from "./names.ts";
 * console.assert(parseName("reports/2026/q1.csv").length === 3);
 * ```
 */
export function parseName(name: string): string[] {
  if (name.length === 0) throw badName(name, "the name is empty");
  const bytes = encoder.encode(name).length;
  if (bytes > MAX_NAME_BYTES) {
    throw badName(name, `the name is ${bytes} bytes, over the limit of ${MAX_NAME_BYTES}`);
  }
  if (name.startsWith("/")) throw badName(name, "absolute paths are not allowed");
  // A lone surrogate is valid in JSON but not in UTF-8: the file system would
  // store U+FFFD instead, giving one file two wire names.
  if (!name.isWellFormed()) throw badName(name, "unpaired UTF-16 surrogates are not allowed");
  if (CONTROL_CHARACTERS.test(name)) throw badName(name, "control characters are not allowed");
  if (name.includes("\\")) throw badName(name, "backslashes are not allowed");
  const segments = name.split("/");
  for (const segment of segments) {
    if (segment === "") throw badName(name, "empty path segments are not allowed");
    if (segment === "." || segment === "..") {
      throw badName(name, "'.' and '..' segments are not allowed");
    }
    if (WINDOWS_DEVICE_NAME.test(segment)) {
      throw badName(name, `'${segment}' is a device name reserved on Windows`);
    }
    const segmentBytes = encoder.encode(segment).length;
    if (segmentBytes > MAX_SEGMENT_BYTES) {
      throw badName(
        name,
        `a segment is ${segmentBytes} bytes, over the limit of ${MAX_SEGMENT_BYTES}`,
      );
    }
  }
  if (namesStateDirectory(segments[0]!)) {
    throw badName(name, `'${STATE_DIR_NAME}' is reserved for the server`);
  }
  return segments;
}

/**
 * Code points some file systems ignore in names (HFS+ and others drop them:
 * zero-width spaces and joiners, the soft hyphen, the byte-order mark,
 * invisible operators, variation selectors).
 */
const IGNORED_CODE_POINTS =
  /[\u00ad\u034f\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufe00-\ufe0f\ufeff]/g;

/**
 * Reports whether a top-level segment names the state directory on some file
 * system: in any case (`.FTS`; `ſ` upper-cases to `S`), with trailing dots or
 * spaces (Windows drops them), or with code points a file system ignores.
 */
function namesStateDirectory(segment: string): boolean {
  const seen = segment.replace(IGNORED_CODE_POINTS, "").replace(/[. ]+$/, "");
  return seen.toLowerCase() === STATE_DIR_NAME ||
    seen.toUpperCase() === STATE_DIR_NAME.toUpperCase();
}

/**
 * Like {@link parseName}, for a directory: the empty name means the root and
 * gives no segments.
 */
export function parseDirectoryName(name: string): string[] {
  return name === "" ? [] : parseName(name);
}

function badName(name: string, reason: string): FtsError {
  const shown = name.length > 80 ? `${name.slice(0, 80)}…` : name;
  return new FtsError("BAD_NAME", `bad name ${JSON.stringify(shown)}: ${reason}`);
}
