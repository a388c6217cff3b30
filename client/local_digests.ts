/**
 * Content digests of local files, for `sync -c`: each file hashed with the
 * session's checksum unless this client hashed it before and it has not
 * changed since (a record per tree in `$XDG_CACHE_HOME/fts/digests/`, or
 * `~/.cache/fts/digests/`, io/known_digests.ts).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join, resolve } from "node:path";
import type { ChecksumName } from "../protocol/checksum.ts";
import { KnownDigests } from "../io/known_digests.ts";
import { createStreamingHash, hashHeldPrefix } from "../io/verified_transfer.ts";

/** Where this client keeps what it knows of the digests of the files under `top`; null with no home. */
export function localDigestRecord(top: string, algorithm: ChecksumName): string | null {
  const cacheHome = Deno.env.get("XDG_CACHE_HOME") ||
    (Deno.env.get("HOME") ? join(Deno.env.get("HOME")!, ".cache") : null);
  if (cacheHome === null) return null;
  const key = createHash("sha256").update(resolve(top)).digest("hex");
  return join(cacheHome, "fts", "digests", `${key}-${algorithm}`);
}

/** The digest of the local file at `path`, of `algorithm`, read now. */
export async function hashLocalFile(path: string, algorithm: ChecksumName): Promise<string> {
  using file = await Deno.open(path, { read: true });
  const hash = await createStreamingHash(algorithm);
  await hashHeldPrefix(file, (await file.stat()).size, hash);
  return hash.hex();
}

/**
 * The digests of `paths` (relative to `top`, `/`-separated) by path; a file
 * gone meanwhile has none. `present` names every file of the tree now, so
 * that the record forgets the rest.
 */
export async function localDigests(
  top: string,
  paths: string[],
  present: Iterable<string>,
  algorithm: ChecksumName,
): Promise<Map<string, string>> {
  const record = localDigestRecord(top, algorithm);
  const known = record === null ? null : await KnownDigests.load(record, algorithm);
  const digests = new Map<string, string>();
  for (const path of paths) {
    const full = join(top, ...path.split("/"));
    // A stat decides whether the kept digest still holds; only a file that changed is opened.
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(full);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    const kept = known?.get(path, info) ?? null;
    if (kept !== null) {
      digests.set(path, kept);
      continue;
    }
    let file: Deno.FsFile;
    try {
      file = await Deno.open(full, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) continue;
      throw err;
    }
    try {
      const opened = await file.stat();
      const hash = await createStreamingHash(algorithm);
      await hashHeldPrefix(file, opened.size, hash);
      const hex = hash.hex();
      known?.set(path, opened, hex);
      digests.set(path, hex);
    } finally {
      file.close();
    }
  }
  known?.keepOnly(new Set(present));
  await known?.save();
  return digests;
}
