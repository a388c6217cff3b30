import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FtsConnection, RemoteError } from "../client/connection.ts";
import { FrameReader } from "../protocol/frames.ts";
import { parseSize as size } from "../cli/flags.ts";
import {
  EMPTY_ROOT,
  listTree,
  mountTmpfs,
  RawClient,
  runCommand,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** Reads the first message a fresh connection gets, and whether it is then closed. */
async function firstMessage(port: number) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new FrameReader(conn);
  try {
    const message = await reader.readMessage();
    return { message, conn, reader };
  } catch (err) {
    conn.close();
    throw err;
  }
}

async function closedWithin(reader: FrameReader, ms: number): Promise<boolean> {
  return await waitFor(async () => {
    try {
      return await reader.readMessage() === null;
    } catch {
      return true; // Reset or closed under us: closed either way.
    }
  }, ms);
}

async function expectRemoteError(promise: Promise<unknown>, code: string): Promise<RemoteError> {
  const err = await promise.then(() => null, (e) => e);
  assert.ok(err instanceof RemoteError, `expected ${code}, got ${err}`);
  assert.equal(err.code, code, err.message);
  return err;
}

Deno.test("connections past --max-connections get BUSY at once; freed slots are reused", async () => {
  const server = await startServer(["--max-connections", "3"]);
  try {
    const held = await Promise.all([1, 2, 3].map(() => RawClient.open(server.port)));
    const refused = await firstMessage(server.port);
    assert.equal(refused.message?.type, "fatal");
    assert.equal(refused.message?.code, "BUSY");
    assert.match(String(refused.message?.message), /limit of 3 connections/);
    assert.ok(await closedWithin(refused.reader, 5_000));
    refused.conn.close();
    const viaClient = await runCommand(server, ["ls"]);
    assert.equal(viaClient.code, 3);
    assert.match(viaClient.stderr, /refused the connection: BUSY/);
    held[0]!.close();
    assert.ok(await waitFor(async () => (await runCommand(server, ["ls"])).code === 0, 10_000));
    for (const client of held) client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("connections from one address past --max-connections-per-peer get BUSY", async () => {
  const server = await startServer(["--max-connections-per-peer", "2"]);
  try {
    const held = await Promise.all([1, 2].map(() => RawClient.open(server.port)));
    const refused = await firstMessage(server.port);
    assert.equal(refused.message?.code, "BUSY");
    assert.match(String(refused.message?.message), /limit per peer/);
    refused.conn.close();
    for (const client of held) client.close();
  } finally {
    await server.stop();
  }
});

Deno.test("a peer that never finishes the handshake, or trickles it, is cut off at the deadline", async () => {
  const server = await startServer(["--handshake-timeout", "1"]);
  try {
    const silent = await firstMessage(server.port);
    assert.equal(silent.message?.type, "hello");
    assert.ok(await closedWithin(silent.reader, 10_000), "a silent peer was not closed");
    silent.conn.close();

    // One byte of the client's hello every 200 ms: still cut off at the deadline.
    const trickle = await firstMessage(server.port);
    let cutOff = false;
    for (let i = 0; i < 50 && !cutOff; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      cutOff = await trickle.conn.write(new Uint8Array([0])).then(() => false, () => true);
    }
    assert.ok(
      cutOff || await closedWithin(trickle.reader, 5_000),
      "a trickling peer was not closed",
    );
    trickle.conn.close();
    assert.equal((await runCommand(server, ["ls"])).code, 0);
  } finally {
    await server.stop();
  }
});

Deno.test("an idle session, and an upload that stalls, are closed after --idle-timeout", async () => {
  const server = await startServer(["--idle-timeout", "1"]);
  try {
    const idle = await RawClient.open(server.port);
    assert.ok(await closedWithin(idle.reader, 10_000), "an idle session was not closed");
    idle.close();

    const stalled = await RawClient.open(server.port);
    const go = await stalled.request({ op: "upload", name: "s.bin", size: 1000, overwrite: false });
    assert.equal(go?.type, "continue");
    await stalled.sendBytes(new Uint8Array(10));
    assert.ok(await closedWithin(stalled.reader, 10_000), "a stalled upload was not closed");
    stalled.close();
    assert.ok(
      await waitFor(async () => (await listTree(server.root)).join() === EMPTY_ROOT.join()),
    );
  } finally {
    await server.stop();
  }
});

Deno.test("--max-file-size, --max-control-bytes and --read-only are enforced", async () => {
  const server = await startServer(["--max-file-size", "1K", "--max-control-bytes", "8192"]);
  const readOnly = await startServer(["--read-only"]);
  try {
    const connection = await FtsConnection.open("127.0.0.1", server.port);
    const big = join(server.dir, "big.bin");
    await Deno.writeFile(big, new Uint8Array(1025));
    const tooLarge = await expectRemoteError(connection.upload(big, "big.bin"), "TOO_LARGE");
    assert.match(tooLarge.message, /limit of 1024/);
    await Deno.writeFile(big, new Uint8Array(1024));
    assert.equal((await connection.upload(big, "big.bin")).size, 1024);
    await connection.logout();

    const raw = await RawClient.open(server.port);
    await raw.sendBytes(new Uint8Array([0, 0, 0x27, 0x10])); // A 10,000-byte frame.
    const fatal = await raw.reader.readMessage();
    assert.equal(fatal?.code, "TOO_LARGE");
    assert.match(String(fatal?.message), /limit of 8192/);
    raw.close();

    await Deno.writeTextFile(join(readOnly.root, "present.txt"), "here");
    await Deno.writeTextFile(join(readOnly.dir, "new.txt"), "new");
    const put = await runCommand(readOnly, ["put", "new.txt"]);
    assert.equal(put.code, 1);
    assert.match(put.stderr, /DENIED: this server is read-only/);
    assert.match((await runCommand(readOnly, ["rm", "present.txt"])).stderr, /read-only/);
    const mkdir = await runCommand(readOnly, ["mkdir", "d"]);
    assert.equal(mkdir.code, 1);
    assert.match(mkdir.stderr, /DENIED: this server is read-only: mkdir is refused/);
    const rename = await runCommand(readOnly, ["mv", "present.txt", "moved.txt"]);
    assert.equal(rename.code, 1);
    assert.match(rename.stderr, /DENIED: this server is read-only: rename is refused/);
    assert.equal((await runCommand(readOnly, ["get", "present.txt"])).code, 0);
    assert.deepEqual(await listTree(readOnly.root), [...EMPTY_ROOT, "present.txt"].sort());
  } finally {
    await server.stop();
    await readOnly.stop();
  }
});

Deno.test("--quota counts what the root holds, in flight too; deletes give space back", async () => {
  // A root that already holds 4 KiB when the server starts.
  const existing = await Deno.makeTempDir({ prefix: "fts-quota-" });
  const root = join(existing, "root");
  await Deno.mkdir(root);
  await Deno.writeFile(join(root, "existing.bin"), new Uint8Array(4096));
  const server = await startServer(["--quota", "10K", "--root", root]);
  try {
    const connection = await FtsConnection.open("127.0.0.1", server.port);
    const file = join(server.dir, "four.bin");
    await Deno.writeFile(file, new Uint8Array(4096));
    await connection.upload(file, "a.bin");
    const full = await expectRemoteError(connection.upload(file, "b.bin"), "NO_SPACE");
    assert.match(full.message, /quota of 10240 bytes/);
    await connection.upload(file, "a.bin", { overwrite: true }); // Replacing costs nothing more.
    await connection.delete("existing.bin");
    await connection.upload(file, "b.bin");
    await connection.logout();
    assert.deepEqual(
      (await listTree(root)).filter((p) => !p.startsWith(".fts")),
      ["a.bin", "b.bin"],
    );
  } finally {
    await server.stop();
    await Deno.remove(existing, { recursive: true });
  }
});

Deno.test("an upload that would eat into --reserve is refused with NO_SPACE before any data", async () => {
  const server = await startServer(["--reserve", "8000T"]);
  try {
    await Deno.writeTextFile(join(server.dir, "x.txt"), "x");
    const run = await runCommand(server, ["put", "x.txt"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /NO_SPACE: .*reserve/);
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
  } finally {
    await server.stop();
  }
});

Deno.test("a disk that really fills mid-upload gives NO_SPACE and leaves nothing half-written", async () => {
  await using tmpfs = await mountTmpfs("8m");
  if (tmpfs === null) return;
  const mount = tmpfs.path;
  const root = join(mount, "root");
  const server = await startServer(["--root", root, "--reserve", "0"]);
  try {
    const size = 6 * 1024 * 1024;
    const data = new Uint8Array(size).fill(7);
    const client = await RawClient.open(server.port);
    const go = await client.request({ op: "upload", name: "big.bin", size, overwrite: false });
    assert.equal(go?.type, "continue", JSON.stringify(go));
    // Another program fills the disk after the server's check: only 2 MiB stay free.
    await Deno.writeFile(join(mount, "filler"), new Uint8Array(3 * 1024 * 1024));
    await client.sendBytes(data);
    const sha256 = createHash("sha256").update(data).digest("hex");
    await client.send({ type: "trailer", id: 1, sha256 });
    const reply = await client.reader.readMessage();
    assert.equal(reply?.ok, false, JSON.stringify(reply));
    assert.equal((reply?.error as { code: string }).code, "NO_SPACE");
    assert.deepEqual(await listTree(root), EMPTY_ROOT);
    // Space comes back; the same connection carries on.
    await Deno.remove(join(mount, "filler"));
    const small = new TextEncoder().encode("fits now");
    const again = await client.request({ op: "upload", name: "ok.txt", size: small.length });
    assert.equal(again?.type, "continue");
    await client.sendBytes(small);
    await client.send({
      type: "trailer",
      id: 2,
      sha256: createHash("sha256").update(small).digest("hex"),
    });
    assert.equal((await client.reader.readMessage())?.ok, true);
    client.close();
    // Declared sizes larger than the disk are refused before any data.
    const tooBig = await RawClient.open(server.port);
    const refused = await tooBig.request({
      op: "upload",
      name: "huge.bin",
      size: 64 * 1024 * 1024,
    });
    assert.equal((refused?.error as { code: string }).code, "NO_SPACE");
    tooBig.close();
  } finally {
    await server.stop();
  }
});

Deno.test("size() reads byte sizes with binary suffixes", () => {
  assert.equal(size("1024", "--x"), 1024);
  assert.equal(size("64M", "--x"), 64 * 1024 * 1024);
  assert.equal(size("2g", "--x"), 2 * 1024 ** 3);
  assert.equal(size("512KiB", "--x"), 512 * 1024);
  assert.throws(() => size("1.5G", "--x"), /must be a size/);
  assert.throws(() => size("-1", "--x"), /must be a size/);
});
