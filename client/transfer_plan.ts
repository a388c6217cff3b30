/**
 * Where each file of a `put` or `get` lands, by the rules of scp and sftp:
 * a target ending in `/`, a target that is a directory already, or the
 * target of several sources is a directory to put each source in (files and
 * trees alike: `put -r tree docs/` writes `docs/tree/…`); otherwise the
 * target is the new name (`put -r tree docs`, with no `docs`, writes
 * `docs/…`). A missing directory target is made, never taken as a file name.
 *
 * @module
 */

import { basename, join, relative } from "node:path";
import { posix } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import type { Entry } from "../protocol/messages.ts";
import { RemoteError } from "./errors.ts";
import { globToRegExp, isGlob, splitPattern } from "./glob.ts";
import { expandLocalGlob, walkLocal } from "./local_files.ts";
import { localPathInside } from "./local_target.ts";
import { planDownloadTree, type PlannedFile, refuseTemporaryNames } from "./plan_tree.ts";
import { listedName, remoteBase, resolveRemote } from "./remote_path.ts";

/** The files of a transfer, and the directories to make before them, parents first. */
export interface TransferPlan {
  /** Every file to move, in order. */
  files: PlannedFile[];
  /**
   * Directories to make first (remote ones for an upload; for a download the
   * local directories named on the command line, made with their parents).
   */
  directories: string[];
  /**
   * A download's local directories inside the trees it fetches, parents
   * first: each made on its own, so that one taken meanwhile (by a link) is
   * refused rather than written through.
   */
  treeDirectories: string[];
  /** How many sources were trees (`-r` of a directory). */
  trees: number;
}

/** What lists the server: a connection. */
export interface RemoteListing {
  /** The entries of a directory, or the one entry of a file. */
  list(name: string): Promise<Entry[]>;
}

/**
 * Whether the remote `name` is a directory now, found in its parent's
 * listing (a `stat` of a file would hash it). False when it is missing, or
 * when the server will not say (the transfer itself then reports why).
 */
export async function remoteIsDirectory(server: RemoteListing, name: string): Promise<boolean> {
  if (name === "") return true;
  const parent = posix.dirname(name);
  try {
    const entries = await server.list(parent === "." ? "" : parent);
    return entries.some((entry) => entry.name === remoteBase(name) && entry.type === "dir");
  } catch (err) {
    if (err instanceof RemoteError) return false;
    throw err;
  }
}

/** Whether the local `path` is a directory now (false when missing). */
export async function localIsDirectory(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isDirectory;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** What a transfer command was given: its sources and target, as typed. */
export interface TransferPlanOptions {
  /** The remote directory remote names are relative to ("" is the top). */
  cwd: string;
  /** The files, patterns or (with `recursive`) trees to move. */
  sources: string[];
  /** Where they go, as typed; undefined for the remote directory (upload) or here (download). */
  target: string | undefined;
  /** `-r`: directories are trees to move. */
  recursive: boolean;
}

/**
 * Plans an upload of `sources` (local files, patterns, or with `recursive`
 * trees) to `target` (a remote name as typed, or undefined: the remote
 * directory), relative to the remote directory `cwd`.
 */
export async function planUpload(
  server: RemoteListing,
  options: TransferPlanOptions,
): Promise<TransferPlan> {
  const { cwd, sources, target, recursive } = options;
  const remote = resolveRemote(cwd, target ?? "");
  const inside = target === undefined || target.endsWith("/") || sources.length > 1 ||
    await remoteIsDirectory(server, remote);
  const plan: TransferPlan = { files: [], directories: [], treeDirectories: [], trees: 0 };
  if (sources.length > 1 || (target !== undefined && target.endsWith("/"))) {
    plan.directories.push(remote);
  }
  for (const source of sources) {
    if (isGlob(source)) {
      const matches = await expandLocalGlob(source);
      if (matches.length === 0) throw new FtsError("NOT_FOUND", `no local files match ${source}`);
      for (const match of matches) {
        plan.files.push({
          local: match.path,
          remote: posix.join(remote, basename(match.path)),
          size: match.size,
        });
      }
      continue;
    }
    const name = inside ? posix.join(remote, basename(source)) : remote;
    if (recursive && await localIsDirectory(source)) {
      plan.trees += 1;
      plan.directories.push(name);
      for await (const entry of walkLocal(source)) {
        const rel = relative(source, entry.path).split("\\").join("/");
        if (entry.isDirectory) plan.directories.push(posix.join(name, rel));
        else {plan.files.push({
            local: entry.path,
            remote: posix.join(name, rel),
            size: entry.size,
          });}
      }
    } else {
      if (recursive === false && await localIsDirectory(source)) {
        throw new FtsError("WRONG_TYPE", `${source} is a directory (put -r sends a tree)`);
      }
      // Checked here, before any directory is made for it on the server.
      plan.files.push({ local: source, remote: name, size: await localFileSize(source) });
    }
  }
  return plan;
}

/** The size of the local file an upload sends; NOT_FOUND or WRONG_TYPE when there is none to send. */
async function localFileSize(path: string): Promise<number> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new FtsError("NOT_FOUND", `no such local file: ${path}`);
    }
    throw err;
  }
  if (!info.isFile) throw new FtsError("WRONG_TYPE", `${path} is not a regular file`);
  return info.size;
}

/**
 * Plans a download of `sources` (remote names, patterns, or with
 * `recursive` trees, relative to `cwd`) to the local `target` (undefined:
 * here). Every name is checked before anything is written.
 */
export async function planDownload(
  server: RemoteListing,
  options: TransferPlanOptions,
): Promise<TransferPlan> {
  const { cwd, sources, target, recursive } = options;
  const local = target ?? ".";
  const inside = target === undefined || target.endsWith("/") || sources.length > 1 ||
    await localIsDirectory(local);
  const plan: TransferPlan = { files: [], directories: [], treeDirectories: [], trees: 0 };
  if (inside) plan.directories.push(local);
  for (const source of sources) {
    if (isGlob(source)) {
      const { dir, last } = splitPattern(source);
      const remoteDir = resolveRemote(cwd, dir);
      const pattern = globToRegExp(last);
      // Every match is checked before anything is written: a bad name stops the whole download.
      const matches = (await server.list(remoteDir))
        .filter((entry) => entry.type === "file" && pattern.test(entry.name));
      refuseTemporaryNames(remoteDir, matches);
      if (matches.length === 0) throw new FtsError("NOT_FOUND", `no remote files match ${source}`);
      if (!inside) plan.directories.push(local);
      for (const entry of matches) {
        plan.files.push({
          remote: listedName(remoteDir, entry.name),
          local: localPathInside(local, [entry.name]),
          size: entry.size,
        });
      }
      continue;
    }
    const remote = resolveRemote(cwd, source);
    const base = remoteBase(remote);
    // With -r every remote source is a tree: a file's listing (its one entry) cannot be told from
    // a directory holding one file of its own name, so the walk refuses a file (WRONG_TYPE).
    if (recursive) {
      plan.trees += 1;
      const localDir = !inside ? local : base === "" ? local : localPathInside(local, [base]);
      const tree = await planDownloadTree(server, remote, localDir);
      plan.directories.push(localDir);
      plan.treeDirectories.push(...tree.missing);
      plan.files.push(...tree.files);
    } else {
      plan.files.push({ remote, local: inside ? localPathInside(local, [base]) : local, size: -1 });
    }
  }
  return plan;
}

/**
 * Makes the local directories of a download's plan: those named on the
 * command line with their parents, then those inside its trees one level at
 * a time, never through a link (mkdir refuses any name taken).
 */
export async function makeLocalDirectories(plan: TransferPlan): Promise<void> {
  for (const dir of new Set(plan.directories.map((dir) => join(dir)))) {
    await Deno.mkdir(dir, { recursive: true });
  }
  for (const dir of plan.treeDirectories) await Deno.mkdir(dir);
}
