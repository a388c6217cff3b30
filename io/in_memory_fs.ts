/**
 * Whether a directory lives on a file system in memory, where fsync has no
 * stable storage to wait for: both sides then skip it, because handing a
 * no-op to a thread costs more than a small file's whole transfer.
 *
 * @module
 */

import { statfs } from "node:fs/promises";

/** Linux's magic numbers of the file systems that live in memory: tmpfs and ramfs. */
const IN_MEMORY_FILE_SYSTEMS = new Set([0x01021994, 0x858458f6]);

const known = new Map<string, Promise<boolean>>();

/**
 * Reports whether `directory` is on tmpfs or ramfs (false when unsure, or
 * off Linux); asked once per directory.
 *
 * @example
 * ```ts
 * import { isInMemoryFileSystem } from "./in_memory_fs.ts";
 * console.assert(typeof await isInMemoryFileSystem(".") === "boolean");
 * ```
 */
export function isInMemoryFileSystem(directory: string): Promise<boolean> {
  let answer = known.get(directory);
  if (answer === undefined) {
    answer = Deno.build.os !== "linux" ? Promise.resolve(false) : statfs(directory).then(
      (info) => IN_MEMORY_FILE_SYSTEMS.has(Number(info.type)),
      () => false,
    );
    known.set(directory, answer);
  }
  return answer;
}
