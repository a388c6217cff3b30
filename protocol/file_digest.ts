/**
 * One file's digest, as a `digests` listing carries it: a directory's
 * regular files with the size and modification time they had when hashed,
 * and its check on the receiving side. The frame names the checksum; every
 * digest in it is of that checksum, with its number of hex digits.
 *
 * @module
 */

import { type ChecksumName, isDigestHex } from "./checksum.ts";
import { ProtocolError } from "./errors.ts";
import { asObject, field, mtimeField, sizeField } from "./fields.ts";

/** One file of a `digests` listing. */
export interface FileDigest {
  /** The file's name within the directory: one segment. */
  name: string;
  /** Its size in bytes when hashed. */
  size: number;
  /** Its modification time when hashed, ms since the epoch. */
  mtime: number;
  /** Its content's digest, lowercase hex, of the frame's checksum. */
  hex: string;
}

/**
 * Checks one file digest a server listed under `checksum`, keeping only its
 * known fields. A name no file system can hold is a protocol violation, as
 * in a listing (protocol/entry.ts).
 *
 * @example
 * ```ts
 * import { decodeFileDigest } from "./file_digest.ts";
 * const hex = "0".repeat(32);
 * const file = decodeFileDigest({ name: "a.txt", size: 1, mtime: 0, hex, extra: 1 }, "xxh3-128");
 * console.assert(file.hex === hex && !("extra" in file));
 * ```
 */
export function decodeFileDigest(value: unknown, checksum: ChecksumName): FileDigest {
  const message = asObject(value, "a file digest");
  const name = field(message, "name", "string");
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new ProtocolError(
      `the server listed a digest of an impossible name ${JSON.stringify(name)}`,
    );
  }
  const hex = field(message, "hex", "string");
  if (!isDigestHex(checksum, hex)) {
    throw new ProtocolError(`a ${checksum} digest in a digests listing is not one`);
  }
  return { name, size: sizeField(message, "size"), mtime: mtimeField(message, "mtime"), hex };
}
