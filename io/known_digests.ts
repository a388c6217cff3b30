/**
 * Digests of files already hashed, kept in a record file so that a file
 * that has not changed since is not read again: the server keeps one per
 * directory of its root (`.fts/digests/`, for `digests` requests), the
 * client one per tree it syncs with `-c`. A file's digest is trusted only
 * while the file is the same: same inode, size, modification time and change
 * time (ctime, which no one can set back), and only once that ctime is
 * older than the second the digest was recorded in. A record is written whole and
 * atomically; one that is torn, too large or malformed counts as empty and
 * is replaced.
 *
 * @module
 */

import { dirname } from "node:path";
import { type ChecksumName, isDigestHex } from "../protocol/checksum.ts";

/**
 * Largest record kept, read or written: about 80,000 files. Beyond it the
 * files are hashed every time, and cost no more disk.
 */
export const MAX_DIGEST_RECORD_BYTES = 8 * 1024 * 1024;

/** What a file was when it was hashed, its digest, and when that was recorded. */
interface Known {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
  hex: string;
  recordedMs: number;
}

/**
 * The change time's resolution as these machines report it (whole seconds):
 * a file changed again within the second it was hashed in shows the same
 * ctime, so a digest recorded in the second of the file's last change is not
 * trusted (as git treats a "racily clean" index entry) and is made again.
 */
const CTIME_RESOLUTION_MS = 1000;

/** The identity a digest is checked against, from a file's stat. */
function identity(info: Deno.FileInfo): Omit<Known, "hex" | "recordedMs"> {
  return {
    ino: info.ino ?? -1,
    size: info.size,
    mtimeMs: info.mtime?.getTime() ?? -1,
    ctimeMs: info.ctime?.getTime() ?? -1,
  };
}

/**
 * The digests known for a set of files under one checksum, by name: read
 * once, asked and told about each file, then saved if anything changed.
 *
 * @example
 * ```ts
 * import { KnownDigests } from "./known_digests.ts";
 * const dir = Deno.makeTempDirSync();
 * Deno.writeTextFileSync(`${dir}/a.txt`, "a");
 * const info = Deno.statSync(`${dir}/a.txt`);
 * const known = await KnownDigests.load(`${dir}/record`, "xxh3-128");
 * known.set("a.txt", info, "0".repeat(32));
 * await known.save();
 * const again = await KnownDigests.load(`${dir}/record`, "xxh3-128");
 * // Changed in the second it was hashed in: it could change again unseen, so it is hashed again.
 * console.assert(again.get("a.txt", info) === null);
 * Deno.removeSync(dir, { recursive: true });
 * ```
 */
export class KnownDigests {
  readonly #path: string;
  readonly #algorithm: ChecksumName;
  readonly #known: Map<string, Known>;
  #changed = false;

  private constructor(path: string, algorithm: ChecksumName, known: Map<string, Known>) {
    this.#path = path;
    this.#algorithm = algorithm;
    this.#known = known;
  }

  /** The record at `path`, or an empty one. */
  static async load(path: string, algorithm: ChecksumName): Promise<KnownDigests> {
    const known = new Map<string, Known>();
    try {
      const info = await Deno.stat(path);
      if (info.size <= MAX_DIGEST_RECORD_BYTES) {
        const record = JSON.parse(await Deno.readTextFile(path));
        for (const [name, file] of Object.entries(record.files ?? {})) {
          const k = file as Known;
          if (isDigestHex(algorithm, k.hex) && typeof k.recordedMs === "number") known.set(name, k);
        }
      }
    } catch {
      // None yet, or not one to trust: the files are hashed again.
    }
    return new KnownDigests(path, algorithm, known);
  }

  /** The digest known for `name`, while it is still the file `info` describes; else null. */
  get(name: string, info: Deno.FileInfo): string | null {
    const known = this.#known.get(name);
    const now = identity(info);
    const same = known !== undefined && known.ino === now.ino && known.size === now.size &&
      known.mtimeMs === now.mtimeMs && known.ctimeMs === now.ctimeMs;
    const settled = known !== undefined &&
      Math.floor(known.ctimeMs / CTIME_RESOLUTION_MS) <
        Math.floor(known.recordedMs / CTIME_RESOLUTION_MS);
    return same && settled ? known.hex : null;
  }

  /** Keeps `hex` as the digest of `name` while it is the file `info` describes. */
  set(name: string, info: Deno.FileInfo, hex: string): void {
    this.#known.set(name, { ...identity(info), hex, recordedMs: Date.now() });
    this.#changed = true;
  }

  /** Forgets every file not in `names` (gone from the directory). */
  keepOnly(names: Set<string>): void {
    for (const name of this.#known.keys()) {
      if (!names.has(name)) {
        this.#known.delete(name);
        this.#changed = true;
      }
    }
  }

  /** Writes the record, if it changed and fits; a failure only means hashing again next time. */
  async save(): Promise<void> {
    if (!this.#changed) return;
    const text = JSON.stringify({
      algorithm: this.#algorithm,
      files: Object.fromEntries(this.#known),
    });
    if (text.length > MAX_DIGEST_RECORD_BYTES) return;
    const tmp = `${this.#path}.${crypto.randomUUID()}.tmp`;
    try {
      await Deno.mkdir(dirname(this.#path), { recursive: true });
      await Deno.writeTextFile(tmp, text, { createNew: true });
      await Deno.rename(tmp, this.#path);
    } catch {
      await Deno.remove(tmp).catch(() => {});
    }
  }
}
