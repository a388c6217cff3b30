/**
 * A session left waiting for its next command outlives the server's idle
 * timeout: the client pings while it waits, and the remote directory is kept.
 */

import assert from "node:assert/strict";
import { FTS_RUN_FLAGS, PROJECT_DIR, startServer } from "./_helpers.ts";
import { join } from "node:path";
import { testInShell } from "./_tmux.ts";

/** The server's idle timeout in these tests, in seconds (its least). */
const IDLE_TIMEOUT_S = 1;
/** How long the session is left waiting: several idle timeouts. */
const LEFT_IDLE_MS = 3500;

Deno.test("a piped session left idle past --idle-timeout still runs the next command in its directory", async () => {
  const server = await startServer(["--idle-timeout", String(IDLE_TIMEOUT_S)]);
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "connect",
        `127.0.0.1:${server.port}`,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    const encoder = new TextEncoder();
    await writer.write(encoder.encode("mkdir kept\ncd kept\n"));
    await new Promise((resolve) => setTimeout(resolve, LEFT_IDLE_MS));
    await writer.write(encoder.encode("pwd\nmkdir inside\n"));
    await writer.close();
    const output = await child.output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.match(stdout, /^\/kept$/m);
    assert.ok((await Deno.stat(join(server.root, "kept", "inside"))).isDirectory);
    assert.doesNotMatch(server.log(), /idle/i, "the server closed nothing as idle");
  } finally {
    await server.stop();
  }
});

testInShell(
  "the interactive prompt left idle past --idle-timeout still runs the next command",
  async (server, term) => {
    await term.line("mkdir away");
    // Keys typed while a command runs are dropped: wait for the prompt again.
    assert.ok(await term.waitFor(/mkdir away[\s\S]*fts:\/>/), await term.screen());
    await term.line("cd away");
    assert.ok(await term.waitFor(/fts:\/away>/), await term.screen());
    await new Promise((resolve) => setTimeout(resolve, LEFT_IDLE_MS));
    await term.line("mkdir back");
    assert.ok(
      await term.waitFor(/fts:\/away> mkdir back[\s\S]*fts:\/away>/),
      await term.screen(),
    );
    assert.ok((await Deno.stat(join(server.root, "away", "back"))).isDirectory);
    assert.doesNotMatch(await term.screen(), /closed the connection/);
    await term.line("quit");
    assert.ok(await term.waitFor(/exit status 0/), await term.screen());
  },
  { serverArgs: ["--idle-timeout", String(IDLE_TIMEOUT_S)] },
);

testInShell(
  "a question left open and a local !COMMAND past --idle-timeout keep the session",
  async (server, term) => {
    await term.line("rm a.log b.log");
    assert.ok(await term.waitFor(/Remove 2 files\? \[y\/N\]/), await term.screen());
    await new Promise((resolve) => setTimeout(resolve, LEFT_IDLE_MS));
    await term.line("y");
    assert.ok(await term.waitFor(/deleted b\.log\n/), await term.screen());
    await assert.rejects(Deno.stat(join(server.root, "a.log")), Deno.errors.NotFound);
    const seconds = Math.ceil(LEFT_IDLE_MS / 1000);
    await term.line(`!sleep ${seconds}`);
    assert.ok(await term.waitFor(/fts:\/>\s*$/m, LEFT_IDLE_MS + 20_000), await term.screen());
    await term.line("mkdir after");
    assert.ok(await term.waitFor(/created after\//), await term.screen());
    // Nothing was lost and found again: no reconnect, no closed connection.
    assert.doesNotMatch(await term.screen(), /connection lost|closed the connection/);
    await term.line("quit");
    assert.ok(await term.waitFor(/exit status 0/), await term.screen());
  },
  {
    serverArgs: ["--idle-timeout", String(IDLE_TIMEOUT_S)],
    before: async (server) => {
      await Deno.writeTextFile(join(server.root, "a.log"), "a");
      await Deno.writeTextFile(join(server.root, "b.log"), "b");
    },
  },
);
