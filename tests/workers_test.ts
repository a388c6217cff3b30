/**
 * `fts serve --workers N`: several sandboxed workers accept on one port, and
 * every limit holds for the server as a whole, whichever worker a
 * connection lands on. The kernel spreads connections over the workers by
 * their addresses, so the tests find out from the log (each line names its
 * worker) where a connection landed, and pick connections on each worker
 * where it matters.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { FrameReader, type Message } from "../protocol/frames.ts";
import { PROTOCOL_VERSION } from "../protocol/limits.ts";
import { DEFAULT_WORKERS, MAX_WORKERS, parseServeArgs } from "../server/config.ts";
import {
  FTS_RUN_FLAGS,
  PROJECT_DIR,
  RawClient,
  readWithin,
  runCommand,
  type RunningServer,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** The workers of these tests' servers. */
const WORKERS = 2;

/** At most this many connections are opened to find enough on each worker. */
const MAX_PROBE_CONNECTIONS = 64;

/**
 * The worker that logged `connect ok` (in either log format) for the
 * connection from local port `port`; waits for the line.
 */
async function workerOf(server: RunningServer, port: number): Promise<number> {
  const peer = `127\\.0\\.0\\.1:${port}`;
  const line = new RegExp(
    `^\\S+ w(\\d+) ${peer} connect ok$|^\\{"time":"[^"]+","worker":(\\d+),"peer":"${peer}",` +
      `"token":null,"op":"connect",.*"result":"ok"`,
    "m",
  );
  assert.ok(await waitFor(() => line.test(server.log())), `no connect line for port ${port}`);
  const match = line.exec(server.log())!;
  return Number(match[1] ?? match[2]);
}

/**
 * Opens raw connections until each worker has `each` of them (closing the
 * rest); returns them by worker, `[w1's, w2's]`.
 */
async function connectionsOnEachWorker(
  server: RunningServer,
  each: number,
  handshake = true,
): Promise<RawClient[][]> {
  const byWorker: RawClient[][] = Array.from({ length: WORKERS }, () => []);
  for (let i = 0; i < MAX_PROBE_CONNECTIONS; i++) {
    if (byWorker.every((clients) => clients.length >= each)) return byWorker;
    const client = await RawClient.open(server.port, handshake, server.token ?? undefined);
    const clients = byWorker[await workerOf(server, client.conn.localAddr.port) - 1]!;
    if (clients.length < each) clients.push(client);
    else client.close();
  }
  throw new Error(`no ${each} connections on each worker in ${MAX_PROBE_CONNECTIONS}`);
}

/** The workers named by log lines matching `pattern` (which must capture nothing). */
function workersLogging(server: RunningServer, pattern: string): Set<string> {
  const line = new RegExp(`^\\S+ w(\\d+) ${pattern}$`, "gm");
  return new Set([...server.log().matchAll(line)].map((match) => `w${match[1]}`));
}

/** Reads the first message of a fresh connection, then closes it. */
async function firstMessage(port: number): Promise<Message | null> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    return await new FrameReader(conn).readMessage();
  } finally {
    conn.close();
  }
}

/** Connects `count` times at once; returns how many got a hello and how many BUSY. */
async function connectAtOnce(port: number, count: number) {
  const conns = await Promise.all(
    Array.from({ length: count }, () => Deno.connect({ hostname: "127.0.0.1", port })),
  );
  const first = await Promise.all(conns.map((conn) => new FrameReader(conn).readMessage()));
  const hellos = first.filter((message) => message?.type === "hello").length;
  const busy = first.filter((message) => message?.code === "BUSY").length;
  return { conns, hellos, busy };
}

/** The server's exit code, or "running" if it has not exited within `ms`. */
async function exitedWithin(server: RunningServer, ms: number): Promise<number | "running"> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const running = new Promise<"running">((resolve) => timer = setTimeout(resolve, ms, "running"));
  try {
    return await Promise.race([server.exited, running]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts `fts serve --no-auth --workers 2` on `dir/root` with `args`, its
 * stderr piped and its stdout piped or not: for the tests that read the
 * server's output their own way, or expect it not to start.
 */
function spawnServe(dir: string, args: string[], stdout: "piped" | "null"): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...FTS_RUN_FLAGS,
      join(PROJECT_DIR, "main.ts"),
      "serve",
      "--no-auth",
      "--workers",
      String(WORKERS),
      "--root",
      join(dir, "root"),
      "--port-file",
      join(dir, "port"),
      "--state-dir",
      join(dir, "state"),
      ...args,
    ],
    stdin: "null",
    stdout,
    stderr: "piped",
  }).spawn();
}

function codeOf(reply: Message | null): unknown {
  return (reply?.error as { code?: unknown } | undefined)?.code;
}

Deno.test("--workers 2: connections are served by both workers", async () => {
  const server = await startServer(["--workers", String(WORKERS)]);
  try {
    for (let i = 0; i < 40; i++) {
      const client = await RawClient.open(server.port);
      const reply = await client.request({ op: "stat", name: "missing" });
      assert.equal(codeOf(reply), "NOT_FOUND");
      client.close();
    }
    assert.ok(await waitFor(() => (server.log().match(/ disconnect /g) ?? []).length >= 40));
    // Forty connections, each on either worker: both served some (all on one: 2^-39).
    assert.deepEqual([...workersLogging(server, `\\S+ stat "missing" \\S+ NOT_FOUND`)].sort(), [
      "w1",
      "w2",
    ]);
  } finally {
    assert.equal(await server.stop(), 0);
  }
});

Deno.test("--workers 2: --max-connections is exact over both workers; freed slots are free on both", async () => {
  const server = await startServer(["--workers", String(WORKERS), "--max-connections", "10"]);
  try {
    const first = await connectAtOnce(server.port, 40);
    assert.equal(first.hellos, 10);
    assert.equal(first.busy, 30);
    // Refused by both workers: each counted the other's connections too.
    assert.ok(await waitFor(() => workersLogging(server, `\\S+ connect BUSY`).size === WORKERS));
    for (const conn of first.conns) conn.close();
    assert.ok(await waitFor(() => (server.log().match(/ disconnect /g) ?? []).length >= 10));
    const second = await connectAtOnce(server.port, 10);
    assert.equal(second.hellos, 10, "every slot was given back");
    const over = await firstMessage(server.port);
    assert.equal(over?.code, "BUSY");
    assert.match(String(over?.message), /limit of 10 connections/);
    for (const conn of second.conns) conn.close();
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: --max-connections-per-peer is exact over both workers", async () => {
  const server = await startServer([
    "--workers",
    String(WORKERS),
    "--max-connections-per-peer",
    "5",
  ]);
  try {
    const { conns, hellos, busy } = await connectAtOnce(server.port, 30);
    assert.equal(hellos, 5);
    assert.equal(busy, 25);
    assert.ok(await waitFor(() => workersLogging(server, `\\S+ connect BUSY`).size === WORKERS));
    for (const conn of conns) conn.close();
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: the authentication back-off counts failures that landed on either worker", async () => {
  const server = await startServer(["--workers", String(WORKERS)], { auth: true });
  try {
    const [onFirst, onSecond] = await connectionsOnEachWorker(server, 3, false);
    const fail = async (client: RawClient) => {
      const started = performance.now();
      await client.send({ type: "hello", protocol: PROTOCOL_VERSION, software: "t", token: "x" });
      const reply = await readWithin(client);
      assert.equal(codeOf(reply), "DENIED", JSON.stringify(reply));
      return performance.now() - started;
    };
    // Alternating workers: a back-off per worker would wait 250, 250, 500 ms.
    await fail(onFirst![0]!);
    await fail(onSecond![0]!);
    await fail(onFirst![1]!);
    const delays = () =>
      [...server.log().matchAll(/ w(\d+) \S+ auth DENIED \(delayed (\d+)ms\)/g)]
        .map((match) => `w${match[1]} ${match[2]}`);
    assert.ok(await waitFor(() => delays().length === 3), server.log());
    assert.deepEqual(delays(), ["w1 250", "w2 500", "w1 1000"]);
    // A success on one worker forgets the failures on the other.
    await onSecond![1]!.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      software: "t",
      token: server.token!,
    });
    assert.equal((await readWithin(onSecond![1]!))?.ok, true);
    await fail(onFirst![2]!);
    assert.ok(await waitFor(() => delays().length === 4), server.log());
    assert.equal(delays()[3], "w1 250");
    for (const client of [...onFirst!, ...onSecond!]) client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: concurrent uploads on both workers never pass --quota, and a restart measures the same use", async () => {
  const quotaBytes = 1_000_000;
  const fileBytes = 100_000;
  const clients = 24;
  const dir = await Deno.makeTempDir({ prefix: "fts-workers-quota-" });
  const root = join(dir, "root");
  const args = ["--workers", String(WORKERS), "--quota", String(quotaBytes), "--reserve", "0"];
  const data = new Uint8Array(fileBytes).fill(7);
  const sha256 = createHash("sha256").update(data).digest("hex");
  const inUseBytes = async (raw: RawClient) => {
    const reply = await raw.request({ op: "upload", name: "probe", size: quotaBytes + 1 });
    const match = /\((\d+) in use/.exec(String((reply?.error as { message?: unknown }).message));
    assert.ok(match, JSON.stringify(reply));
    return Number(match[1]);
  };
  let inUse: number;
  const first = await startServer([...args, "--root", root]);
  try {
    const raws = await Promise.all(
      Array.from({ length: clients }, () => RawClient.open(first.port)),
    );
    // Every request at once, each claiming before any data: exactly ten fit.
    await Promise.all(raws.map((raw, i) =>
      raw.send({
        type: "request",
        id: 1,
        op: "upload",
        name: `f${i}.bin`,
        size: fileBytes,
        eager: true,
      }).then(() => raw.sendBytes(data)).then(() => raw.send({ type: "trailer", id: 1, sha256 }))
    ));
    const replies = await Promise.all(raws.map((raw) => readWithin(raw)));
    for (const reply of replies) {
      if (reply?.ok !== true) assert.equal(codeOf(reply), "NO_SPACE", JSON.stringify(reply));
    }
    assert.equal(replies.filter((reply) => reply?.ok === true).length, quotaBytes / fileBytes);
    assert.ok(
      await waitFor(() => workersLogging(first, `\\S+ upload "f\\d+\\.bin" .*`).size === WORKERS),
      "uploads were served by both workers",
    );
    inUse = await inUseBytes(raws[0]!);
    assert.equal(inUse, quotaBytes);
    for (const raw of raws) raw.close();
  } finally {
    await first.stop();
  }
  const second = await startServer([...args, "--root", root]);
  try {
    const raw = await RawClient.open(second.port);
    assert.equal(await inUseBytes(raw), inUse);
    raw.close();
  } finally {
    await second.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 2: terminate from a session on one worker stops every worker and the process", async () => {
  const server = await startServer(["--workers", String(WORKERS)]);
  try {
    const [onFirst, onSecond] = await connectionsOnEachWorker(server, 1);
    const reply = await onFirst![0]!.request({ op: "terminate" });
    assert.equal(reply?.ok, true, JSON.stringify(reply));
    assert.equal(await exitedWithin(server, 30_000), 0);
    assert.equal(await Deno.stat(server.portFile).then(() => true, () => false), false);
    // The idle session on the other worker was closed too.
    assert.equal(await onSecond![0]!.reader.readMessage().catch(() => null), null);
    for (const client of [...onFirst!, ...onSecond!]) client.close();
    assert.match(server.stdout() + server.log(), /fts: stopped \(terminate\)/);
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: SIGTERM waits for the transfers in flight on every worker", async () => {
  const server = await startServer(["--workers", String(WORKERS)]);
  try {
    const [onFirst, onSecond] = await connectionsOnEachWorker(server, 1);
    const uploaders = [onFirst![0]!, onSecond![0]!];
    const data = new TextEncoder().encode("finished during shutdown");
    for (const [i, uploader] of uploaders.entries()) {
      const go = await uploader.request({ op: "upload", name: `late${i}.txt`, size: data.length });
      assert.equal(go?.type, "continue", JSON.stringify(go));
      await uploader.sendBytes(data.subarray(0, 5));
    }
    server.process.kill("SIGTERM");
    // Both workers stop accepting...
    assert.ok(
      await waitFor(async () => await firstMessage(server.port).then(() => false, () => true)),
    );
    // ...but each transfer in flight completes and is acknowledged.
    const sha256 = createHash("sha256").update(data).digest("hex");
    for (const uploader of uploaders) {
      await uploader.sendBytes(data.subarray(5));
      await uploader.send({ type: "trailer", id: 1, sha256 });
      const reply = await readWithin(uploader);
      assert.equal(reply?.ok, true, JSON.stringify(reply));
      uploader.close();
    }
    assert.equal(await exitedWithin(server, 30_000), 0);
    for (const i of [0, 1]) {
      assert.equal(
        await Deno.readTextFile(join(server.root, `late${i}.txt`)),
        "finished during shutdown",
      );
    }
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: log lines stay whole while both workers log, even into a full pipe", async () => {
  // The server's stderr is read slowly, so that the pipe fills and a line of
  // more than PIPE_BUF (4 KiB) goes in parts: another writer could slip in between.
  const dir = await Deno.makeTempDir({ prefix: "fts-log-" });
  const process = spawnServe(dir, ["--log-format", "json"], "piped");
  let log = "";
  const decoder = new TextDecoder();
  const logDone = (async () => {
    for await (const chunk of process.stderr) {
      log += decoder.decode(chunk, { stream: true });
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  const stdout = new Response(process.stdout).text();
  try {
    assert.ok(await waitFor(() => Deno.stat(join(dir, "port")).then(() => true, () => false)));
    const port = Number(await Deno.readTextFile(join(dir, "port")));
    // JSON-escaped, each control character is six: a name of 6 KiB in the log.
    const name = "\u0001".repeat(1024);
    // The kernel spreads connections over the workers by a hash: with 16, all
    // on one worker has odds of 2^-15 (with 8 it was 2^-7, and it was seen).
    const requests = 100;
    const clients = await Promise.all(Array.from({ length: 16 }, () => RawClient.open(port)));
    await Promise.all(clients.map(async (client) => {
      for (let id = 1; id <= requests; id++) {
        await client.send({ type: "request", id, op: "stat", name });
      }
      for (let id = 1; id <= requests; id++) {
        assert.equal(codeOf(await readWithin(client, 60_000)), "BAD_NAME");
      }
      client.close();
    }));
    const stats = () => log.split("\n").filter((line) => line.includes('"op":"stat"')).length;
    assert.ok(await waitFor(() => stats() >= clients.length * requests, 60_000), log.slice(-300));
    const events = log.trim().split("\n").map((line) => JSON.parse(line));
    const fromStats = events.filter((event) => event.op === "stat");
    assert.equal(fromStats.length, clients.length * requests);
    assert.deepEqual(new Set(fromStats.map((event) => event.worker)), new Set([1, 2]));
  } finally {
    process.kill("SIGTERM");
    await process.status;
    await logDone;
    await stdout;
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("--workers 1: one worker, as before, on a port no one else may share", async () => {
  const server = await startServer(["--workers", "1"]);
  try {
    for (let i = 0; i < 10; i++) assert.equal((await runCommand(server, ["ls"])).code, 0);
    assert.deepEqual([...workersLogging(server, `\\S+ connect ok`)], ["w1"]);
    assert.throws(
      () => Deno.listen({ hostname: "127.0.0.1", port: server.port, reusePort: true }),
      Deno.errors.AddrInUse,
    );
  } finally {
    await server.stop();
  }
});

Deno.test("--workers 2: a second server on the port is refused, not let into the workers' group", async () => {
  const server = await startServer(["--workers", String(WORKERS)]);
  const dir = await Deno.makeTempDir({ prefix: "fts-second-" });
  const second = spawnServe(dir, ["--port", String(server.port)], "null");
  const stderr = new Response(second.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // A server that joined the group would serve on: bounded, then killed.
    const code = await Promise.race([
      second.status.then((status) => status.code),
      new Promise<string>((resolve) => timer = setTimeout(resolve, 30_000, "still serving")),
    ]);
    assert.equal(code, 1);
    assert.match(await stderr, /fts: cannot serve: .*in use/i);
    assert.equal((await runCommand(server, ["ls"])).code, 0);
  } finally {
    clearTimeout(timer);
    try {
      second.kill("SIGKILL");
    } catch {
      // Exited already.
    }
    await second.status;
    await stderr;
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseServeArgs() takes --workers from 1 to MAX_WORKERS, one per core by default", async () => {
  const env = { get: (_: string) => undefined };
  const setup = await parseServeArgs([], env);
  assert.ok(setup !== "help");
  assert.equal(setup.workers, DEFAULT_WORKERS);
  assert.equal(DEFAULT_WORKERS, Math.min(MAX_WORKERS, navigator.hardwareConcurrency));
  const four = await parseServeArgs(["--workers", "4"], env);
  assert.ok(four !== "help" && four.workers === 4);
  for (const bad of ["0", String(MAX_WORKERS + 1), "two"]) {
    await assert.rejects(parseServeArgs(["--workers", bad], env), UsageError, bad);
  }
});
