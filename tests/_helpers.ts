/**
 * Test helpers: start the real server process, run the real client process,
 * and open raw connections for hostile input. Loopback only; every wait is
 * bounded.
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { createXXHash128 } from "hash-wasm";
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import { PROTOCOL_VERSION } from "../protocol/limits.ts";
import { ftsTaskFlags } from "../scripts/compile.ts";

/** The project's top directory. */
export const PROJECT_DIR = new URL("..", import.meta.url).pathname;
const MAIN = join(PROJECT_DIR, "main.ts");

/** The permission flags of the `fts` task in deno.json: tests run fts exactly as users do. */
export const FTS_RUN_FLAGS: string[] = ftsTaskFlags();

/** How long a test waits for the server to say it is listening. */
const SERVER_START_TIMEOUT_MS = 30_000;

/** A running `fts serve` process. */
export interface RunningServer {
  /** A temporary directory holding `root/`, `port` and whatever the test adds. */
  dir: string;
  /** The server's XDG_STATE_HOME (its state in `fts/`), a temporary directory beside `dir`. */
  stateHome: string;
  root: string;
  portFile: string;
  port: number;
  /** The token in the port file's companion (null with `--no-auth`). */
  token: string | null;
  process: Deno.ChildProcess;
  /** Everything the server wrote to stdout so far. */
  stdout(): string;
  /** Everything the server wrote to stderr so far (its log). */
  log(): string;
  /** Sends SIGTERM if still running and waits for exit; returns the exit code. */
  stop(): Promise<number>;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number>;
}

/** Options for {@link startServer}. */
export interface ServerOptions {
  /**
   * Serve with authentication on (fts's default, on 127.0.0.1 here); the
   * token a local client uses is then in `RunningServer.token`. Otherwise the
   * server runs with `--no-auth`.
   * @default {false}
   */
  auth?: boolean;
  /** Extra environment variables for the server process. */
  env?: Record<string, string>;
  /**
   * Serve in this directory (its `root/` and `port`) instead of a new one:
   * a server started again where one was killed. {@link RunningServer.stop}
   * still removes it.
   */
  dir?: string;
  /**
   * Serve this root (another server's, say: several servers on one root),
   * with the port files in a new directory of its own. {@link RunningServer.stop}
   * leaves the root alone.
   */
  root?: string;
  /**
   * Serve this bucket (`s3://BUCKET[/PREFIX]`, `--store`) instead of a
   * directory; the endpoint and credentials go in `env`.
   */
  store?: string;
}

/** Starts `fts serve` in a new temporary directory and waits for its "serving" line. */
export async function startServer(
  extraArgs: string[] = [],
  options: ServerOptions = {},
): Promise<RunningServer> {
  const authArgs = options.auth ? ["--host", "127.0.0.1"] : ["--no-auth"];
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "fts-test-" });
  // Its own state (kept token, certificate, last port) unless the test shares one: beside the
  // directory, so that what the tests find written next to the root is the root's doing.
  const stateHome = await Deno.makeTempDir({ prefix: "fts-test-state-" });
  const root = options.root ?? join(dir, "root");
  const portFile = join(dir, "port");
  const process = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...FTS_RUN_FLAGS,
      MAIN,
      "serve",
      ...(options.store === undefined ? ["--root", root] : ["--store", options.store]),
      "--port-file",
      portFile,
      ...authArgs,
      ...extraArgs,
    ],
    cwd: dir,
    env: { XDG_STATE_HOME: stateHome, ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderrText = "";
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of process.stderr) stderrText += decoder.decode(chunk, { stream: true });
  })();
  const stdoutReader = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdoutText = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`server did not start: ${stdoutText} ${stderrText}`)),
      SERVER_START_TIMEOUT_MS,
    );
  });
  const port = await Promise.race([
    (async () => {
      while (true) {
        const { value, done } = await stdoutReader.read();
        if (done) throw new Error(`server exited before listening: ${stderrText}`);
        stdoutText += value;
        const match = /fts: serving .* on .*:(\d+)\n/.exec(stdoutText);
        if (match) return Number(match[1]);
      }
    })(),
    timeout,
  ]).finally(() => clearTimeout(timer));
  // Keep draining stdout so the server never blocks on a full pipe.
  const stdoutDone = (async () => {
    while (true) {
      const { value, done } = await stdoutReader.read();
      if (done) return;
      stdoutText += value;
    }
  })();
  const exited = (async () => {
    const status = await process.status;
    await Promise.all([stderrDone, stdoutDone]);
    return status.code;
  })();
  let running = true;
  exited.then(() => running = false);
  const local = JSON.parse(await Deno.readTextFile(`${portFile}.json`));
  return {
    dir,
    stateHome,
    root,
    portFile,
    port,
    token: local.token,
    process,
    log: () => stderrText,
    stdout: () => stdoutText,
    exited,
    async stop() {
      if (running) {
        try {
          process.kill("SIGTERM");
        } catch {
          // Already gone.
        }
      }
      const code = await exited;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(stateHome, { recursive: true }).catch(() => {});
      return code;
    },
  };
}

/** What a finished client process produced. */
export interface ClientRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Options for {@link runClient}. */
export interface ClientOptions {
  cwd?: string;
  stdin?: string;
  env?: Record<string, string>;
}

/** Runs `fts connect ARGS...` to completion. */
export async function runClient(args: string[], options: ClientOptions = {}): Promise<ClientRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", ...FTS_RUN_FLAGS, MAIN, "connect", ...args],
    cwd: options.cwd,
    env: options.env,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

/** Runs `fts connect 127.0.0.1:PORT [--token T] ARGS...` against a running server. */
export function runCommand(
  server: RunningServer,
  args: string[],
  options: ClientOptions = {},
): Promise<ClientRun> {
  const token = server.token ? ["--token", server.token] : [];
  return runClient([`127.0.0.1:${server.port}`, ...token, ...args], {
    cwd: server.dir,
    ...options,
  });
}

/**
 * Starts `fts connect 127.0.0.1:PORT ARGS...` against a running server and
 * returns at once, output discarded: for a test that kills it mid-transfer.
 */
export function spawnCommand(server: RunningServer, args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...FTS_RUN_FLAGS, MAIN, "connect", `127.0.0.1:${server.port}`, ...args],
    cwd: server.dir,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

/** A raw protocol connection that sends exactly what a test tells it to. */
export class RawClient {
  readonly conn: Deno.TcpConn;
  readonly reader: FrameReader;
  /** The server's hello. */
  hello: Message = {};
  #nextId = 1;

  private constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.reader = new FrameReader(conn);
  }

  /**
   * Connects and reads the server's hello; with `handshake`, also answers it
   * (with `token`, if given, and `helloFields`, such as a `checksum`: without
   * one the session uses sha256, as a client from before negotiation).
   */
  static async open(
    port: number,
    handshake = true,
    token?: string,
    helloFields: Message = {},
  ): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    const client = new RawClient(conn);
    const hello = await client.reader.readMessage();
    if (hello?.type !== "hello") throw new Error(`expected hello, got ${JSON.stringify(hello)}`);
    client.hello = hello;
    if (handshake) {
      await client.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        software: "raw-test",
        token,
        ...helloFields,
      });
      const reply = await client.reader.readMessage();
      if (reply?.ok !== true) throw new Error(`handshake refused: ${JSON.stringify(reply)}`);
    }
    return client;
  }

  send(message: Message): Promise<void> {
    return writeAll(this.conn, encodeFrame(message));
  }

  sendBytes(bytes: Uint8Array): Promise<void> {
    return writeAll(this.conn, bytes);
  }

  /** Sends a request and returns the next message (the reply, or the first of several). */
  async request(fields: Message): Promise<Message | null> {
    await this.send({ type: "request", id: this.#nextId++, ...fields });
    return await this.reader.readMessage();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // Already closed.
    }
  }
}

/** Random bytes (crypto.getRandomValues fills at most 64 KiB a call). */
export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let at = 0; at < size; at += 65_536) {
    crypto.getRandomValues(bytes.subarray(at, Math.min(size, at + 65_536)));
  }
  return bytes;
}

/** Everything a stream yields, concatenated. */
export async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** One buffer holding `parts` one after another. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const whole = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    whole.set(part, offset);
    offset += part.length;
  }
  return whole;
}

/** A tmpfs mounted for a test: a real file system that fills up; unmounted and removed when disposed of. */
export interface MountedTmpfs extends AsyncDisposable {
  /** Where it is mounted. */
  path: string;
}

/**
 * Mounts a tmpfs of `size` (such as `8m`) on a new directory in `parent`
 * (the system's temporary directory by default). Returns null, with a
 * SKIPPED warning, where that is not allowed (it needs root).
 */
export async function mountTmpfs(size: string, parent?: string): Promise<MountedTmpfs | null> {
  const path = await Deno.makeTempDir({ dir: parent, prefix: "fts-tmpfs-" });
  const mounted = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path],
    stdout: "null",
    stderr: "piped",
  }).output().catch(() => null);
  if (!mounted?.success) {
    const why = mounted ? new TextDecoder().decode(mounted.stderr).trim() : "no mount command";
    console.warn(`SKIPPED: cannot mount a tmpfs here (${why}); the full-disk test needs root`);
    await Deno.remove(path, { recursive: true });
    return null;
  }
  return {
    path,
    async [Symbol.asyncDispose]() {
      await new Deno.Command("umount", { args: [path] }).output();
      await Deno.remove(path, { recursive: true });
    },
  };
}

/** SHA-256 of some bytes, hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * One buffer holding an eager upload's request, its data and its trailer,
 * as a client sends them back to back; `extra` adds or replaces request fields.
 */
export function eagerUpload(
  id: number,
  name: string,
  data: Uint8Array,
  extra: Message = {},
): Uint8Array {
  const request = encodeFrame({
    type: "request",
    id,
    op: "upload",
    name,
    size: data.length,
    overwrite: false,
    eager: true,
    ...extra,
  });
  const trailer = encodeFrame({ type: "trailer", id, sha256: sha256Hex(data) });
  const bytes = new Uint8Array(request.length + data.length + trailer.length);
  bytes.set(request);
  bytes.set(data, request.length);
  bytes.set(trailer, request.length + data.length);
  return bytes;
}

/** SHA-256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * The digest of `bytes` by `checksum`, hex, from node:crypto or straight from
 * hash-wasm (not through io/checksum.ts, which is under test).
 */
export async function digestOfBytes(
  checksum: "sha256" | "xxh3-128",
  bytes: Uint8Array,
): Promise<string> {
  if (checksum === "sha256") return createHash("sha256").update(bytes).digest("hex");
  return (await createXXHash128()).update(bytes).digest("hex");
}

/** XXH3-128 of a file, hex, straight from hash-wasm (not through io/checksum.ts, under test). */
export async function xxh3File(path: string): Promise<string> {
  const hash = await createXXHash128();
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

/** Writes `size` random bytes to `path`, in chunks, and returns their SHA-256. */
export async function writeRandomFile(path: string, size: number): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(Math.min(size, 1 << 20));
  let remaining = size;
  while (remaining > 0) {
    const part = chunk.subarray(0, Math.min(remaining, chunk.length));
    // getRandomValues fills at most 64 KiB per call.
    for (let i = 0; i < part.length; i += 65536) {
      crypto.getRandomValues(part.subarray(i, Math.min(i + 65536, part.length)));
    }
    hash.update(part);
    await writeAll(file, part);
    remaining -= part.length;
  }
  return hash.digest("hex");
}

/** Lists every path under `dir`, relative, sorted; directories end in `/`. */
export async function listTree(dir: string): Promise<string[]> {
  const paths: string[] = [];
  async function walk(relative: string) {
    for await (const entry of Deno.readDir(join(dir, relative))) {
      const path = relative ? `${relative}/${entry.name}` : entry.name;
      const shown = path.replace(SERVER_ID_IN_PATH, "$1SERVER");
      paths.push(entry.isDirectory ? `${shown}/` : shown);
      if (entry.isDirectory) await walk(path);
    }
  }
  await walk("");
  return paths.sort();
}

/** A server's id in a path of its lease or its temporary directory, which listTree() shows as SERVER. */
const SERVER_ID_IN_PATH = /^(\.fts\/(?:servers|tmp)\/)[0-9a-f]{32}(?=\/|$|\.lock$)/;

/**
 * The temporary directory of the running server `server` (the one whose
 * lease names its process), where its uploads in flight are written.
 */
export async function serverTmpDir(server: { root: string; process: Deno.ChildProcess }) {
  const servers = join(server.root, ".fts", "servers");
  for await (const entry of Deno.readDir(servers)) {
    if (!/^[0-9a-f]{32}$/.test(entry.name)) continue;
    const lease = JSON.parse(await Deno.readTextFile(join(servers, entry.name)));
    if (lease.pid === server.process.pid) return join(server.root, ".fts", "tmp", entry.name);
  }
  throw new Error(`no lease in ${servers} names process ${server.process.pid}`);
}

/** Polls `condition` every 20 ms until it holds or `timeoutMs` passes; returns whether it held. */
export async function waitFor(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return await condition();
}

/**
 * Waits until the server keeps `bytes` of a broken upload in its partial
 * directory: once it does, it has read all that arrived before the drop.
 */
export async function waitForKeptPartial(server: RunningServer, bytes: number): Promise<boolean> {
  const partialDir = join(server.root, ".fts", "partial");
  return await waitFor(async () => {
    for await (const entry of Deno.readDir(partialDir)) {
      if ((await Deno.stat(join(partialDir, entry.name))).size === bytes) return true;
    }
    return false;
  });
}

/**
 * A resumable upload of `data` as `name`, over a raw session with
 * `helloFields` (a `checksum`, say), broken off after its first `bytes`;
 * resolves once the server keeps them for a resume ({@link waitForKeptPartial}).
 */
export async function breakUploadAfter(
  server: RunningServer,
  name: string,
  data: Uint8Array,
  bytes: number,
  helloFields: Message = {},
): Promise<void> {
  const broken = await RawClient.open(server.port, true, undefined, helloFields);
  await broken.send({
    type: "request",
    id: 1,
    op: "upload",
    name,
    size: data.length,
    resumable: true,
  });
  const go = await readWithin(broken);
  if (go?.type !== "continue") throw new Error(`no go-ahead for the upload: ${JSON.stringify(go)}`);
  await broken.sendBytes(data.subarray(0, bytes));
  broken.close();
  if (!await waitForKeptPartial(server, bytes)) {
    throw new Error(`the broken upload's ${bytes} bytes were not kept`);
  }
}

/**
 * What `listTree()` shows of a root that holds no user files, served by one
 * server: the server's own state (its lease and its temporary directory,
 * their id shown as SERVER; the root's space ledger).
 */
export const EMPTY_ROOT = [
  ".fts/",
  ".fts/lock",
  ".fts/partial/",
  ".fts/replace.lock",
  ".fts/servers/",
  ".fts/servers/SERVER",
  ".fts/servers/SERVER.lock",
  ".fts/space",
  ".fts/tmp/",
  ".fts/tmp/SERVER/",
];

/** What `listTree()` shows of a root that holds no user files once its servers have stopped. */
export const STOPPED_ROOT = [
  ".fts/",
  ".fts/lock",
  ".fts/partial/",
  ".fts/replace.lock",
  ".fts/servers/",
  ".fts/space",
  ".fts/tmp/",
];

/** How long a raw test read waits for the server. */
export const RAW_READ_TIMEOUT_MS = 10_000;

/** At most this many `entries` frames are read for one list in the raw tests. */
const MAX_LIST_FRAMES = 100;

/** Reads the next message, failing the test (and closing the connection) if none comes in time. */
export async function readWithin(
  client: RawClient,
  ms = RAW_READ_TIMEOUT_MS,
): Promise<Message | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      client.close();
      reject(new Error(`no message from the server within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([client.reader.readMessage(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Lists `name` over a raw connection; returns the entries' names and the final reply. */
export async function rawList(
  client: RawClient,
  id: number,
  name = "",
): Promise<{ names: string[]; reply: Message }> {
  await client.send({ type: "request", id, op: "list", name });
  const names: string[] = [];
  for (let i = 0; i <= MAX_LIST_FRAMES; i++) {
    const message = await readWithin(client);
    if (message === null) throw new Error("connection closed during a list");
    if (message.type === "entries") {
      for (const entry of message.entries as { name: string }[]) names.push(entry.name);
      continue;
    }
    return { names, reply: message };
  }
  throw new Error(`more than ${MAX_LIST_FRAMES} entries frames`);
}

/** Lists the root on a fresh raw connection; throws unless the list succeeds. */
export async function assertFreshClientLists(server: RunningServer): Promise<string[]> {
  const client = await RawClient.open(server.port, true, server.token ?? undefined);
  try {
    const { names, reply } = await rawList(client, 1);
    if (reply.type !== "reply" || reply.ok !== true) {
      throw new Error(`a fresh client could not list: ${JSON.stringify(reply)}`);
    }
    return names;
  } finally {
    client.close();
  }
}

/** How many descriptors process `pid` has open, from /proc. */
export function openDescriptors(pid: number): number {
  return [...Deno.readDirSync(`/proc/${pid}/fd`)].length;
}
