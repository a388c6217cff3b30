/**
 * The hidden file a download is received into before it takes its name:
 * what it is called, how much an interrupted download left in it, and how
 * it is opened without ever writing through a link someone put there.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { MAX_SEGMENT_BYTES, PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";

const utf8 = new TextEncoder();

/** What a temporary name adds around the name it is for: `.` before, `.fts-partial` after. */
const PARTIAL_SUFFIX = ".fts-partial";

/**
 * The temporary file's name for a download of `name`: `.NAME.fts-partial`
 * when that fits in one segment ({@link MAX_SEGMENT_BYTES}), otherwise
 * `.fts-partial-` and the first 32 hex digits of NAME's SHA-256, so a name
 * of any allowed length has one, and a resume finds it again.
 *
 * @example
 * ```ts
 * import { downloadPartialName } from "./partial_download.ts";
 * console.assert(downloadPartialName("a.bin") === ".a.bin.fts-partial");
 * console.assert(downloadPartialName("n".repeat(250)).startsWith(".fts-partial-"));
 * ```
 */
export function downloadPartialName(name: string): string {
  const plain = `.${name}${PARTIAL_SUFFIX}`;
  if (utf8.encode(plain).length <= MAX_SEGMENT_BYTES) return plain;
  return `${PARTIAL_SUFFIX}-${createHash("sha256").update(name).digest("hex").slice(0, 32)}`;
}

/** Reports whether `name` has the shape of a temporary name {@link downloadPartialName} gives. */
export function looksLikePartialName(name: string): boolean {
  return name.startsWith(".") && name.endsWith(PARTIAL_SUFFIX) ||
    /^\.fts-partial-[0-9a-f]{32}$/.test(name);
}

/** The temporary file a download of `localPath` goes to: beside it, never under its name. */
export function downloadPartialPath(localPath: string): string {
  return join(dirname(localPath), downloadPartialName(basename(localPath)));
}

/**
 * Bytes an interrupted download of `localPath` left in its temporary file
 * for a resume: 0 when there is none, when it is not a regular file (a link
 * is never followed), when it has other names (a hard link: writing on would
 * change their file), or when it is older than {@link PARTIAL_EXPIRY_MS}
 * (the download then starts over, under a new inode).
 */
export function heldLocally(localPath: string): number {
  try {
    const info = Deno.lstatSync(downloadPartialPath(localPath));
    const age = Date.now() - (info.mtime?.getTime() ?? 0);
    // A file with another name too (a hard link) is not ours to continue: it is started afresh.
    return info.isFile && info.nlink === 1 && age <= PARTIAL_EXPIRY_MS ? info.size : 0;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}

/**
 * Opens the temporary file `partialPath` for a download, never through a
 * link. To continue from held bytes (`resume`), it must be a regular file
 * with no other name (not a hard link), and the handle opened must be that file (same device and inode as the
 * lstat: a link swapped in between is refused). To start afresh, a stale
 * regular file there is removed and the file made with `createNew`, which
 * refuses whatever else appears at the name. A link or anything but a
 * regular file there is refused with `DENIED`, and left as it is.
 */
export function openPartialDownload(partialPath: string, resume: boolean): Deno.FsFile {
  const found = lstatOrNull(partialPath);
  if (found !== null && !found.isFile) throw notOurs(partialPath, found);
  if (resume) {
    if (found === null) {
      throw new FtsError("NOT_FOUND", `the partial download ${quote(partialPath)} is gone`);
    }
    const file = Deno.openSync(partialPath, { read: true, write: true });
    const opened = file.statSync();
    if (
      !opened.isFile || opened.dev !== found.dev || opened.ino !== found.ino ||
      opened.nlink !== 1
    ) {
      file.close();
      throw new FtsError(
        "DENIED",
        `the partial download ${
          quote(partialPath)
        } changed while it was opened; nothing was written`,
      );
    }
    return file;
  }
  if (found !== null) Deno.removeSync(partialPath);
  try {
    return Deno.openSync(partialPath, { read: true, write: true, createNew: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    throw new FtsError(
      "DENIED",
      `something appeared at the temporary file ${quote(partialPath)} while it was made; ` +
        "nothing was written",
    );
  }
}

function notOurs(partialPath: string, found: Deno.FileInfo): FtsError {
  const what = found.isSymlink
    ? "a symbolic link"
    : found.isDirectory
    ? "a directory"
    : "not a file";
  return new FtsError(
    "DENIED",
    `the temporary file of this download, ${quote(partialPath)}, is ${what}; ` +
      "a download never writes through one (remove it and retry); nothing was written",
  );
}

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

function quote(path: string): string {
  return JSON.stringify(path);
}
