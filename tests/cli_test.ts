import assert from "node:assert/strict";
import { join } from "node:path";
import { SOFTWARE_VERSION } from "../protocol/limits.ts";
import { FTS_RUN_FLAGS, PROJECT_DIR, runClient, serverTmpDir, startServer } from "./_helpers.ts";

async function fts(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts"), ...args],
    stdin: "null",
  }).output();
  const decoder = new TextDecoder();
  return {
    code: output.code,
    stdout: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

Deno.test("fts --help, serve --help, connect --help and --version answer without a server", async () => {
  const help = await fts("--help");
  assert.equal(help.code, 0);
  assert.match(help.stdout, /fts serve +\[--root DIR\]/);
  assert.match(help.stdout, /fts connect \[HOST\[:PORT\]\]/);
  const serveHelp = await fts("serve", "--help");
  assert.equal(serveHelp.code, 0);
  for (const flag of ["--root", "--host", "--port", "--port-file"]) {
    assert.ok(serveHelp.stdout.includes(flag), flag);
  }
  const connectHelp = await fts("connect", "--help");
  assert.equal(connectHelp.code, 0);
  for (const command of ["list", "upload", "download", "delete", "help", "logout", "terminate"]) {
    assert.ok(connectHelp.stdout.includes(command), command);
  }
  const version = await fts("--version");
  assert.equal(version.stdout.trim(), `fts ${SOFTWARE_VERSION}`);
});

Deno.test("usage errors exit 2 with one line", async () => {
  for (
    const args of [["bogus"], ["serve", "--nope"], ["serve", "--port", "99999"], [
      "connect",
      "--nope",
    ]]
  ) {
    const run = await fts(...args);
    assert.equal(run.code, 2, `${args}: ${run.stderr}`);
    assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    assert.match(run.stderr, /^fts: /);
  }
});

Deno.test("serve listens on IPv6 loopback and connect reaches it as [::1]:PORT", async () => {
  let server;
  try {
    server = await startServer(["--host", "::1"]);
  } catch (err) {
    // Some machines have no IPv6 loopback; say so rather than pass silently.
    console.warn(`IPv6 loopback unavailable, not tested: ${err}`);
    return;
  }
  try {
    const run = await runClient([`[::1]:${server.port}`, "ls"], { cwd: server.dir });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), "(empty)");
    assert.match(server.log(), /\[::1\]:\d+ list/);
  } finally {
    await server.stop();
  }
});

Deno.test("a second server on a port in use fails with a clear message", async () => {
  const first = await startServer();
  try {
    const run = await fts(
      "serve",
      "--root",
      join(first.dir, "other-root"),
      "--port",
      String(first.port),
      "--port-file",
      join(first.dir, "port2"),
    );
    assert.equal(run.code, 1);
    assert.match(run.stderr, /fts: cannot serve: .*(in use|Address)/i);
  } finally {
    await first.stop();
  }
});

Deno.test("a second server on the same root serves it too and leaves the first one's state alone", async () => {
  const first = await startServer();
  try {
    const pending = join(await serverTmpDir(first), "in-flight");
    await Deno.writeTextFile(pending, "partial upload of the first server");
    const second = await startServer([], { root: first.root });
    try {
      assert.equal(await Deno.readTextFile(pending), "partial upload of the first server");
      assert.equal((await runClient([`127.0.0.1:${first.port}`, "ls"])).code, 0);
      assert.equal((await runClient([`127.0.0.1:${second.port}`, "ls"])).code, 0);
    } finally {
      await second.stop();
    }
  } finally {
    await first.stop();
  }
});

Deno.test("connect HOST without a port reads the port file but never sends its token there", async () => {
  const server = await startServer([], { auth: true });
  try {
    assert.ok(server.token);
    const named = await runClient(["127.0.0.1", "ls"], { cwd: server.dir });
    assert.equal(named.code, 3, named.stderr);
    assert.match(named.stderr, /needs a token/);
    const local = await runClient(["ls"], { cwd: server.dir });
    assert.equal(local.code, 0, local.stderr);
    assert.equal(local.stdout.trim(), "(empty)");
    const given = await runClient(["127.0.0.1", "ls"], {
      cwd: server.dir,
      env: { FTS_TOKEN: server.token },
    });
    assert.equal(given.code, 0, given.stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("-b with a missing file, or together with a COMMAND, is a usage error", async () => {
  const server = await startServer();
  const empty = await Deno.makeTempDir();
  try {
    // Checked before connecting: here there is no port file, which would be exit 3.
    const missing = await runClient(["-b", "no-such-batch"], { cwd: empty });
    assert.equal(missing.code, 2, missing.stderr);
    assert.equal(missing.stderr.trim().split("\n").length, 1, missing.stderr);
    assert.match(missing.stderr, /^fts: -b no-such-batch: no such batch file/);
    await Deno.writeTextFile(join(server.dir, "batch"), "mkdir made-by-batch\n");
    const both = await runClient(["-b", "batch", "ls"], { cwd: server.dir });
    assert.equal(both.code, 2, both.stderr);
    assert.match(both.stderr, /^fts: -b batch runs the commands in that file: give no COMMAND/);
    await assert.rejects(Deno.stat(join(server.root, "made-by-batch")), Deno.errors.NotFound);
  } finally {
    await server.stop();
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("--json failures before or while connecting print the error document on stdout", async () => {
  const empty = await Deno.makeTempDir();
  // A port that was just free on loopback: nothing listens there.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = listener.addr.port;
  listener.close();
  const server = await startServer([], { auth: true });
  try {
    const runs = {
      "no port file": await runClient(["--json", "ls"], { cwd: empty }),
      "connection refused": await runClient([`127.0.0.1:${closedPort}`, "--json", "ls"]),
      "needs a token": await runClient([`127.0.0.1:${server.port}`, "--json", "ls"], {
        cwd: empty,
      }),
      "not accepted": await runClient(
        [`127.0.0.1:${server.port}`, "--json", "--token", "not-the-token-at-all", "ls"],
        { cwd: empty },
      ),
      "no such batch file": await runClient(["--json", "-b", "missing"], { cwd: empty }),
    };
    for (const [expected, run] of Object.entries(runs)) {
      const exitCode = expected === "no such batch file" ? 2 : 3;
      assert.equal(run.code, exitCode, `${expected}: ${run.stderr}`);
      const document = JSON.parse(run.stdout);
      assert.deepEqual(Object.keys(document), ["error"]);
      assert.deepEqual(Object.keys(document.error).sort(), ["code", "exitCode", "message"]);
      assert.equal(document.error.exitCode, exitCode);
      assert.ok(document.error.message.includes(expected), `${expected}: ${run.stdout}`);
      assert.match(run.stderr, /^fts: /);
    }
  } finally {
    await server.stop();
    await Deno.remove(empty, { recursive: true });
  }
});
