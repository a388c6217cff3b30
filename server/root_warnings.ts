/**
 * Warnings about where the root is: a served directory, or a directory on the
 * way to it, that other local users may write can be changed, or swapped for
 * another, under the server. Warnings, not refusals: the operator may mean it.
 *
 * @module
 */

import { dirname } from "node:path";

/**
 * Warnings about the root itself, `root` with permission bits `mode`: one if
 * it is world-writable.
 *
 * @example
 * ```ts
 * import { rootWarnings } from "./root_warnings.ts";
 * console.assert(rootWarnings("/srv/files", 0o755).length === 0);
 * console.assert(rootWarnings("/srv/files", 0o777).length === 1);
 * ```
 */
export function rootWarnings(root: string, mode: number): string[] {
  if ((mode & 0o002) === 0) return [];
  return [
    `the served directory ${root} is world-writable: any local user can ` +
    "add, and swap, what it serves and where uploads land (chmod o-w)",
  ];
}

/**
 * Warnings for each directory above `root` (a resolved absolute path), up to
 * `/`, that users other than its owner may write without the sticky bit: any
 * of them could rename the way to the root aside and put a directory of their
 * own in its place. The sticky bit (as on /tmp) lets only an entry's owner
 * move it. (The root itself is {@link rootWarnings}'s to warn about.) Call it
 * before the sandbox starts: the server's worker may not read above the root.
 *
 * @example
 * ```ts
 * import { openAncestorWarnings } from "./root_warnings.ts";
 * // One line per directory above /srv/files that others may write without the sticky bit.
 * for (const warning of openAncestorWarnings("/srv/files")) console.error(warning);
 * ```
 */
export function openAncestorWarnings(root: string): string[] {
  const warnings: string[] = [];
  for (let dir = dirname(root);; dir = dirname(dir)) {
    let mode = 0;
    try {
      mode = Deno.lstatSync(dir).mode ?? 0;
    } catch {
      // Not ours to see (a directory we may pass but not stat): nothing to say about it.
    }
    if ((mode & 0o002) !== 0 && (mode & 0o1000) === 0) {
      warnings.push(
        `${dir}, above the served directory, is writable by others without the sticky bit: ` +
          "any local user can move the way to the served directory aside and put another in " +
          "its place (chmod o-w, or +t)",
      );
    }
    if (dirname(dir) === dir) return warnings;
  }
}
