/**
 * A peer that moves a transfer's bytes slower than `--min-rate` (one byte
 * every few seconds, which restarts the idle timer each time) is closed and
 * logged as "slow", so a few such peers cannot hold every connection slot.
 * Windows are 2 s here (`--min-rate-window 2`) to keep the tests short.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FtsConnection } from "../client/connection.ts";
import {
  DEFAULT_MIN_RATE_BYTES_PER_S,
  DEFAULT_MIN_RATE_WINDOW_S,
  parseServeArgs,
  SERVE_HELP,
  type ServerLimits,
  type ServeSetup,
} from "../server/config.ts";
import { encodeFrame } from "../protocol/frames.ts";
import {
  RawClient,
  rawList,
  readWithin,
  sha256File,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";

/** The floor every test server runs with: 1 KiB/s over 2-second windows. */
const RATE_ARGS = ["--min-rate", "1K", "--min-rate-window", "2"];

/** How long a test waits for a slow peer to be closed: many windows. */
const SLOW_CLOSE_WAIT_MS = 30_000;

/** At most this many bytes are trickled before a test gives up on the server closing the peer. */
const MAX_TRICKLE_STEPS = 20;

/** Bytes an upload sends at once before it starts to trickle. */
const UPLOAD_HEAD_BYTES = 8 * 1024;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Waits for the server to close `client`: true on end of stream or a reset, false if it stays open. */
async function closedByServer(client: RawClient, ms: number): Promise<boolean> {
  try {
    const message = await readWithin(client, ms);
    assert.equal(message, null, `expected the connection to close, got ${JSON.stringify(message)}`);
    return true;
  } catch (err) {
    if (err instanceof Error && err.message.startsWith("no message from the server")) return false;
    return true; // Reset under us: closed either way.
  }
}

/**
 * Writes `bytes` one at a time, `everyMs` apart, until they are all sent,
 * a write fails, or `stopped()` says so; returns how many were written.
 */
async function trickle(
  client: RawClient,
  bytes: Uint8Array,
  everyMs: number,
  stopped: () => boolean,
): Promise<number> {
  let sent = 0;
  for (; sent < bytes.length && sent < MAX_TRICKLE_STEPS && !stopped(); sent++) {
    await sleep(everyMs);
    if (stopped()) break;
    const ok = await client.sendBytes(bytes.subarray(sent, sent + 1)).then(() => true, () => false);
    if (!ok) break;
  }
  return sent;
}

Deno.test("min-rate closes an upload trickling a byte every 2 s, keeps its data for resume, serves others", async () => {
  // Two slots: the trickler holds one, a normal client the other.
  const server = await startServer([...RATE_ARGS, "--idle-timeout", "3", "--max-connections", "2"]);
  const clients: (RawClient | FtsConnection)[] = [];
  try {
    const size = 64 * 1024;
    const whole = new Uint8Array(size);
    crypto.getRandomValues(whole);
    const trickler = await RawClient.open(server.port);
    clients.push(trickler);
    const go = await trickler.request({
      op: "upload",
      name: "trickle.bin",
      size,
      overwrite: false,
      resumable: true,
      resume: false,
    });
    assert.equal(go?.type, "continue");
    await trickler.sendBytes(whole.subarray(0, UPLOAD_HEAD_BYTES));
    let stop = false;
    const trickled = trickle(trickler, whole.subarray(UPLOAD_HEAD_BYTES), 2_000, () => stop);

    // Served while the trickler is connected.
    const normal = await FtsConnection.open("127.0.0.1", server.port);
    clients.push(normal);
    const local = join(server.dir, "normal.bin");
    const digest = await writeRandomFile(local, 256 * 1024);
    await normal.upload(local, "normal.bin");
    assert.equal(await sha256File(join(server.root, "normal.bin")), digest);

    const closed = await closedByServer(trickler, SLOW_CLOSE_WAIT_MS);
    stop = true;
    const trickledBytes = await trickled;
    trickler.close();
    assert.ok(closed, "the trickling upload was not closed");
    assert.ok(trickledBytes < MAX_TRICKLE_STEPS, "the trickling upload outlived every window");
    assert.ok(
      await waitFor(() => /upload "trickle\.bin" .*slow \(\d+ B\/s/.test(server.log()), 10_000),
      `no "slow" log line for the upload: ${server.log()}`,
    );
    assert.ok(await waitFor(() => /disconnect slow/.test(server.log()), 10_000), server.log());

    // Its slot is free again (the normal client still holds the other one).
    const again = await RawClient.open(server.port);
    clients.push(again);
    const held = await again.request({ op: "partial", name: "trickle.bin", size });
    assert.equal(held?.ok, true, JSON.stringify(held));
    const heldBytes = held?.held as number;
    assert.ok(heldBytes >= UPLOAD_HEAD_BYTES, `only ${heldBytes} bytes kept for resume`);

    // And the resume completes the file from what was kept.
    const resumed = await again.request({
      op: "upload",
      name: "trickle.bin",
      size,
      overwrite: false,
      resumable: true,
      resume: true,
    });
    assert.equal(resumed?.type, "continue");
    assert.equal(resumed?.offset, heldBytes);
    await again.sendBytes(whole.subarray(heldBytes));
    const sha256 = createHash("sha256").update(whole).digest("hex");
    await again.send({ type: "trailer", id: resumed?.id as number, sha256 });
    const reply = await readWithin(again);
    assert.equal(reply?.ok, true, JSON.stringify(reply));
    assert.equal(await sha256File(join(server.root, "trickle.bin")), sha256);
  } finally {
    for (const client of clients) {
      if (client instanceof RawClient) client.close();
      else await client.logout().catch(() => {});
    }
    await server.stop();
  }
});

Deno.test("min-rate closes a download whose peer reads one byte at a time, while another is served", async () => {
  // The idle timeout is long, so only the rate floor can close this peer.
  const server = await startServer([...RATE_ARGS, "--idle-timeout", "60"]);
  const clients: RawClient[] = [];
  try {
    // Larger than the socket buffers on both ends, so the server is still sending.
    const size = 64 * 1024 * 1024;
    const digest = await writeRandomFile(join(server.root, "big.bin"), size);
    const reader = await RawClient.open(server.port);
    clients.push(reader);
    const data = await reader.request({ op: "download", name: "big.bin", offset: 0 });
    assert.equal(data?.type, "data");
    let slowLogged = false;
    const oneByte = new Uint8Array(1);
    const sipping = (async () => {
      for (let i = 0; i < MAX_TRICKLE_STEPS && !slowLogged; i++) {
        await sleep(500);
        if (await reader.conn.read(oneByte).catch(() => null) === null) return;
      }
    })();

    const normal = await FtsConnection.open("127.0.0.1", server.port);
    const local = join(server.dir, "big-copy.bin");
    await normal.download("big.bin", local);
    assert.equal(await sha256File(local), digest);
    await normal.logout();

    slowLogged = await waitFor(
      () => /download "big\.bin" .*slow \(\d+ B\/s/.test(server.log()),
      SLOW_CLOSE_WAIT_MS,
    );
    await sipping;
    assert.ok(slowLogged, `no "slow" log line for the download: ${server.log()}`);
    // What is left in the socket buffers ends early: the server closed it mid-file.
    let received = 0;
    const buffer = new Uint8Array(1 << 20);
    for (let i = 0; i < 1_000; i++) {
      const n = await reader.conn.read(buffer).catch(() => null);
      if (n === null) break;
      received += n;
    }
    assert.ok(received < size, `the whole file arrived (${received} bytes)`);
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});

Deno.test("min-rate leaves an upload at an honest rate over several windows alone", async () => {
  const server = await startServer([...RATE_ARGS, "--idle-timeout", "3"]);
  const client = await RawClient.open(server.port);
  try {
    // 2 KiB every 200 ms: about ten times the floor, for about three windows.
    const chunkBytes = 2 * 1024;
    const chunks = 30;
    const whole = new Uint8Array(chunkBytes * chunks);
    crypto.getRandomValues(whole);
    const go = await client.request({
      op: "upload",
      name: "steady.bin",
      size: whole.length,
      overwrite: false,
    });
    assert.equal(go?.type, "continue");
    for (let i = 0; i < chunks; i++) {
      await sleep(200);
      await client.sendBytes(whole.subarray(i * chunkBytes, (i + 1) * chunkBytes));
    }
    const sha256 = createHash("sha256").update(whole).digest("hex");
    await client.send({ type: "trailer", id: go?.id as number, sha256 });
    const reply = await readWithin(client);
    assert.equal(reply?.ok, true, JSON.stringify(reply));
    assert.equal(reply?.sha256, sha256);
    assert.doesNotMatch(server.log(), /slow/);
  } finally {
    client.close();
    await server.stop();
  }
});

/** The limits `fts serve ARGS` would run with. */
async function limitsFor(args: string[]): Promise<ServerLimits> {
  const setup = await parseServeArgs(["--no-auth", ...args], { get: () => undefined });
  assert.notEqual(setup, "help");
  return (setup as ServeSetup).config.limits;
}

Deno.test("parseServeArgs() reads --min-rate as a size and --min-rate-window in seconds", async () => {
  const defaults = await limitsFor([]);
  assert.equal(defaults.minRateBytesPerSecond, DEFAULT_MIN_RATE_BYTES_PER_S);
  assert.equal(defaults.minRateWindowMs, DEFAULT_MIN_RATE_WINDOW_S * 1000);
  const given = await limitsFor(["--min-rate", "4K", "--min-rate-window", "5"]);
  assert.equal(given.minRateBytesPerSecond, 4096);
  assert.equal(given.minRateWindowMs, 5000);
  assert.equal((await limitsFor(["--min-rate", "0"])).minRateBytesPerSecond, 0);
  await assert.rejects(limitsFor(["--min-rate", "fast"]), /--min-rate/);
  await assert.rejects(limitsFor(["--min-rate-window", "0"]), /--min-rate-window/);
  assert.match(SERVE_HELP, /--min-rate SIZE/);
  assert.match(SERVE_HELP, /--min-rate-window SECONDS/);
});

Deno.test("min-rate closes a peer trickling the bytes of a request, and leaves a quiet one to the idle timeout", async () => {
  const server = await startServer([...RATE_ARGS, "--idle-timeout", "60"]);
  const clients: RawClient[] = [];
  try {
    const quiet = await RawClient.open(server.port);
    clients.push(quiet);
    const trickler = await RawClient.open(server.port);
    clients.push(trickler);
    // A whole request frame, sent one byte every 500 ms: 2 bytes a second, under 1 KiB/s.
    const frame = encodeFrame({ type: "request", id: 1, op: "list", name: "" });
    let stop = false;
    const trickled = trickle(trickler, frame, 500, () => stop);
    const closed = await closedByServer(trickler, SLOW_CLOSE_WAIT_MS);
    stop = true;
    const trickledBytes = await trickled;
    assert.ok(closed, "the trickled request was not closed");
    assert.ok(trickledBytes < frame.length, "the whole request arrived before the floor closed it");
    assert.ok(
      await waitFor(() => /disconnect slow \(\d+ B\/s/.test(server.log()), 10_000),
      server.log(),
    );
    // The quiet session sent nothing for as long: the floor left it alone, and it is served.
    const { reply } = await rawList(quiet, 1);
    assert.equal(reply.ok, true, JSON.stringify(reply));
  } finally {
    for (const client of clients) client.close();
    await server.stop();
  }
});
