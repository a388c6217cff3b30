/**
 * One file's download: local checks, the request (from what a partial
 * download holds, with `resume`), the data header, the data received into
 * the temporary file while hashed, the reply, whose digest must be ours,
 * then the publish under the real name (./download_target.ts), together
 * with the downloads received back to back with it (io/commit_group.ts).
 *
 * @module
 */

import { basename } from "node:path";
import { commitGroup, MAX_GROUP_BYTES, MAX_GROUP_FILES } from "../io/commit_group.ts";
import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { MAX_PERMISSION_BITS } from "../protocol/limits.ts";
import type { DataHeader } from "../protocol/messages.ts";
import { DownloadTarget } from "./download_target.ts";
import { downloadPartialPath, heldLocally, looksLikePartialName } from "./partial_download.ts";
import { type JobOutcome, type ReadyJob, replyBytesFor, type SentJob } from "./pipeline.ts";
import type { Session } from "./session.ts";
import type { TransferOptions, TransferResult } from "./transfer_options.ts";

/**
 * Local files with a temporary file's name that a session's downloads put
 * in place: a later download's temporary file never replaces one.
 */
export type LandedFiles = Set<string>;

/** A download checked on this side, ready to be asked for. */
export interface ReadyDownload extends ReadyJob {
  /** The remote name. */
  readonly remoteName: string;
  /** Where it lands. */
  readonly localPath: string;
  /** Bytes of the partial file offered for a resume. */
  readonly held: number;
  /** How it is downloaded. */
  readonly options: TransferOptions;
}

/** A download that was asked for and whose data is still to come. */
export interface SentDownload extends SentJob {
  /** The request's id. */
  readonly id: number;
  /** Where it lands. */
  readonly localPath: string;
  /** Bytes of the partial file offered for a resume. */
  readonly held: number;
  /** How it is downloaded. */
  readonly options: TransferOptions;
}

/**
 * A download whose data arrived and was verified: its file is still to be
 * committed ({@link commitDownloads}).
 */
export interface ReceivedDownload {
  /** The temporary file, verified. */
  readonly target: DownloadTarget;
  /** What the download reports once committed. */
  readonly result: TransferResult;
  /** The mtime to give the file (`-p`), or none. */
  readonly mtime: number | undefined;
  /** The permission bits to give the file (`-p`), or none. */
  readonly mode?: number;
  /** How it was asked for: what the local file must still be when it is replaced. */
  readonly options: TransferOptions;
}

/**
 * Downloads into a hidden partial file beside `localPath`
 * (`.NAME.fts-partial`), verifies its digest against the server's, then
 * renames it onto `localPath`: an interrupted or corrupt download never
 * appears under the real name. An interrupted download leaves the partial
 * file, which `resume` continues from.
 *
 * @example
 * ```ts ignore
 * import { download } from "./download.ts";
 * import { Session } from "./session.ts";
 * const session = await Session.open("127.0.0.1", 7700);
 * await download(session, new Set(), "notes.txt", "notes.txt", { overwrite: true });
 * ```
 */
export async function download(
  session: Session,
  landed: LandedFiles,
  remoteName: string,
  localPath: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  const ready = prepareDownload(remoteName, localPath, options);
  const received = await receiveDownload(session, landed, await sendDownload(session, ready));
  const [outcome] = await commitDownloads(landed, [received]);
  if (!outcome!.ok) throw outcome!.error;
  return outcome!.result;
}

/** Checks the local side: `EXISTS` unless overwriting; with `resume`, what the partial file holds. */
export function prepareDownload(
  remoteName: string,
  localPath: string,
  options: TransferOptions,
): ReadyDownload {
  const here = options.overwrite ? null : lstatOrNullHere(localPath);
  if (here?.isDirectory) {
    // A directory of the remote name's here: most likely the remote one is a directory too.
    throw new FtsError("WRONG_TYPE", `${localPath} is a directory here: a file cannot land on it`);
  }
  if (here !== null) {
    throw new FtsError(
      "EXISTS",
      `local file ${localPath} already exists (use --force to overwrite)`,
    );
  }
  const held = options.resume ? heldLocally(localPath) : 0;
  return { remoteName, localPath, held, options, mustWait: false, [Symbol.dispose]: () => {} };
}

/** Asks for the file, from the bytes held locally. */
export async function sendDownload(session: Session, ready: ReadyDownload): Promise<SentDownload> {
  const { remoteName, localPath, held, options } = ready;
  const id = await session.request({ op: "download", name: remoteName, offset: held });
  return { id, localPath, held, options, replyBytes: replyBytesFor(remoteName) };
}

/**
 * Receives a requested file into its partial file and verifies it; it takes
 * its name when committed ({@link commitDownloads}).
 */
export async function receiveDownload(
  session: Session,
  landed: LandedFiles,
  sent: SentDownload,
): Promise<ReceivedDownload> {
  const { id, localPath, options } = sent;
  const { size, offset, mtime, mode } = await dataHeader(session, sent);
  const partialPath = downloadPartialPath(localPath);
  const target = await DownloadTarget.open(
    localPath,
    partialPath,
    { offset, size },
    session.checksum,
    landedRefusal(landed, localPath),
  );
  try {
    const { writeFailure } = await session.receiveData(size - offset, target.sink, target.hash, {
      onProgress: (received) => options.onProgress?.(offset + received, size),
    });
    target.endOfData(writeFailure);
    const digest = await target.verified((await session.finalReply(id, "download")).digest);
    const keptMtime = options.preserveMtime ? mtimeToKeep(mtime) : undefined;
    const keptMode = options.preserveMtime && mode !== undefined
      ? mode & MAX_PERMISSION_BITS
      : undefined;
    return {
      target,
      result: { size, digest, resumedFrom: offset },
      mtime: keptMtime,
      mode: keptMode,
      options,
    };
  } catch (err) {
    await target.discard(err);
    throw err;
  }
}

/**
 * Commits received downloads as one group (io/commit_group.ts): their data
 * fsynced together, each renamed into place in order, each directory
 * fsynced once. Returns each one's result, or the error that stopped it
 * (its temporary file then removed), in order.
 */
export async function commitDownloads(
  landed: LandedFiles,
  received: readonly ReceivedDownload[],
): Promise<JobOutcome<TransferResult>[]> {
  const outcomes = await commitGroup(
    received.map(({ target, mtime, mode, options }) =>
      target.commitMember(mtime, mode, {
        beforePlace: () => assertLocalAsExpected(target.localPath, options),
        onPlaced: () => {
          if (looksLikePartialName(basename(target.localPath))) landed.add(target.localPath);
        },
      })
    ),
  );
  return await Promise.all(received.map(async ({ target, result }, index) => {
    const outcome = outcomes[index]!;
    if (outcome.ok) return { ok: true, result };
    await target.discard(outcome.error);
    return { ok: false, error: outcome.error };
  }));
}

/**
 * Whether `sent` must wait for `held` to be committed: a local file one of
 * them takes (its name or its temporary file) is one `sent` takes.
 */
export function downloadConflicts(sent: SentDownload, held: readonly ReceivedDownload[]): boolean {
  const taken = new Set([sent.localPath, downloadPartialPath(sent.localPath)]);
  return held.some(({ target }) => taken.has(target.localPath) || taken.has(target.partialPath));
}

/** Whether a group of received downloads is full: {@link MAX_GROUP_FILES}, or {@link MAX_GROUP_BYTES} of data. */
export function downloadGroupFull(held: readonly ReceivedDownload[]): boolean {
  const bytes = held.reduce((sum, { result }) => sum + result.size, 0);
  return held.length >= MAX_GROUP_FILES || bytes >= MAX_GROUP_BYTES;
}

/** Reads the `data` header that starts a download's data: its size, where it starts, its mtime. */
async function dataHeader(session: Session, sent: SentDownload): Promise<DataHeader> {
  const message = await session.next(sent.id);
  if (message.type !== "data") {
    session.checkFinal(message, sent.id, "download");
    throw session.outOfStep("server answered a download without data");
  }
  if (message.offset > sent.held) throw session.outOfStep("download offset out of range");
  return message;
}

/**
 * The mtime a download keeps with `-p`: the data header's, which the
 * protocol leaves optional and fts always sends; without it, nothing is saved.
 */
function mtimeToKeep(mtime: number | undefined): number {
  if (mtime === undefined) throw new ProtocolError("the server's data header has no mtime to keep");
  return mtime;
}

/** Why nothing may be written for `localPath`: its temporary file is a file this session landed. */
function landedRefusal(landed: LandedFiles, localPath: string): FtsError | null {
  const partialPath = downloadPartialPath(localPath);
  if (!landed.has(partialPath)) return null;
  return new FtsError(
    "DENIED",
    `the temporary file of ${JSON.stringify(localPath)} would be ` +
      `${JSON.stringify(partialPath)}, a file this session downloaded; nothing was written`,
  );
}

/**
 * Checks, just before a download takes its name, that the local file is
 * still what the transfer was asked to replace: absent unless overwriting
 * (EXISTS), and of `ifUnchanged`'s size and mtime when given (CHANGED).
 * Another program may still write between this look and the rename: the
 * window is one system call wide, not the whole transfer's.
 */
function assertLocalAsExpected(localPath: string, options: TransferOptions): void {
  const expected = options.ifUnchanged;
  if (expected === undefined) {
    if (!options.overwrite && localExists(localPath)) {
      throw new FtsError(
        "EXISTS",
        `local file ${localPath} appeared meanwhile; it was left as it is`,
      );
    }
    return;
  }
  let found: Deno.FileInfo | null = null;
  try {
    found = Deno.lstatSync(localPath);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const mtime = found?.mtime?.getTime() ?? 0;
  if (found?.isFile && found.size === expected.size && mtime === expected.mtime) return;
  throw new FtsError(
    "CHANGED",
    `local file ${localPath} changed since it was looked at (${
      found === null ? "it was removed" : `now ${found.size} bytes`
    }); it was left as it is`,
  );
}

function localExists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** What is at the local `path` (a link itself, not what it leads to), or null. */
function lstatOrNullHere(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}
