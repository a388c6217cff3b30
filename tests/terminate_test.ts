import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { identityWithoutAuth, isLoopback } from "../server/session.ts";
import { join } from "node:path";
import { FTS_RUN_FLAGS, PROJECT_DIR, RawClient, runCommand, startServer } from "./_helpers.ts";

async function exists(path: string): Promise<boolean> {
  return await Deno.stat(path).then(() => true, () => false);
}

Deno.test("terminate from this host stops the server, exit 0, port file removed", async () => {
  const server = await startServer();
  try {
    assert.equal((await Deno.readTextFile(server.portFile)).trim(), String(server.port));
    assert.match(await Deno.readTextFile(server.portFile), /^\d+\n$/);
    const idle = await RawClient.open(server.port); // An idle session must not hold shutdown up.
    const run = await runCommand(server, ["terminate"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(await server.exited, 0);
    assert.equal(await exists(server.portFile), false);
    assert.equal(await idle.reader.readMessage().catch(() => null), null);
    idle.close();
    assert.match(server.log(), /terminate .*ok/);
  } finally {
    await server.stop();
  }
});

Deno.test("SIGTERM and SIGINT stop the server cleanly and remove the port file", async () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    const server = await startServer();
    try {
      server.process.kill(signal);
      assert.equal(await server.exited, 0, signal);
      assert.equal(await exists(server.portFile), false, signal);
    } finally {
      await server.stop();
    }
  }
});

Deno.test("a server whose log reader has gone (serve | tee, then Ctrl-C) still stops cleanly", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-gone-reader-" });
  try {
    const portFile = join(dir, "port");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "serve",
        "--no-auth",
        "--root",
        join(dir, "root"),
        "--port-file",
        portFile,
        "--state-dir",
        join(dir, "state"),
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!/fts: serving/.test(seen)) {
      const { value, done } = await lines.read();
      if (done) break;
      seen += value;
    }
    // The log's reader goes away, as tee does at Ctrl-C.
    await child.stderr.cancel();
    await lines.cancel();
    child.kill("SIGINT");
    const status = await child.status;
    assert.equal(status.code, 0);
    assert.equal(await exists(portFile), false);
    assert.equal(await exists(`${portFile}.json`), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("terminate lets an upload in flight finish before the server exits", async () => {
  const server = await startServer();
  try {
    const uploader = await RawClient.open(server.port);
    const data = new TextEncoder().encode("finished during shutdown");
    const go = await uploader.request({
      op: "upload",
      name: "late.txt",
      size: data.length,
      overwrite: false,
    });
    assert.equal(go?.type, "continue");
    await uploader.sendBytes(data.subarray(0, 5));

    assert.equal((await runCommand(server, ["terminate"])).code, 0);
    // The server stops accepting at once...
    await assert.rejects(RawClient.open(server.port));
    // ...but the transfer in flight completes and is acknowledged.
    await uploader.sendBytes(data.subarray(5));
    const sha256 = createHash("sha256").update(data).digest("hex");
    await uploader.send({ type: "trailer", id: 1, sha256 });
    const reply = await uploader.reader.readMessage();
    assert.equal(reply?.ok, true, JSON.stringify(reply));
    uploader.close();
    assert.equal(await server.exited, 0);
    assert.equal(await Deno.readTextFile(`${server.root}/late.txt`), "finished during shutdown");
  } finally {
    await server.stop();
  }
});

Deno.test("a transfer that outlasts --shutdown-grace is cut off, leaves nothing, and the server exits 0", async () => {
  const server = await startServer(["--shutdown-grace", "1"]);
  try {
    const stalled = await RawClient.open(server.port);
    const go = await stalled.request({
      op: "upload",
      name: "stuck.bin",
      size: 1000,
      overwrite: false,
    });
    assert.equal(go?.type, "continue");
    await stalled.sendBytes(new Uint8Array(10)); // Then nothing more: it would hold shutdown forever.
    const started = performance.now();
    assert.equal((await runCommand(server, ["terminate"])).code, 0);
    assert.equal(await server.exited, 0);
    // Bounded by the grace period (1 s), not by the idle timeout (5 minutes).
    assert.ok(performance.now() - started < 30_000);
    assert.equal(
      await stalled.reader.readMessage().catch(() => null),
      null,
      "the session was closed",
    );
    stalled.close();
    assert.equal(await exists(`${server.root}/stuck.bin`), false);
    assert.equal(await exists(server.portFile), false);
  } finally {
    await server.stop();
  }
});

Deno.test("isLoopback() accepts only this host's addresses", () => {
  for (const address of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) {
    assert.equal(isLoopback(address), true, address);
  }
  for (const address of ["10.0.0.1", "192.168.1.1", "::", "0.0.0.0", "fe80::1", "128.0.0.1"]) {
    assert.equal(isLoopback(address), false, address);
  }
});

Deno.test("identityWithoutAuth() lets this host terminate and other hosts only write", () => {
  assert.equal(identityWithoutAuth("127.0.0.1").role, "admin");
  assert.equal(identityWithoutAuth("::1").role, "admin");
  for (const address of ["10.0.0.1", "192.168.1.20", "2001:db8::1"]) {
    assert.equal(identityWithoutAuth(address).role, "write", address);
  }
});
