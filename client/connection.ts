/**
 * A client's connection to an fts server: one typed method per operation,
 * over one {@link Session}. Every reply is validated; every transfer is
 * verified by the checksum the handshake agreed (XXH3-128 from an fts
 * server, SHA-256 if asked for), computed while streaming. The work is done below:
 * ./session.ts (handshake, requests, replies, failures), ./list.ts,
 * ./upload.ts, ./download.ts, and ./pipeline.ts for many files at once.
 *
 * @module
 */

import type {
  ChecksumName,
  Entry,
  FileDigest,
  HeldPartial,
  Op,
  ReplyFields,
  RequestBody,
  StatEntry,
} from "../protocol/messages.ts";
import {
  commitDownloads,
  download,
  downloadConflicts,
  downloadGroupFull,
  type LandedFiles,
  prepareDownload,
  receiveDownload,
  sendDownload,
} from "./download.ts";
import { ConnectionError, RemoteError } from "./errors.ts";
import { listPartials, MAX_LISTED_PARTIALS } from "./held_partials.ts";
import { remoteDigests } from "./remote_digests.ts";
import { list, MAX_LIST_ENTRIES } from "./list.ts";
import { downloadPartialPath, heldLocally } from "./partial_download.ts";
import { PIPELINE_DEPTH, PIPELINE_REPLY_BYTES, runPipeline } from "./pipeline.ts";
import { type ConnectOptions, SERVER_HELLO_TIMEOUT_MS, Session } from "./session.ts";
import {
  jobOptions,
  type ManyTransferOptions,
  type TransferJob,
  type TransferOptions,
  type TransferResult,
} from "./transfer_options.ts";
import {
  EAGER_UPLOAD_MAX_BYTES,
  prepareUpload,
  receiveUpload,
  sendUpload,
  upload,
} from "./upload.ts";

export {
  ConnectionError,
  type ConnectOptions,
  downloadPartialPath,
  EAGER_UPLOAD_MAX_BYTES,
  heldLocally,
  type ManyTransferOptions,
  MAX_LIST_ENTRIES,
  MAX_LISTED_PARTIALS,
  PIPELINE_DEPTH,
  PIPELINE_REPLY_BYTES,
  RemoteError,
  SERVER_HELLO_TIMEOUT_MS,
  type TransferJob,
  type TransferOptions,
  type TransferResult,
};

/**
 * One session with a server.
 *
 * @example
 * ```ts ignore
 * import { FtsConnection } from "./connection.ts";
 * const connection = await FtsConnection.open("127.0.0.1", 7700, { token: "…" });
 * await connection.upload("notes.txt", "notes.txt");
 * console.log(await connection.list(""));
 * await connection.logout();
 * ```
 */
export class FtsConnection {
  /** The server's software, from its hello, such as `fts/0.1.0`. */
  readonly serverSoftware: string;
  /** The largest file the server accepts. */
  readonly maxFileBytes: number;
  /** The checksum this session's transfers are verified with. */
  readonly checksum: ChecksumName;
  readonly #session: Session;
  /** Local files with a temporary file's name that this session's downloads put in place. */
  readonly #landed: LandedFiles = new Set();

  private constructor(session: Session) {
    this.#session = session;
    this.serverSoftware = session.serverSoftware;
    this.maxFileBytes = session.maxFileBytes;
    this.checksum = session.checksum;
  }

  /** Connects and completes the handshake, presenting `options.token` if the server asks for one. */
  static async open(
    hostname: string,
    port: number,
    options: ConnectOptions = {},
  ): Promise<FtsConnection> {
    return new FtsConnection(await Session.open(hostname, port, options));
  }

  /**
   * Lists a directory ("" for the root), or describes one file. Each entry
   * is checked; a listing that breaks the protocol, or holds more than
   * {@link MAX_LIST_ENTRIES}, closes the session (the rest of it cannot be skipped).
   */
  list(name: string): Promise<Entry[]> {
    return list(this.#session, name);
  }

  /**
   * The content digests of a directory's files ("" for the root), of this
   * session's checksum, by name; the server rereads only what changed since
   * it last hashed it.
   */
  digests(name: string): Promise<Map<string, FileDigest>> {
    return remoteDigests(this.#session, name);
  }

  /**
   * Uploads a local file: exactly its size in bytes, hashed as they are read,
   * then a trailer with the digest of the whole file, which the server checks
   * before publishing. With `resume`, bytes the server kept from a broken
   * upload of the same name and size are hashed here but not sent again.
   */
  upload(
    localPath: string,
    remoteName: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return upload(this.#session, localPath, remoteName, options);
  }

  /**
   * Uploads several files in order on this one connection. Small files are
   * pipelined: each one's data follows its request at once, and up to
   * {@link PIPELINE_DEPTH} wait for their replies while the next ones stream,
   * so many files do not cost a round trip each. After the first failure no
   * further file is sent; the ones in flight are answered, then it is thrown.
   */
  uploadMany(files: TransferJob[], options: ManyTransferOptions = {}): Promise<TransferResult[]> {
    const session = this.#session;
    return runPipeline(session, files, {
      prepare: (file) => prepareUpload(session, file.local, file.remote, jobOptions(file, options)),
      send: (ready) => sendUpload(session, ready),
      receive: (sent) => receiveUpload(session, sent),
      onDone: options.onFileDone,
      onRefused: options.onFileRefused,
    });
  }

  /**
   * Downloads into a hidden partial file beside `localPath`
   * (`.NAME.fts-partial`), verifies its digest against the server's, then
   * renames it onto `localPath`: an interrupted or corrupt download never
   * appears under the real name. An interrupted download leaves the partial
   * file, which `resume` continues from.
   */
  download(
    remoteName: string,
    localPath: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return download(this.#session, this.#landed, remoteName, localPath, options);
  }

  /**
   * Downloads several files in order on this one connection, the requests up
   * to {@link PIPELINE_DEPTH} ahead of the data, so many files do not cost a
   * round trip each. Files that arrive back to back are committed as a group:
   * fsynced together, renamed into place, each directory fsynced once, then
   * reported. After the first failure no further file is asked for;
   * the ones in flight are received, then it is thrown.
   */
  downloadMany(files: TransferJob[], options: ManyTransferOptions = {}): Promise<TransferResult[]> {
    const session = this.#session;
    return runPipeline(session, files, {
      prepare: (file) => prepareDownload(file.remote, file.local, jobOptions(file, options)),
      send: (ready) => sendDownload(session, ready),
      receive: (sent) => receiveDownload(session, this.#landed, sent),
      onDone: options.onFileDone,
      onRefused: options.onFileRefused,
    }, {
      commit: (held) => commitDownloads(this.#landed, held),
      full: downloadGroupFull,
      conflicts: downloadConflicts,
    });
  }

  /**
   * Bytes the server keeps from a broken upload of `name` with `size` bytes,
   * which an upload with `resume` continues from; 0 from a server that
   * cannot tell.
   */
  async heldBytes(name: string, size: number): Promise<number> {
    try {
      return (await this.#call({ op: "partial", name, size })).held;
    } catch (err) {
      if (err instanceof RemoteError && err.code === "UNSUPPORTED") return 0;
      throw err;
    }
  }

  /**
   * The data of broken uploads the server keeps for resumes (name, whole
   * size, bytes held, when last written), sorted by name, then size.
   */
  partials(): Promise<HeldPartial[]> {
    return listPartials(this.#session);
  }

  /**
   * Throws away what the server keeps of broken uploads of `name` (of
   * `size` bytes only, if given), freeing its space; NOT_FOUND if none.
   */
  async dropPartial(name: string, size?: number): Promise<ReplyFields["drop-partial"]> {
    return await this.#call({ op: "drop-partial", name, ...(size === undefined ? {} : { size }) });
  }

  /** Describes a file or directory; a file's description includes its SHA-256, whatever the session's checksum. */
  async stat(name: string): Promise<StatEntry> {
    return (await this.#call({ op: "stat", name })).entry;
  }

  /** Creates a directory (and missing parents). */
  async mkdir(name: string): Promise<void> {
    await this.#call({ op: "mkdir", name });
  }

  /** Renames a file or directory. */
  async rename(name: string, to: string, options: { overwrite?: boolean } = {}): Promise<void> {
    await this.#call({ op: "rename", name, to, overwrite: options.overwrite === true });
  }

  /** Deletes a file or an empty directory. */
  async delete(name: string): Promise<void> {
    await this.#call({ op: "delete", name });
  }

  /** Sets the permission bits (0 to 0o777) of a file or directory. */
  async chmod(name: string, mode: number): Promise<void> {
    await this.#call({ op: "chmod", name, mode });
  }

  /** The served directory's free space and quota. */
  async df(): Promise<ReplyFields["df"]> {
    return await this.#call({ op: "df" });
  }

  /** How long the server keeps a silent session; null when it does not say or take `ping`. */
  get idleTimeoutMs(): number | null {
    return this.#session.idleTimeoutMs;
  }

  /** A request that does nothing but keep the session from being closed as idle. */
  async ping(): Promise<void> {
    await this.#call({ op: "ping" });
  }

  /** Asks the server to shut down. */
  async terminate(): Promise<void> {
    await this.#call({ op: "terminate" });
  }

  /** Ends the session politely, then closes the connection. */
  async logout(): Promise<void> {
    try {
      await this.#call({ op: "logout" });
    } finally {
      this.close();
    }
  }

  /** Closes the connection. */
  close(): void {
    this.#session.close();
  }

  /**
   * Requests sent on this connection for ops that may not be repeated
   * (protocol/ops.ts): a command during which this did not grow can be run
   * again on a new connection after this one dropped.
   */
  get nonIdempotentRequests(): number {
    return this.#session.nonIdempotentRequests;
  }

  /** Whether this side closed the connection: after a failure mid-transfer, a stop, or when done. */
  get closed(): boolean {
    return this.#session.closed;
  }

  /** Sends a request whose only answer is its final reply, and returns that reply's fields. */
  async #call<O extends Op>(body: Extract<RequestBody, { op: O }>): Promise<ReplyFields[O]> {
    return await this.#session.finalReply(await this.#session.request(body), body.op);
  }
}
