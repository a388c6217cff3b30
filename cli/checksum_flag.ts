/**
 * The value of `--checksum`, on either command: checksum names from the
 * protocol's set, comma-separated, in order of preference (`fts serve`
 * offers the list; `fts connect` takes exactly one).
 *
 * @module
 */

import { type ChecksumName, CHECKSUMS, isChecksumName } from "../protocol/checksum.ts";
import { UsageError } from "./usage_error.ts";

/**
 * The names in `value`, in order; an unknown name, a repeated one or none
 * at all is a {@link UsageError}.
 *
 * @example
 * ```ts
 * import { parseChecksumFlag } from "./checksum_flag.ts";
 * console.assert(parseChecksumFlag("sha256,xxh3-128").join() === "sha256,xxh3-128");
 * ```
 */
export function parseChecksumFlag(value: string): ChecksumName[] {
  const names: ChecksumName[] = [];
  for (const word of value.split(",")) {
    const name = word.trim();
    if (!isChecksumName(name)) {
      throw new UsageError(
        `--checksum takes ${CHECKSUMS.join(" or ")}, not '${name}'`,
      );
    }
    if (names.includes(name)) throw new UsageError(`--checksum names ${name} twice`);
    names.push(name);
  }
  return names;
}
