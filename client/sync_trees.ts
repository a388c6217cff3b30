/**
 * The two snapshots a `sync` plans from: a local directory's tree and a
 * remote directory's, each as paths relative to its top, with what the
 * filter leaves out taken away (and everything below a directory it leaves
 * out), and a local tree without the temporary files of downloads
 * (`.NAME.fts-partial`, which a resumed download continues). A top that does not exist is an empty tree, to be created. The remote
 * walk is `get -r`'s (client/plan_tree.ts), with its limits on a hostile
 * server's tree and its checks that every name lands inside the local top.
 *
 * @module
 */

import { basename, join, relative, sep } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { walkLocal } from "./local_files.ts";
import type { ChecksumName, FileDigest } from "../protocol/messages.ts";
import { localDigests } from "./local_digests.ts";
import { looksLikePartialName } from "./partial_download.ts";
import { type RemoteLister, walkRemote } from "./plan_tree.ts";
import type { SyncFilter } from "./sync_filter.ts";
import type { TreeSnapshot } from "./sync_plan.ts";

/** A snapshot and where its entries are. */
export interface SideTree extends TreeSnapshot {
  /** Whether the top exists. */
  exists: boolean;
  /** Each path's place on this side: a local path, or a full remote name. */
  placeOf(path: string): string;
  /** The content digests of the files at `paths`, of `algorithm`, by path (a file gone has none). */
  digests(paths: string[], algorithm: ChecksumName): Promise<Map<string, string>>;
}

/** What reads a remote tree: listings, and the digests of a directory's files. */
export interface RemoteTreeReader extends RemoteLister {
  /** The digests of directory `name`'s files (the session's checksum), by file name. */
  digests(name: string): Promise<Map<string, FileDigest>>;
}

/** Tells whether `path` lies in a directory already left out, and remembers those. */
function prunedWalk(filter: SyncFilter): (path: string, isDir: boolean) => boolean {
  const leftOut: string[] = [];
  return (path, isDir) => {
    if (leftOut.some((dir) => path.startsWith(`${dir}/`))) return true;
    if (!filter.leavesOut(path, isDir)) return false;
    if (isDir) leftOut.push(path);
    return true;
  };
}

/** The tree under the local directory `top`. */
export async function localTree(top: string, filter: SyncFilter): Promise<SideTree> {
  const tree: SideTree = {
    files: new Map(),
    dirs: new Set(),
    exists: true,
    placeOf: (path) => join(top, ...path.split("/")),
    digests: (paths, algorithm) => localDigests(top, paths, tree.files.keys(), algorithm),
  };
  try {
    if (!(await Deno.stat(top)).isDirectory) {
      throw new FtsError("WRONG_TYPE", `${top} is not a directory (sync takes directories)`);
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    tree.exists = false;
    return tree;
  }
  const skip = prunedWalk(filter);
  for await (const entry of walkLocal(top)) {
    const path = relative(top, entry.path).split(sep).join("/");
    // A download's temporary file is this client's own: continued by the download, never synced.
    if (!entry.isDirectory && looksLikePartialName(basename(entry.path))) continue;
    if (skip(path, entry.isDirectory)) continue;
    if (entry.isDirectory) tree.dirs.add(path);
    else tree.files.set(path, { size: entry.size, mtime: entry.mtime });
  }
  return tree;
}

/**
 * The tree under the remote directory `top` ("" for the root), its local
 * places checked to lie inside `localTop`.
 */
export async function remoteTree(
  lister: RemoteTreeReader,
  top: string,
  localTop: string,
  filter: SyncFilter,
): Promise<SideTree & { localPlaceOf(path: string): string }> {
  const locals = new Map<string, string>();
  const placeOfDir = (dir: string) => dir === "" ? top : top === "" ? dir : `${top}/${dir}`;
  const tree = {
    files: new Map(),
    dirs: new Set<string>(),
    exists: true,
    placeOf: (path: string) => top === "" ? path : `${top}/${path}`,
    localPlaceOf: (path: string) => locals.get(path) ?? join(localTop, ...path.split("/")),
    digests: async (paths: string[]) => {
      // One request per directory: the server hashes (or recalls) a directory's files at once.
      const byDir = new Map<string, string[]>();
      for (const path of paths) {
        const slash = path.lastIndexOf("/");
        const dir = slash < 0 ? "" : path.slice(0, slash);
        byDir.set(dir, [...(byDir.get(dir) ?? []), path]);
      }
      const digests = new Map<string, string>();
      for (const [dir, inDir] of byDir) {
        const listed = await lister.digests(placeOfDir(dir));
        for (const path of inDir) {
          const file = listed.get(path.slice(path.lastIndexOf("/") + 1));
          if (file !== undefined) digests.set(path, file.hex);
        }
      }
      return digests;
    },
  };
  let entries;
  try {
    entries = await walkRemote(lister, top, localTop);
  } catch (err) {
    if (err instanceof FtsError && err.code === "WRONG_TYPE") {
      throw new FtsError(
        "WRONG_TYPE",
        `/${top} is not a directory on the server (sync takes directories); nothing was changed`,
        { cause: err },
      );
    }
    if (!(err instanceof FtsError && err.code === "NOT_FOUND")) throw err;
    tree.exists = false;
    return tree;
  }
  const skip = prunedWalk(filter);
  const prefix = top === "" ? "" : `${top}/`;
  for (const entry of entries) {
    const path = entry.remote.slice(prefix.length);
    if (entry.type !== "dir" && entry.type !== "file") continue;
    if (skip(path, entry.type === "dir")) continue;
    locals.set(path, entry.local);
    if (entry.type === "dir") tree.dirs.add(path);
    else tree.files.set(path, { size: entry.size, mtime: entry.mtime });
  }
  return tree;
}
