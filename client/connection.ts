/**
 * A client's connection to an fts server: the handshake, then one typed
 * method per operation. Every reply is validated; every transfer is verified
 * by SHA-256 computed while streaming.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { basename, dirname } from "node:path";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import { fileSink, fileSource } from "../io/small_file_io.ts";
import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import { pumpExactly } from "../io/pump.ts";
import {
  EAGER_UPLOAD_FEATURE,
  MAX_CONTROL_BYTES,
  MAX_NAME_BYTES,
  MIN_CONTROL_BYTES,
  PROTOCOL_VERSION,
  SOFTWARE_VERSION,
} from "../protocol/limits.ts";
import {
  decodeError,
  decodeHello,
  type Entry,
  field,
  isMtime,
  mtimeField,
  SHA256_HEX,
  sizeField,
} from "../protocol/messages.ts";
import { formatAddress } from "./address.ts";
import { REPLY_TIMEOUT_MS, ReplyDeadline } from "./reply_deadline.ts";
import {
  downloadPartialPath,
  heldLocally,
  looksLikePartialName,
  openPartialDownload,
} from "./partial_download.ts";
import { syncDirectory } from "../io/sync_directory.ts";
import { ConnectionError, openTransport, type TlsTrust } from "./transport.ts";
import { readData } from "../io/read_data.ts";

export { ConnectionError, downloadPartialPath, heldLocally };

/** An error the server replied with; the session goes on. */
export class RemoteError extends FtsError {
  constructor(code: FtsError["code"], message: string) {
    super(code, message);
    this.name = "RemoteError";
  }
}

/** How long the client waits for the server's hello: a TLS server waits for us and says nothing. */
export const SERVER_HELLO_TIMEOUT_MS = 10_000;

/** How to reach and prove ourselves to a server. */
export interface ConnectOptions {
  /** The access token, for servers with authentication. */
  token?: string;
  /** TLS and how to verify the server; plain TCP when absent. */
  tls?: TlsTrust | null;
  /**
   * How long to wait on the server without a byte moving before giving up.
   * @default {REPLY_TIMEOUT_MS}
   */
  replyTimeoutMs?: number;
}

/** What a finished transfer reports. */
export interface TransferResult {
  size: number;
  sha256: string;
  /** Bytes that were already there from an interrupted transfer, and not sent again. */
  resumedFrom: number;
}

/** Options for a transfer. */
export interface TransferOptions {
  /**
   * Replace an existing file at the destination.
   * @default {false}
   */
  overwrite?: boolean;
  /**
   * Continue an interrupted transfer from the bytes already transferred.
   * @default {false}
   */
  resume?: boolean;
  /**
   * Give the destination the source's modification time.
   * @default {false}
   */
  preserveMtime?: boolean;
  /** Called as data moves, with the bytes of the file done so far and its size. */
  onProgress?: (doneBytes: number, totalBytes: number) => void;
}

/** One file of a many-file transfer. */
export interface TransferJob {
  local: string;
  remote: string;
}

/** Options for a many-file transfer: those of each file, and reports per file. */
export interface ManyTransferOptions extends Omit<TransferOptions, "onProgress"> {
  /** Called as data moves, with the file, its bytes done so far and its size. */
  onProgress?: (job: TransferJob, doneBytes: number, totalBytes: number) => void;
  /** Called as each file completes, in order. */
  onFileDone?: (index: number, result: TransferResult) => void;
}

/**
 * Requests a many-file transfer keeps in flight before reading the oldest
 * reply: enough to hide the round trip behind the next files' data, few
 * enough that their replies (a few hundred bytes each) never fill a socket buffer.
 */
export const PIPELINE_DEPTH = 64;

/**
 * Most bytes the replies (or, for downloads, the requests) of a pipeline
 * may take while unread: well inside the smallest socket buffer on either
 * end, so the side that writes never waits for the side that is writing too.
 */
export const PIPELINE_REPLY_BYTES = 32 * 1024;

/**
 * The most a reply about `name` (or a request for it) takes: an error
 * message quotes the name, and JSON escapes each character at most twice.
 */
function replyBytesFor(name: string): number {
  return 4 * utf8.encode(name).length + 512;
}

const utf8 = new TextEncoder();

/**
 * Largest upload whose data is sent without waiting for the server's
 * go-ahead: what a refused upload wastes in sending, at most.
 */
export const EAGER_UPLOAD_MAX_BYTES = 1024 * 1024;

/** An upload whose data and trailer are sent and whose reply is still to come. */
interface SentUpload {
  id: number;
  /** Most bytes its reply can take. */
  replyBytes: number;
  size: number;
  sha256: string;
  /** Bytes the server already held. */
  offset: number;
}

/** A download that was asked for and whose data is still to come. */
interface SentDownload {
  id: number;
  /** Most bytes its request takes (the server reads it only after the data before). */
  replyBytes: number;
  localPath: string;
  partialPath: string;
  /** Bytes of the partial file offered for a resume. */
  held: number;
  options: TransferOptions;
}

/** One session with a server. */
export class FtsConnection {
  /** The server's software, from its hello, such as `fts/0.1.0`. */
  readonly serverSoftware: string;
  /** The largest file the server accepts. */
  readonly maxFileBytes: number;
  readonly #conn: Deno.Conn;
  /** The connection as every read and write goes through it: bounded by the reply deadline. */
  readonly #io: ReplyDeadline;
  readonly #reader: FrameReader;
  /** The largest control frame this session sends. */
  readonly #maxControlBytes: number;
  /** The server takes an upload's data straight after its request. */
  readonly #eagerUploads: boolean;
  #nextId = 1;
  /** Closed by us: after a failure mid-transfer, or when done. */
  #closed = false;
  /**
   * Local files with a temporary file's name that this session's downloads
   * put in place: a later download's temporary file never replaces one.
   */
  readonly #landed = new Set<string>();

  private constructor(
    conn: Deno.Conn,
    io: ReplyDeadline,
    reader: FrameReader,
    serverSoftware: string,
    maxFileBytes: number,
    maxControlBytes: number,
    eagerUploads: boolean,
  ) {
    this.#maxControlBytes = maxControlBytes;
    this.#conn = conn;
    this.#io = io;
    this.#reader = reader;
    this.serverSoftware = serverSoftware;
    this.maxFileBytes = maxFileBytes;
    this.#eagerUploads = eagerUploads;
  }

  /** Connects and completes the handshake, presenting `options.token` if the server asks for one. */
  static async open(
    hostname: string,
    port: number,
    options: ConnectOptions = {},
  ): Promise<FtsConnection> {
    const where = formatAddress(hostname, port);
    const conn = await openTransport(hostname, port, options.tls ?? null);
    const io = new ReplyDeadline(conn, options.replyTimeoutMs ?? REPLY_TIMEOUT_MS);
    const reader = new FrameReader(io, { maxControlBytes: MAX_CONTROL_BYTES });
    let silent = false;
    const helloTimer = setTimeout(() => {
      silent = true;
      conn.close();
    }, SERVER_HELLO_TIMEOUT_MS);
    try {
      const hello = await reader.readMessage().finally(() => clearTimeout(helloTimer));
      if (hello === null) throw new ConnectionError(`${where} closed the connection at once`);
      if (hello.type === "fatal") {
        const { code, message } = decodeError(hello);
        throw new ConnectionError(`${where} refused the connection: ${code}: ${message}`);
      }
      const server = decodeHello(hello);
      const limits = field(hello, "limits", "object");
      const maxFileBytes = sizeField(limits, "maxFileBytes");
      // Requests stay within the smaller of the server's limit and ours.
      const maxControlBytes = Math.min(
        MAX_CONTROL_BYTES,
        Math.max(MIN_CONTROL_BYTES, sizeField(limits, "maxControlBytes")),
      );
      const features = Array.isArray(hello.features) ? hello.features : [];
      if (hello.auth === "token" && options.token === undefined) {
        throw new ConnectionError(
          `${where} needs a token: give --token or FTS_TOKEN (on the server's host, ` +
            "connecting through its port file finds it)",
        );
      }
      await writeAll(
        io,
        encodeFrame({
          type: "hello",
          protocol: PROTOCOL_VERSION,
          software: `fts/${SOFTWARE_VERSION}`,
          limits: { maxControlBytes: MAX_CONTROL_BYTES, maxNameBytes: MAX_NAME_BYTES },
          ...(hello.auth === "token" ? { token: options.token } : {}),
        }),
      );
      if (server.protocol !== PROTOCOL_VERSION) {
        throw new ConnectionError(
          `${where} speaks fts protocol ${server.protocol} (${server.software}); this client speaks ${PROTOCOL_VERSION}`,
        );
      }
      const connection = new FtsConnection(
        conn,
        io,
        reader,
        server.software,
        maxFileBytes,
        maxControlBytes,
        features.includes(EAGER_UPLOAD_FEATURE),
      );
      await connection.#finalReply(0);
      return connection;
    } catch (err) {
      if (silent) {
        throw new ConnectionError(
          `${where} sent no greeting within ${SERVER_HELLO_TIMEOUT_MS / 1000} s; ` +
            "if the server uses TLS, connect with --tls",
        );
      }
      io.stop();
      try {
        conn.close();
      } catch {
        // Already closed.
      }
      if (err instanceof RemoteError) throw new ConnectionError(`${where}: ${err.message}`);
      if (io.expiredMessage !== null) throw new ConnectionError(`${where}: ${io.expiredMessage}`);
      throw asConnectionError(err);
    }
  }

  /**
   * Lists a directory ("" for the root), or describes one file. Each entry
   * is checked ({@link decodeEntry}); a listing that breaks the protocol, or
   * holds more than {@link MAX_LIST_ENTRIES}, closes the session (the rest
   * of it cannot be skipped).
   */
  async list(name: string): Promise<Entry[]> {
    const id = await this.#request({ op: "list", name });
    const entries: Entry[] = [];
    const names = new Set<string>();
    try {
      while (true) {
        const message = await this.#next(id);
        if (message.type !== "entries") {
          this.#checkFinal(message, id);
          return entries;
        }
        const batch = message.entries;
        if (!Array.isArray(batch)) throw new ProtocolError("entries message without entries");
        if (entries.length + batch.length > MAX_LIST_ENTRIES) {
          throw new ConnectionError(
            `the server listed more than ${MAX_LIST_ENTRIES} entries for ${
              JSON.stringify(name || "/")
            }, the most this client holds; the session was closed`,
          );
        }
        for (const value of batch) {
          const entry = decodeEntry(value);
          // One directory cannot hold one name twice: two downloads would land on one file.
          if (names.has(entry.name)) {
            throw new ProtocolError(
              `the server listed ${JSON.stringify(entry.name)} twice in /${name}`,
            );
          }
          names.add(entry.name);
          entries.push(entry);
        }
      }
    } catch (err) {
      if (err instanceof ProtocolError) {
        this.close();
        throw new ConnectionError(
          `protocol error from the server: ${err.message}; the session was closed`,
          { cause: err },
        );
      }
      if (err instanceof ConnectionError) this.close();
      throw err;
    }
  }

  /**
   * Uploads a local file: exactly its size in bytes, hashed as they are read,
   * then a trailer with the SHA-256 of the whole file, which the server checks
   * before publishing. With `resume`, bytes the server kept from a broken
   * upload of the same name and size are hashed here but not sent again.
   */
  async upload(
    localPath: string,
    remoteName: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return await this.#receiveUpload(await this.#sendUpload(localPath, remoteName, options));
  }

  /**
   * Uploads several files in order on this one connection. Small files are
   * pipelined: each one's data follows its request at once, and up to
   * {@link PIPELINE_DEPTH} wait for their replies while the next ones stream,
   * so many files do not cost a round trip each. After the first failure no
   * further file is sent; the ones in flight are answered, then it is thrown.
   */
  async uploadMany(
    files: TransferJob[],
    options: ManyTransferOptions = {},
  ): Promise<TransferResult[]> {
    return await this.#pipeline(
      files,
      (file, drain) =>
        this.#sendUpload(file.local, file.remote, this.#jobOptions(file, options), drain),
      (sent) => this.#receiveUpload(sent),
      options.onFileDone,
    );
  }

  /** Sends an upload's request and, once the server lets it (at once when eager), its data and trailer. */
  async #sendUpload(
    localPath: string,
    remoteName: string,
    options: TransferOptions,
    waitForTurn: () => Promise<void> = () => Promise.resolve(),
  ): Promise<SentUpload> {
    const file = openLocalFile(localPath);
    let streaming = false;
    try {
      const info = file.statSync();
      const size = info.size;
      // Eager data must be within the server's limit: it is read, not refused.
      const eager = this.#eagerUploads && !options.resume && size <= EAGER_UPLOAD_MAX_BYTES &&
        size <= this.maxFileBytes;
      // The go-ahead comes after the replies to everything sent before.
      if (!eager) await waitForTurn();
      const id = await this.#request({
        op: "upload",
        name: remoteName,
        size,
        overwrite: options.overwrite === true,
        resumable: true,
        resume: options.resume === true,
        ...(eager ? { eager: true } : {}),
        ...(options.preserveMtime && info.mtime ? { mtime: info.mtime.getTime() } : {}),
      });
      let offset = 0;
      if (!eager) {
        const goAhead = await this.#next(id);
        if (goAhead.type !== "continue") {
          this.#checkFinal(goAhead, id);
          throw new ProtocolError("server accepted an upload without asking for its data");
        }
        offset = goAhead.offset === undefined ? 0 : sizeField(goAhead, "offset");
        if (offset > size) throw new ProtocolError("server holds more of the file than it has");
      }
      // From here the server counts bytes: a failure before the trailer ends the session.
      streaming = true;
      const hash = createHash("sha256");
      let position = 0;
      await pumpExactly(fileSource(file, size), size, async (chunk) => {
        hash.update(chunk);
        if (position + chunk.length > offset) {
          await this.#sendData(chunk.subarray(Math.max(0, offset - position)));
        }
        position += chunk.length;
        options.onProgress?.(position, size);
      }, () => new FtsError("INTEGRITY", `${localPath} shrank while it was being uploaded`));
      const sha256 = hash.digest("hex");
      await this.#send({ type: "trailer", id, sha256 });
      streaming = false;
      return { id, size, sha256, offset, replyBytes: replyBytesFor(remoteName) };
    } catch (err) {
      if (streaming) {
        // The server is counting bytes we no longer have: the session cannot go on.
        this.close();
        if (err instanceof FtsError && !(err instanceof ProtocolError)) throw err;
        throw asConnectionError(err);
      }
      throw err;
    } finally {
      file.close();
    }
  }

  /** Reads an upload's final reply and checks the server stored what was sent. */
  async #receiveUpload(sent: SentUpload): Promise<TransferResult> {
    const reply = await this.#finalReply(sent.id);
    if (reply.sha256 !== sent.sha256) {
      throw new FtsError(
        "INTEGRITY",
        `server stored SHA-256 ${reply.sha256}, expected ${sent.sha256}`,
      );
    }
    return { size: sent.size, sha256: sent.sha256, resumedFrom: sent.offset };
  }

  /**
   * Runs `send` for each job in order while the replies are read by `receive`
   * in the same order. The server answers requests one at a time and in
   * order, so the replies line up. At most {@link PIPELINE_DEPTH} requests,
   * whose replies take at most {@link PIPELINE_REPLY_BYTES}, wait unread: the
   * replies always fit in the socket's buffers, so neither side can block the
   * other. A `send` that must wait for a message of its own first calls
   * `waitForTurn`, which reads every reply before and stops the run after a
   * failure. After the first failure no further job starts; the ones in
   * flight are answered, then the failure is thrown. A broken session is
   * thrown at once.
   */
  async #pipeline<Sent extends { replyBytes: number }>(
    jobs: TransferJob[],
    send: (job: TransferJob, waitForTurn: () => Promise<void>) => Promise<Sent>,
    receive: (sent: Sent) => Promise<TransferResult>,
    onFileDone?: (index: number, result: TransferResult) => void,
  ): Promise<TransferResult[]> {
    const results: TransferResult[] = [];
    const inFlight: { index: number; sent: Sent }[] = [];
    let replyBytes = 0;
    let failure: unknown = null;
    const receiveOldest = async () => {
      const { index, sent } = inFlight.shift()!;
      replyBytes -= sent.replyBytes;
      try {
        const result = await receive(sent);
        onFileDone?.(index, result);
        results.push(result);
      } catch (err) {
        if (this.#sessionBroken(err)) throw err;
        failure ??= err;
      }
    };
    const drain = async () => {
      while (inFlight.length > 0) await receiveOldest();
    };
    const waitForTurn = async () => {
      await drain();
      if (failure !== null) throw failure;
    };
    try {
      for (const [index, job] of jobs.entries()) {
        if (failure !== null) break;
        try {
          const sent = await send(job, waitForTurn);
          inFlight.push({ index, sent });
          replyBytes += sent.replyBytes;
        } catch (err) {
          if (this.#sessionBroken(err)) throw err;
          // Refused before its data (its reply is read), or stopped by an earlier failure.
          failure ??= err;
          break;
        }
        while (
          inFlight.length >= PIPELINE_DEPTH ||
          (inFlight.length > 0 && replyBytes > PIPELINE_REPLY_BYTES)
        ) {
          await receiveOldest();
        }
      }
      await drain();
    } catch (err) {
      this.close();
      throw err;
    }
    if (failure !== null) throw failure;
    return results;
  }

  /** Whether an error left the session unusable (the peer is out of step or gone). */
  #sessionBroken(err: unknown): boolean {
    return err instanceof ConnectionError || err instanceof ProtocolError || this.#closed;
  }

  #jobOptions(job: TransferJob, options: ManyTransferOptions): TransferOptions {
    return {
      ...options,
      onProgress: options.onProgress && ((done, total) => options.onProgress!(job, done, total)),
    };
  }

  /**
   * Downloads into a hidden partial file beside `localPath`
   * (`.NAME.fts-partial`), verifies its SHA-256 against the server's, then
   * renames it onto `localPath`: an interrupted or corrupt download never
   * appears under the real name. An interrupted download leaves the partial
   * file, which `resume` continues from.
   */
  async download(
    remoteName: string,
    localPath: string,
    options: TransferOptions = {},
  ): Promise<TransferResult> {
    return await this.#receiveDownload(await this.#sendDownload(remoteName, localPath, options));
  }

  /**
   * Downloads several files in order on this one connection, the requests up
   * to {@link PIPELINE_DEPTH} ahead of the data, so many files do not cost a
   * round trip each. After the first failure no further file is asked for;
   * the ones in flight are received, then it is thrown.
   */
  async downloadMany(
    files: TransferJob[],
    options: ManyTransferOptions = {},
  ): Promise<TransferResult[]> {
    return await this.#pipeline(
      files,
      (file) => this.#sendDownload(file.remote, file.local, this.#jobOptions(file, options)),
      (sent) => this.#receiveDownload(sent),
      options.onFileDone,
    );
  }

  /** Checks the local side and asks for the file, from what a partial download holds with `resume`. */
  async #sendDownload(
    remoteName: string,
    localPath: string,
    options: TransferOptions,
  ): Promise<SentDownload> {
    if (!options.overwrite && localExists(localPath)) {
      throw new FtsError(
        "EXISTS",
        `local file ${localPath} already exists (use --force to overwrite)`,
      );
    }
    const partialPath = downloadPartialPath(localPath);
    const held = options.resume ? heldLocally(localPath) : 0;
    const id = await this.#request({ op: "download", name: remoteName, offset: held });
    return { id, localPath, partialPath, held, options, replyBytes: replyBytesFor(remoteName) };
  }

  /** Receives a requested file into its partial file, verifies it, and renames it into place. */
  async #receiveDownload(sent: SentDownload): Promise<TransferResult> {
    const { id, localPath, partialPath, held, options } = sent;
    const header = await this.#next(id);
    if (header.type !== "data") {
      this.#checkFinal(header, id);
      throw new ProtocolError("server answered a download without data");
    }
    const size = sizeField(header, "size");
    const offset = header.offset === undefined ? 0 : sizeField(header, "offset");
    if (offset > size || offset > held) throw new ProtocolError("download offset out of range");
    let file: Deno.FsFile | null = null;
    let writeFailure: unknown = null;
    let dataComplete = false;
    /** The partial file is ours to remove: we made it, or opened the one held for us. */
    let owned = false;
    try {
      const hash = createHash("sha256");
      try {
        if (this.#landed.has(partialPath)) {
          throw new FtsError(
            "DENIED",
            `the temporary file of ${JSON.stringify(localPath)} would be ` +
              `${JSON.stringify(partialPath)}, a file this session downloaded; nothing was written`,
          );
        }
        // Never through a link: a fresh file, or the held one checked to be what was opened.
        file = openPartialDownload(partialPath, offset > 0);
        owned = true;
        // The held bytes count towards the whole file's hash; the rest is appended.
        await hashPrefix(file, offset, hash);
        file.truncateSync(offset);
        file.seekSync(offset, Deno.SeekMode.Start);
      } catch (err) {
        writeFailure = err instanceof FtsError
          ? err
          : new Error(`cannot write ${localPath}: ${(err as Error).message}`, { cause: err });
      }
      let position = offset;
      // A local write failure still reads the rest, so the session stays in step.
      await readData(this.#reader, size - offset, async (chunk) => {
        hash.update(chunk);
        position += chunk.length;
        options.onProgress?.(position, size);
        if (writeFailure !== null || file === null) return;
        try {
          await writeAll(fileSink(file, chunk.length), chunk);
        } catch (err) {
          writeFailure = err;
        }
      }).catch((err) => {
        throw this.#lost(err);
      });
      dataComplete = true;
      const reply = await this.#finalReply(id);
      if (writeFailure !== null) throw writeFailure;
      const sha256 = hash.digest("hex");
      if (reply.sha256 !== sha256) {
        throw new FtsError(
          "INTEGRITY",
          `received data has SHA-256 ${sha256}, the server sent ${reply.sha256}; nothing was saved` +
            (offset > 0 ? " (the partial download was stale: retry without --resume)" : ""),
        );
      }
      if (options.preserveMtime) {
        const mtime = mtimeField(header, "mtime");
        await file!.utime(new Date(), new Date(mtime));
      }
      // Durable before it takes the name, and the name durable after, unless the disk is memory anyway.
      const onDisk = !await isInMemoryFileSystem(dirname(partialPath));
      if (onDisk) await file!.sync();
      file!.close();
      file = null;
      Deno.renameSync(partialPath, localPath);
      if (looksLikePartialName(basename(localPath))) this.#landed.add(localPath);
      if (onDisk) await syncDirectory(dirname(localPath));
      return { size, sha256, resumedFrom: offset };
    } catch (err) {
      file?.close();
      // Data cut off part-way stays for a resume; anything else is removed.
      if (owned && (dataComplete || !(err instanceof ConnectionError))) {
        await Deno.remove(partialPath).catch(() => {});
      }
      throw err;
    }
  }

  /**
   * Bytes the server keeps from a broken upload of `name` with `size` bytes,
   * which an upload with `resume` continues from; 0 from a server that
   * cannot tell.
   */
  async heldBytes(name: string, size: number): Promise<number> {
    try {
      const reply = await this.#finalReply(await this.#request({ op: "partial", name, size }));
      return sizeField(reply, "held");
    } catch (err) {
      if (err instanceof RemoteError && err.code === "UNSUPPORTED") return 0;
      throw err;
    }
  }

  /** Describes a file or directory; a file's description includes its SHA-256. */
  async stat(name: string): Promise<Entry & { mode?: number; sha256?: string }> {
    const reply = await this.#finalReply(await this.#request({ op: "stat", name }));
    const described = field(reply, "entry", "object");
    const entry: Entry & { mode?: number; sha256?: string } = decodeEntry(described);
    if (described.mode !== undefined) entry.mode = sizeField(described, "mode");
    if (described.sha256 !== undefined) {
      const sha256 = field(described, "sha256", "string");
      if (!SHA256_HEX.test(sha256)) {
        throw new ProtocolError("stat reply carries a malformed sha256");
      }
      entry.sha256 = sha256;
    }
    return entry;
  }

  /** Creates a directory (and missing parents). */
  async mkdir(name: string): Promise<void> {
    await this.#finalReply(await this.#request({ op: "mkdir", name }));
  }

  /** Renames a file or directory. */
  async rename(name: string, to: string, options: { overwrite?: boolean } = {}): Promise<void> {
    await this.#finalReply(
      await this.#request({ op: "rename", name, to, overwrite: options.overwrite === true }),
    );
  }

  /** Deletes a file or an empty directory. */
  async delete(name: string): Promise<void> {
    await this.#finalReply(await this.#request({ op: "delete", name }));
  }

  /** Asks the server to shut down. */
  async terminate(): Promise<void> {
    await this.#finalReply(await this.#request({ op: "terminate" }));
  }

  /** Ends the session politely, then closes the connection. */
  async logout(): Promise<void> {
    try {
      await this.#finalReply(await this.#request({ op: "logout" }));
    } finally {
      this.close();
    }
  }

  /** Closes the connection. */
  close(): void {
    this.#closed = true;
    this.#io.stop();
    try {
      this.#conn.close();
    } catch {
      // Already closed.
    }
  }

  async #request(fields: Message): Promise<number> {
    const id = this.#nextId++;
    await this.#send({ type: "request", id, ...fields });
    return id;
  }

  async #sendData(bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(this.#io, bytes);
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /** The error for a failed read or write: the reply deadline's, when it closed the connection. */
  #lost(err: unknown): unknown {
    const expired = this.#io.expiredMessage;
    return expired === null ? asConnectionError(err) : new ConnectionError(expired, { cause: err });
  }

  async #send(message: Message): Promise<void> {
    // Too large a request is refused here, before the server would end the session for it.
    let frame: Uint8Array;
    try {
      frame = encodeFrame(message, this.#maxControlBytes);
    } catch (err) {
      if (err instanceof ProtocolError) throw new FtsError("TOO_LARGE", err.message);
      throw err;
    }
    try {
      await writeAll(this.#io, frame);
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /** Reads the next message for request `id`; a fatal message or a close is a {@link ConnectionError}. */
  async #next(id: number): Promise<Message> {
    let message: Message | null;
    try {
      message = await this.#reader.readMessage();
    } catch (err) {
      throw this.#lost(err);
    }
    if (message === null) throw new ConnectionError("the server closed the connection");
    if (message.type === "fatal") {
      const { code, message: text } = decodeError(message);
      throw new ConnectionError(`the server ended the session: ${code}: ${text}`);
    }
    if (message.id !== id) {
      throw new ConnectionError(`reply for request ${String(message.id)} while waiting for ${id}`);
    }
    return message;
  }

  /** Reads the final reply of `id`: its fields on success, a {@link RemoteError} otherwise. */
  async #finalReply(id: number): Promise<Message> {
    const message = await this.#next(id);
    this.#checkFinal(message, id);
    return message;
  }

  #checkFinal(message: Message, id: number): void {
    if (message.type !== "reply") {
      throw new ConnectionError(`unexpected '${String(message.type)}' message for request ${id}`);
    }
    if (message.ok !== true) {
      const { code, message: text } = decodeError(message);
      throw new RemoteError(code, text);
    }
    if ("sha256" in message && !SHA256_HEX.test(String(message.sha256))) {
      throw new ConnectionError("reply carries a malformed sha256");
    }
  }
}

/**
 * Most entries one listing may hold: a directory far larger than people
 * keep (about 200 MiB of memory here), far smaller than what an endless
 * stream of entries would take before the client crashed.
 */
export const MAX_LIST_ENTRIES = 1_000_000;

const ENTRY_TYPES: ReadonlySet<string> = new Set(["file", "dir", "link", "other"]);

/**
 * Checks one entry a server listed and keeps only its known fields. A name
 * no file system can hold (empty, `.`, `..`, with `/` or NUL) is a protocol
 * violation; other names a server may list (its disk may hold names it
 * would refuse from a client) are kept, and checked where they would become
 * local paths. An unknown type counts as `other`.
 */
function decodeEntry(value: unknown): Entry {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ProtocolError("a listed entry is not an object");
  }
  const message = value as Message;
  const name = field(message, "name", "string");
  if (name === "" || name === "." || name === ".." || name.includes("/") || name.includes("\0")) {
    throw new ProtocolError(`the server listed an impossible name ${JSON.stringify(name)}`);
  }
  const type = field(message, "type", "string");
  const mtime = field(message, "mtime", "number");
  if (!isMtime(mtime)) throw new ProtocolError("a listed mtime is not a time a Date can hold");
  return {
    name,
    type: (ENTRY_TYPES.has(type) ? type : "other") as Entry["type"],
    size: sizeField(message, "size"),
    mtime,
  };
}

function openLocalFile(path: string): Deno.FsFile {
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
  return file;
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

function asConnectionError(err: unknown): unknown {
  if (
    err instanceof ConnectionError || err instanceof FtsError && !(err instanceof ProtocolError)
  ) {
    return err;
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new ConnectionError(`connection lost: ${reason}`, { cause: err });
}

/** Feeds the first `bytes` of `file` to `hash`. */
function hashPrefix(
  file: Deno.FsFile,
  bytes: number,
  hash: ReturnType<typeof createHash>,
): Promise<void> {
  return pumpExactly(
    file,
    bytes,
    (chunk) => void hash.update(chunk),
    () => new Error("partial download shrank while being read"),
  );
}
