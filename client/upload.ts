/**
 * One file's upload: the request, the server's go-ahead (none when eager),
 * the file's bytes from where the server stands, hashed as they are read,
 * the trailer with the whole file's digest (the session's checksum), then
 * the reply, whose digest must be ours.
 *
 * @module
 */

import { FtsError } from "../protocol/errors.ts";
import { IF_UNCHANGED_FEATURE, MAX_PERMISSION_BITS } from "../protocol/limits.ts";
import { CHECKSUM_TITLES, type Digest, type UploadRequest } from "../protocol/messages.ts";
import { createTransferHash } from "../io/hash_threads.ts";
import { sendFileFrom } from "../io/verified_transfer.ts";
import { type ReadyJob, replyBytesFor, type SentJob } from "./pipeline.ts";
import type { Session } from "./session.ts";
import type { TransferOptions, TransferResult } from "./transfer_options.ts";

/**
 * Largest upload whose data is sent without waiting for the server's
 * go-ahead: what a refused upload wastes in sending, at most.
 */
export const EAGER_UPLOAD_MAX_BYTES = 1024 * 1024;

/** A local file opened for upload; disposing of it closes the file. */
export interface ReadyUpload extends ReadyJob {
  /** The file, open for reading. */
  readonly file: Deno.FsFile;
  /** Its size when opened: exactly this many bytes are sent. */
  readonly size: number;
  /** Its modification time, when the file system keeps one. */
  readonly mtime: Date | null;
  /** The local file's permission bits, kept by `-p`; null where the system has none. */
  readonly mode: number | null;
  /** Its data follows the request at once, without waiting for `continue`. */
  readonly eager: boolean;
  /** The local path, for messages. */
  readonly localPath: string;
  /** The name it is uploaded as. */
  readonly remoteName: string;
  /** How it is uploaded. */
  readonly options: TransferOptions;
}

/** An upload whose data and trailer are sent and whose reply is still to come. */
export interface SentUpload extends SentJob {
  /** The request's id. */
  readonly id: number;
  /** Bytes of the whole file. */
  readonly size: number;
  /** The digest of the whole file, as sent in the trailer. */
  readonly digest: Digest;
  /** Bytes the server already held, and were not sent. */
  readonly offset: number;
}

/**
 * Uploads a local file: exactly its size in bytes, hashed as they are read,
 * then a trailer with the digest of the whole file, which the server checks
 * before publishing. With `resume`, bytes the server kept from a broken
 * upload of the same name and size are hashed here but not sent again.
 *
 * @example
 * ```ts ignore
 * import { Session } from "./session.ts";
 * import { upload } from "./upload.ts";
 * const session = await Session.open("127.0.0.1", 7700);
 * const { digest } = await upload(session, "notes.txt", "notes.txt", { overwrite: true });
 * ```
 */
export async function upload(
  session: Session,
  localPath: string,
  remoteName: string,
  options: TransferOptions = {},
): Promise<TransferResult> {
  let sent: SentUpload;
  {
    // The file is closed once its data is sent, before the reply is awaited.
    using ready = prepareUpload(session, localPath, remoteName, options);
    sent = await sendUpload(session, ready);
  }
  return await receiveUpload(session, sent);
}

/**
 * Opens a local file for upload and decides whether its data goes eagerly:
 * when the server takes eager uploads, no resume is asked for, and the file
 * is within {@link EAGER_UPLOAD_MAX_BYTES} and the server's limit (eager data
 * is read through, never refused before it arrives). Otherwise the upload
 * must wait for the replies before it, since it reads a go-ahead of its own.
 */
export function prepareUpload(
  session: Session,
  localPath: string,
  remoteName: string,
  options: TransferOptions,
): ReadyUpload {
  if (options.ifUnchanged !== undefined && !session.ifUnchangedUploads) {
    throw new FtsError(
      "UNSUPPORTED",
      `the server cannot check that ${remoteName} is unchanged before replacing it ` +
        `(its hello has no '${IF_UNCHANGED_FEATURE}'); nothing was sent`,
    );
  }
  const { file, info } = openLocalFile(localPath);
  const size = info.size;
  const eager = session.eagerUploads && !options.resume && size <= EAGER_UPLOAD_MAX_BYTES &&
    size <= session.maxFileBytes;
  return {
    file,
    size,
    mtime: info.mtime,
    mode: info.mode === null ? null : info.mode & MAX_PERMISSION_BITS,
    eager,
    mustWait: !eager,
    localPath,
    remoteName,
    options,
    [Symbol.dispose]: () => file.close(),
  };
}

/** Sends an upload's request and, once the server lets it (at once when eager), its data and trailer. */
export async function sendUpload(session: Session, ready: ReadyUpload): Promise<SentUpload> {
  const { file, size, options } = ready;
  const id = await session.request(uploadRequest(ready));
  const offset = ready.eager ? 0 : await goAhead(session, id, size);
  // From here the server counts bytes: a failure before the trailer ends the session.
  try {
    using hash = await createTransferHash(session.checksum, size);
    const sink = (chunk: Uint8Array) => session.sendData(chunk);
    const { digest } = await sendFileFrom(file, size, offset, sink, hash, {
      onProgress: options.onProgress,
      onShrink: () =>
        new FtsError("INTEGRITY", `${ready.localPath} shrank while it was being uploaded`),
    });
    await session.send({ type: "trailer", id, digest });
    return { id, size, digest, offset, replyBytes: replyBytesFor(ready.remoteName) };
  } catch (err) {
    throw session.abandon(err);
  }
}

/** Reads an upload's final reply and checks the server stored what was sent. */
export async function receiveUpload(session: Session, sent: SentUpload): Promise<TransferResult> {
  const stored = await session.finalReply(sent.id, "upload");
  if (stored.digest.hex !== sent.digest.hex) {
    throw new FtsError(
      "INTEGRITY",
      `server stored ${CHECKSUM_TITLES[sent.digest.algorithm]} ${stored.digest.hex}, ` +
        `expected ${sent.digest.hex}`,
    );
  }
  return { size: sent.size, digest: sent.digest, resumedFrom: sent.offset };
}

/** The upload request for `ready`: `eager`, `mtime` and `ifUnchanged` only when they apply. */
function uploadRequest(ready: ReadyUpload): Omit<UploadRequest, "type" | "id"> {
  const { options } = ready;
  const request: Omit<UploadRequest, "type" | "id"> = {
    op: "upload",
    name: ready.remoteName,
    size: ready.size,
    overwrite: options.overwrite === true || options.ifUnchanged !== undefined,
    resumable: true,
    resume: options.resume === true,
  };
  if (ready.eager) request.eager = true;
  if (options.ifUnchanged !== undefined) request.ifUnchanged = options.ifUnchanged;
  if (options.preserveMtime && ready.mtime) request.mtime = ready.mtime.getTime();
  if (options.preserveMtime && ready.mode !== null) request.mode = ready.mode;
  return request;
}

/** Waits for the server's `continue` and returns the bytes it already holds. */
async function goAhead(session: Session, id: number, size: number): Promise<number> {
  const message = await session.next(id);
  if (message.type !== "continue") {
    session.checkFinal(message, id, "upload");
    throw session.outOfStep("server accepted an upload without asking for its data");
  }
  if (message.offset > size) throw session.outOfStep("server holds more of the file than it has");
  return message.offset;
}

/** Opens a local regular file for reading, with its stat: `NOT_FOUND` or `WRONG_TYPE` otherwise. */
function openLocalFile(path: string): { file: Deno.FsFile; info: Deno.FileInfo } {
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new FtsError("NOT_FOUND", `no such local file: ${path}`);
    }
    throw err;
  }
  const info = file.statSync();
  if (!info.isFile) {
    file.close();
    throw new FtsError("WRONG_TYPE", `${path} is not a regular file`);
  }
  return { file, info };
}
