import assert from "node:assert/strict";
import { join } from "node:path";
import { SOFTWARE_VERSION } from "../protocol/limits.ts";
import { FTS_RUN_FLAGS, PROJECT_DIR, runClient, startServer } from "./_helpers.ts";

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

Deno.test("a second server on the same root is refused and leaves the first one's state alone", async () => {
  const first = await startServer();
  try {
    const pending = join(first.root, ".fts", "tmp", "in-flight");
    await Deno.writeTextFile(pending, "partial upload of the first server");
    const run = await fts("serve", "--root", first.root, "--port-file", join(first.dir, "port2"));
    assert.equal(run.code, 1);
    assert.match(run.stderr, /another fts server is already serving/);
    assert.equal(await Deno.readTextFile(pending), "partial upload of the first server");
    assert.equal((await runClient([`127.0.0.1:${first.port}`, "ls"])).code, 0);
  } finally {
    await first.stop();
  }
});
