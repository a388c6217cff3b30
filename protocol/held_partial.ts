/**
 * One held partial, as a `partials` listing carries it: the data a broken
 * resumable upload left for a resume, and its check on the receiving side.
 *
 * @module
 */

import { FtsError, ProtocolError } from "./errors.ts";
import { asObject, field, mtimeField, sizeField } from "./fields.ts";
import { parseName } from "./names.ts";

/** What the server keeps of one broken resumable upload. */
export interface HeldPartial {
  /** The upload's name, from the top of the served directory (`a/b.bin`). */
  name: string;
  /** The upload's whole size in bytes: a resume must declare the same. */
  size: number;
  /** Bytes held, which a resume continues from. */
  held: number;
  /** When the held bytes were last written, ms since the epoch: they expire a day after. */
  mtime: number;
}

/**
 * Checks one held partial a server listed and keeps only its known fields.
 * Its name must be one a client may send (protocol/names.ts): it is typed
 * back to resume or drop it. More held than the upload's size is impossible.
 *
 * @example
 * ```ts
 * import { decodeHeldPartial } from "./held_partial.ts";
 * const held = decodeHeldPartial({ name: "a/b.bin", size: 10, held: 4, mtime: 0, extra: 1 });
 * console.assert(held.held === 4 && !("extra" in held));
 * ```
 */
export function decodeHeldPartial(value: unknown): HeldPartial {
  const message = asObject(value, "a held partial");
  const name = field(message, "name", "string");
  try {
    parseName(name);
  } catch (err) {
    if (!(err instanceof FtsError)) throw err;
    throw new ProtocolError(`the server listed a partial with a bad name: ${err.message}`);
  }
  const size = sizeField(message, "size");
  const held = sizeField(message, "held");
  if (held > size) {
    throw new ProtocolError(`the server holds ${held} bytes of an upload of ${size}`);
  }
  return { name, size, held, mtime: mtimeField(message, "mtime") };
}
