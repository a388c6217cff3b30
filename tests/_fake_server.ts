/**
 * A fake fts server for the client's tests: it completes the handshake on
 * 127.0.0.1 and then answers each request the way the test says, so that
 * the real `fts connect` process can be fed what no honest server sends.
 * Every loop is bounded; every process and socket is gone when a run ends.
 */

import { join } from "node:path";
import { encodeFrame, FrameReader, type Message, writeAll } from "../protocol/frames.ts";
import {
  MAX_CONTROL_BYTES,
  MAX_FILE_BYTES,
  MAX_NAME_BYTES,
  PROTOCOL_VERSION,
} from "../protocol/limits.ts";
import { digestOfBytes, FTS_RUN_FLAGS, listTree, PROJECT_DIR } from "./_helpers.ts";

/** Messages the fake server reads from one client at most: far more than any test's command sends. */
const MAX_CLIENT_MESSAGES = 2000;

/** How long a client run may take before the test kills it and fails: a hang, not slowness. */
const CLIENT_RUN_TIMEOUT_MS = 60_000;

/** What the fake server's side of one request can do. */
export interface FakePeer {
  /** Sends one control message. */
  send(message: Message): Promise<void>;
  /** Sends raw bytes. */
  sendBytes(bytes: Uint8Array): Promise<void>;
  /** Waits until the client closes the connection (reading and dropping what it sends). */
  waitForClose(): Promise<void>;
  /** Reads nothing and sends nothing until the test hangs up, after the client has gone. */
  stall(): Promise<void>;
  /** Closes the connection at once, as a server that breaks off mid-transfer. */
  end(): void;
}

/** How the fake server behaves. */
export interface FakeServerScript {
  /**
   * The protocol version its hello announces.
   * @default {PROTOCOL_VERSION}
   */
  protocol?: number;
  /**
   * The software its hello announces.
   * @default {"fake/0.0.0"}
   */
  software?: string;
  /**
   * The checksums its hello offers; when absent, its hello has no
   * `checksums`, as a server from before negotiation (sha256 only).
   */
  checksums?: string[];
  /**
   * Answers one request (logout is answered for it). Return `"stop"` to end
   * the conversation.
   */
  answer(request: Message, peer: FakePeer): Promise<void | "stop">;
}

/** A fake server that takes one connection on loopback. */
export interface FakeServer {
  port: number;
  /** Resolves with every message the client sent, once the client has gone. */
  messages: Promise<Message[]>;
  /** Stops waiting for a connection; a connection taken ends when the client does. */
  close(): void;
  /** Closes the connection taken, ending a stalled conversation. */
  hangUp(): void;
}

/** Starts a fake server on 127.0.0.1, port 0. */
export function startFakeServer(script: FakeServerScript): FakeServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let hungUp: () => void = () => {};
  const hangUp = new Promise<void>((resolve) => hungUp = resolve);
  let taken: Deno.Conn | null = null;
  const messages = (async () => {
    const conn = await listener.accept();
    taken = conn;
    listener.close();
    // Many small exchanges would otherwise wait on delayed ACKs.
    conn.setNoDelay(true);
    try {
      return await converse(conn, script, hangUp);
    } finally {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  })();
  return {
    port: listener.addr.port,
    messages,
    close() {
      try {
        listener.close();
      } catch {
        // Already closed: the connection was taken.
      }
    },
    hangUp() {
      hungUp();
      try {
        taken?.close();
      } catch {
        // Already closed.
      }
    },
  };
}

/** Errors that mean the client went away. */
function isPeerGone(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionReset || err instanceof Deno.errors.BrokenPipe ||
    err instanceof Deno.errors.BadResource || err instanceof Deno.errors.UnexpectedEof ||
    (err instanceof Error && err.name === "ProtocolError");
}

/** Speaks the server's side of protocol/README.md until the client goes; returns what it sent. */
async function converse(
  conn: Deno.Conn,
  script: FakeServerScript,
  hangUp: Promise<void>,
): Promise<Message[]> {
  const reader = new FrameReader(conn);
  const received: Message[] = [];
  const next = async (): Promise<Message | null> => {
    try {
      const message = await reader.readMessage();
      if (message !== null) received.push(message);
      return message;
    } catch (err) {
      if (isPeerGone(err)) return null;
      throw err;
    }
  };
  const peer: FakePeer = {
    send: (message) => writeAll(conn, encodeFrame(message)),
    sendBytes: (bytes) => writeAll(conn, bytes),
    async waitForClose() {
      for (let i = 0; i < MAX_CLIENT_MESSAGES; i++) {
        if (await next() === null) return;
      }
    },
    stall: () => hangUp,
    end() {
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    },
  };
  try {
    await peer.send({
      type: "hello",
      protocol: script.protocol ?? PROTOCOL_VERSION,
      software: script.software ?? "fake/0.0.0",
      limits: {
        maxControlBytes: MAX_CONTROL_BYTES,
        maxFileBytes: MAX_FILE_BYTES,
        maxNameBytes: MAX_NAME_BYTES,
      },
      auth: "none",
      features: [],
      ...(script.checksums === undefined ? {} : { checksums: script.checksums }),
    });
    if ((await next())?.type !== "hello") return received;
    if ((script.protocol ?? PROTOCOL_VERSION) !== PROTOCOL_VERSION) {
      await peer.waitForClose();
      return received;
    }
    await peer.send({ type: "reply", id: 0, ok: true, role: "read" });
    for (let i = 0; i < MAX_CLIENT_MESSAGES; i++) {
      const request = await next();
      if (request === null) return received;
      if (request.op === "logout") {
        await peer.send({ type: "reply", id: request.id, ok: true });
        continue;
      }
      if (await script.answer(request, peer) === "stop") {
        await peer.waitForClose();
        return received;
      }
    }
  } catch (err) {
    if (isPeerGone(err)) return received;
    throw err;
  }
  throw new Error(`the client sent more than ${MAX_CLIENT_MESSAGES} messages`);
}

/** An error reply to `request`. */
export function errorReply(request: Message, code: string, message: string): Message {
  return { type: "reply", id: request.id, ok: false, error: { code, message } };
}

/**
 * Answers a download of `request` with `bytes` and their true digest by
 * `checksum` (the session's: sha256 unless the script offered another), or
 * the digest of `digested` instead, for a server that corrupts what it sends.
 */
export async function sendFile(
  request: Message,
  peer: FakePeer,
  bytes: Uint8Array,
  checksum: "sha256" | "xxh3-128" = "sha256",
  digested: Uint8Array = bytes,
) {
  const id = request.id;
  await peer.send({ type: "data", id, size: bytes.length, offset: 0, mtime: 0, mode: 0o644 });
  await peer.sendBytes(bytes);
  const hex = await digestOfBytes(checksum, digested);
  await peer.send({ type: "reply", id, ok: true, size: bytes.length, [checksum]: hex });
}

/** What one client run against a fake server produced. */
export interface FakeRun {
  code: number;
  stdout: string;
  stderr: string;
  /** Every message the client sent. */
  messages: Message[];
  /** A fresh directory holding `cwd/`, where the client ran; nothing else should appear in it. */
  base: string;
  /** The client's working directory, `base/cwd`. */
  cwd: string;
  /** Every path under `base`, as `listTree` gives them. */
  tree: string[];
}

/** Options for {@link runAgainstFake}. */
export interface FakeRunOptions {
  /** Called with the working directory before the client starts. */
  prepare?: (cwd: string) => Promise<void>;
  /** Runs the client under `strace -f -o FILE -e trace=…` with these syscalls. */
  straceSyscalls?: string;
  /** Commands for the client's standard input (none: it reads nothing). */
  stdin?: string;
}

/**
 * Runs `fts connect 127.0.0.1:PORT ARGS...` in `base/cwd`, a fresh
 * directory, against a fake server; the caller removes `base`.
 */
export async function runAgainstFake(
  script: FakeServerScript,
  args: string[],
  options: FakeRunOptions = {},
): Promise<FakeRun & { strace: string }> {
  const base = await Deno.makeTempDir({ prefix: "fts-hostile-" });
  const cwd = join(base, "cwd");
  await Deno.mkdir(cwd);
  await options.prepare?.(cwd);
  const fake = startFakeServer(script);
  const straceFile = join(base, "strace.out");
  const ftsArgs = ["run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts"), "connect"];
  const command = options.straceSyscalls === undefined
    ? new Deno.Command(Deno.execPath(), {
      args: [...ftsArgs, `127.0.0.1:${fake.port}`, ...args],
      cwd,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("strace", {
      args: [
        "-f",
        "-o",
        straceFile,
        "-e",
        `trace=${options.straceSyscalls}`,
        Deno.execPath(),
        ...ftsArgs,
        `127.0.0.1:${fake.port}`,
        ...args,
      ],
      cwd,
      stdin: options.stdin === undefined ? "null" : "piped",
      stdout: "piped",
      stderr: "piped",
    });
  const child = command.spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  let hung = false;
  const timer = setTimeout(() => {
    hung = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, CLIENT_RUN_TIMEOUT_MS);
  try {
    const output = await child.output();
    // A client that never connected would leave the fake server waiting for it.
    fake.close();
    fake.hangUp();
    const messages = await fake.messages;
    if (hung) throw new Error(`the client was still running after ${CLIENT_RUN_TIMEOUT_MS} ms`);
    const decoder = new TextDecoder();
    let strace = "";
    if (options.straceSyscalls !== undefined) {
      strace = await Deno.readTextFile(straceFile);
      await Deno.remove(straceFile);
    }
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      messages,
      base,
      cwd,
      tree: await listTree(base),
      strace,
    };
  } finally {
    clearTimeout(timer);
    fake.close();
    fake.hangUp();
    await fake.messages.catch(() => {});
  }
}

/**
 * Characters that must never reach a terminal raw: C0 controls (but the
 * newline between lines), DEL, C1 controls, line and paragraph separators,
 * bidirectional embeddings, overrides and isolates.
 */
export const RAW_TERMINAL_CONTROL =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/**
 * A server whose listings come from `tree` (directory name to entries);
 * every download gets `payload`, from the offset asked; any other op is UNSUPPORTED.
 */
export function treeServer(tree: Record<string, Message[]>, payload: Uint8Array): FakeServerScript {
  return {
    async answer(request, peer) {
      const name = String(request.name);
      if (request.op === "list") {
        const entries = tree[name];
        if (entries === undefined) {
          await peer.send(errorReply(request, "NOT_FOUND", "no such directory"));
          return;
        }
        await peer.send({ type: "entries", id: request.id, entries });
        await peer.send({ type: "reply", id: request.id, ok: true, count: entries.length });
      } else if (request.op === "download") {
        await sendFile(request, peer, payload);
      } else {
        await peer.send(errorReply(request, "UNSUPPORTED", "not here"));
      }
    },
  };
}
