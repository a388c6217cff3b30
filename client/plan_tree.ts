/**
 * The plan of a `get -r`: every entry of a remote tree, with its full
 * remote name and the local path it takes, checked before anything is
 * written locally. A hostile server's tree is bounded here: its depth
 * ({@link MAX_TREE_DEPTH}), its entries ({@link MAX_TREE_ENTRIES}), the bytes
 * of its names ({@link MAX_TREE_NAME_BYTES}); each name is checked by the
 * server's own rules and must land inside its parent.
 *
 * @module
 */

import { posix } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { localPathInside, plannedDirectoryExists } from "./local_target.ts";
import { downloadPartialName } from "./partial_download.ts";
import { listedName } from "./remote_path.ts";

/** One file to move. */
export interface PlannedFile {
  /** The local path. */
  local: string;
  /** The full remote name. */
  remote: string;
  /** Its size in bytes; -1 while not yet known. */
  size: number;
}

/** What lists a remote directory: a connection. */
export interface RemoteLister {
  /** The checked entries of directory `name` ("" for the root). */
  list(name: string): Promise<Entry[]>;
}

/** A download tree's plan: its files, and the local directories to make, parents first. */
export interface DownloadTreePlan {
  /** Every file of the tree, parents' files first. */
  files: PlannedFile[];
  /** Directories of the tree not there yet locally, parents first. */
  missing: string[];
}

/**
 * Plans the download of the remote directory `remoteDir` into `localDir`:
 * the whole tree is walked ({@link walkRemote}) and every directory of it
 * already there locally checked to be a real directory, parents first, so
 * every component between the destination and a file is checked
 * (`plannedDirectoryExists`: a link there is refused).
 *
 * @example
 * ```ts
 * import { planDownloadTree } from "./plan_tree.ts";
 * const lister = {
 *   list: (name: string) =>
 *     Promise.resolve(name === "" ? [{ name: "a.txt", type: "file" as const, size: 1, mtime: 0 }] : []),
 * };
 * const plan = await planDownloadTree(lister, "", "no-such-dir-here");
 * console.assert(plan.files.length === 1 && plan.missing.length === 0);
 * ```
 */
export async function planDownloadTree(
  lister: RemoteLister,
  remoteDir: string,
  localDir: string,
): Promise<DownloadTreePlan> {
  const files: PlannedFile[] = [];
  const missing: string[] = [];
  for (const entry of await walkRemote(lister, remoteDir, localDir)) {
    if (entry.type === "dir") {
      if (!plannedDirectoryExists(localDir, entry.local)) missing.push(entry.local);
    } else if (entry.type === "file") {
      files.push({ remote: entry.remote, local: entry.local, size: entry.size });
    }
  }
  return { files, missing };
}

/**
 * Deepest a remote tree `get -r` descends below the directory it was given:
 * far deeper than real trees go, and far short of where a server that lists
 * a directory inside itself would run into the 4096-byte name limit.
 */
export const MAX_TREE_DEPTH = 256;

/**
 * Most entries `get -r` plans in one tree: each is held in memory until the
 * transfer starts, so an endless tree is stopped long before memory is.
 */
export const MAX_TREE_ENTRIES = 1_000_000;

/**
 * Most bytes the full remote names of one planned tree may add up to. Each
 * entry is held as its remote name and its local path (about twice this in
 * all), and each file's report line quotes both again: 128 MiB is a million
 * entries of 128-byte names, more than real trees hold, and keeps a planned
 * tree within a few hundred MiB, where a deep, wide tree from a hostile
 * server would otherwise take gigabytes before a byte is written.
 */
export const MAX_TREE_NAME_BYTES = 128 * 1024 * 1024;

/** An entry of a remote tree: its full remote name and its local path, each made once. */
export interface RemoteTreeEntry {
  /** Its full remote name. */
  remote: string;
  /** The local path it takes. */
  local: string;
  /** Its type, as listed. */
  type: string;
  /** Its size in bytes, as listed. */
  size: number;
  /** Its modification time as listed, ms since the epoch. */
  mtime: number;
}

const utf8 = new TextEncoder();

/**
 * Every entry under a remote directory, with full names and the local paths
 * below `localDir` they would take, parents first. Each listed name is
 * checked by the server's own rules ({@link listedName}), and its local path
 * to lie inside its parent's ({@link localPathInside}); names that another
 * entry's temporary file would take are refused ({@link refuseTemporaryNames}).
 * The walk stops with an error beyond {@link MAX_TREE_DEPTH} levels,
 * {@link MAX_TREE_ENTRIES} entries or {@link MAX_TREE_NAME_BYTES} of names.
 * Entries carry no inode, so a directory listed inside itself cannot be told
 * from a deep tree: the depth limit stops it.
 */
export async function walkRemote(
  lister: RemoteLister,
  top: string,
  localDir: string,
): Promise<RemoteTreeEntry[]> {
  const tree: RemoteTreeEntry[] = [];
  let nameBytes = 0;
  const walk = async (dir: string, local: string, depth: number): Promise<void> => {
    if (depth >= MAX_TREE_DEPTH) {
      throw new FtsError(
        "TOO_LARGE",
        `the remote tree ${top || "/"} is more than ${MAX_TREE_DEPTH} directories deep ` +
          `(at /${dir}); a server listing a directory inside itself looks like this; ` +
          "nothing was downloaded",
      );
    }
    const listing = await lister.list(dir);
    if (depth === 0) await assertDirectory(lister, top, listing);
    refuseTemporaryNames(
      dir,
      listing.filter((entry) => entry.type === "dir" || entry.type === "file"),
    );
    const dirBytes = utf8.encode(dir).length;
    for (const entry of listing) {
      const remote = listedName(dir, entry.name);
      if (tree.length >= MAX_TREE_ENTRIES) {
        throw new FtsError(
          "TOO_LARGE",
          `the remote tree ${top || "/"} holds more than ${MAX_TREE_ENTRIES} entries, ` +
            "the most one download plans; nothing was downloaded",
        );
      }
      nameBytes += dirBytes + 1 + utf8.encode(entry.name).length;
      if (nameBytes > MAX_TREE_NAME_BYTES) {
        throw new FtsError(
          "TOO_LARGE",
          `the names in the remote tree ${top || "/"} add up to more than ` +
            `${MAX_TREE_NAME_BYTES} bytes, the most one download plans; nothing was downloaded`,
        );
      }
      // Inside its parent, which is inside the destination: one segment to check, not the depth.
      const entryLocal = localPathInside(local, [entry.name]);
      tree.push({
        remote,
        local: entryLocal,
        type: entry.type,
        size: entry.size,
        mtime: entry.mtime,
      });
      if (entry.type === "dir") await walk(remote, entryLocal, depth + 1);
    }
  };
  await walk(top, localDir, 0);
  return tree;
}

/**
 * Throws WRONG_TYPE unless `top` is a directory. A listing of a file is that
 * file's one entry, which looks like a directory holding one file of its own
 * name: only then is the parent listed to tell which it is.
 */
async function assertDirectory(
  lister: RemoteLister,
  top: string,
  listing: { name: string; type: string }[],
): Promise<void> {
  const base = posix.basename(top);
  if (top === "" || listing.length !== 1 || listing[0]!.name !== base) return;
  if (listing[0]!.type === "dir") return; // A file's own entry is never a directory.
  const parent = posix.dirname(top) === "." ? "" : posix.dirname(top);
  const self = (await lister.list(parent)).find((entry) => entry.name === base);
  if (self?.type !== "dir") {
    throw new FtsError(
      "WRONG_TYPE",
      `${JSON.stringify(top)} is not a directory on the server (download -r takes one); ` +
        "nothing was downloaded",
    );
  }
}

/**
 * Refuses a listing in which one entry to download would take another's
 * temporary file (`.x.fts-partial` beside `x`): the first would land, then
 * be overwritten and renamed away as the second's download, both reported
 * verified. `entries` are those the download makes (files and directories).
 *
 * @example
 * ```ts
 * import { refuseTemporaryNames } from "./plan_tree.ts";
 * refuseTemporaryNames("d", [{ name: "x", type: "file" }, { name: "y", type: "file" }]);
 * ```
 */
export function refuseTemporaryNames(dir: string, entries: { name: string; type: string }[]): void {
  const names = new Set(entries.map((entry) => entry.name));
  for (const entry of entries) {
    if (entry.type !== "file") continue;
    const partial = downloadPartialName(entry.name);
    if (names.has(partial)) {
      throw new FtsError(
        "BAD_NAME",
        `the server listed ${JSON.stringify(partial)} in /${dir} beside ${
          JSON.stringify(entry.name)
        }: the name of the temporary file ${JSON.stringify(entry.name)} downloads into; ` +
          "nothing was downloaded",
      );
    }
  }
}
