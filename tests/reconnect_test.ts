/**
 * A session outlives its connection: when the server is killed and started
 * again, or the network between them is cut, the client connects again,
 * in the same remote directory, and the command goes on (repeated,
 * resumed, or, when it may not be repeated, reported as unknown).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type DelayRelay, startDelayRelay } from "../scripts/bench_relay.ts";
import {
  FTS_RUN_FLAGS,
  PROJECT_DIR,
  type RunningServer,
  serverTmpDir,
  sha256File,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";
import { HAS_TMUX, openShell, type Terminal } from "./_tmux.ts";

// CI installs tmux (.ci/run); elsewhere these tests say plainly that they did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

/** The slow link a transfer crosses until the test cuts it: the transfer is still running then. */
const SLOW_BYTES_PER_SECOND = 2 << 20;

/** Large enough to be running still, on the slow link, when the test cuts it. */
const BIG_FILE_BYTES = 64 << 20;

/** A progress line of big.bin, with some data moved (so there is something to resume from). */
const MOVING = /big\.bin {2}[\d.]+ (?:KiB|MiB) \/ 64\.0 MiB {2}\d+%/;

/** How long a piped client may take to answer a line the test waits for. */
const PIPED_ANSWER_TIMEOUT_MS = 20_000;

/** A port nobody listens on just now, for a server that is to be started again on it. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Kills the server with SIGKILL, as a crash would, and waits for it to be gone. */
async function killServer(server: RunningServer): Promise<void> {
  server.process.kill("SIGKILL");
  await server.exited;
}

/** `fts connect` with its commands from a pipe, which the test writes line by line. */
class PipedShell {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  #stdout = "";
  #stderr = "";
  readonly #done: Promise<void>;

  constructor(cwd: string, args: string[]) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts"), "connect", ...args],
      cwd,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#writer = this.#child.stdin.getWriter();
    const collect = async (stream: ReadableStream<Uint8Array>, add: (text: string) => void) => {
      for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
    };
    this.#done = Promise.all([
      collect(this.#child.stdout, (text) => this.#stdout += text),
      collect(this.#child.stderr, (text) => this.#stderr += text),
    ]).then(() => {});
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Sends one line of input. */
  async line(text: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(text + "\n"));
  }

  /** Sends SIGINT, as Ctrl-C in a terminal would. */
  interrupt(): void {
    this.#child.kill("SIGINT");
  }

  /** Ends the input and waits for the client to exit; resolves with its exit code. */
  async finish(): Promise<number> {
    await this.#writer.close().catch(() => {});
    const status = await this.#child.status;
    await this.#done;
    return status.code;
  }

  /** Kills the client if it still runs (a failed test), and waits for it. */
  async close(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await this.#writer.close().catch(() => {});
    await this.#child.status;
    await this.#done;
  }
}

/** How {@link withRestartedServer} runs the server and the shell. */
interface RestartOptions {
  /** Arguments of the server as it is first started. */
  first?: string[];
  /** Arguments of the server started again after it was killed; null: it is not. */
  again: string[] | null;
  /** Serve with authentication (a token is then needed). */
  auth?: boolean;
  /** Options of `fts connect` before the address. */
  client?: string[];
}

/**
 * A server killed (and, unless `again` is null, started again on its port
 * and root) while a piped shell waits in `sub`; `body` gets the shell and
 * the server now on the port (the killed one when none was started again).
 */
async function withRestartedServer(
  options: RestartOptions,
  body: (shell: PipedShell, server: RunningServer) => Promise<void>,
): Promise<void> {
  const port = freePort();
  const serverOptions = { auth: options.auth ?? false };
  const first = await startServer(["--port", String(port), ...options.first ?? []], serverOptions);
  let second: RunningServer | null = null;
  const shell = new PipedShell(first.dir, [...options.client ?? [], `127.0.0.1:${port}`]);
  try {
    await Deno.mkdir(join(first.root, "sub"));
    await Deno.writeTextFile(join(first.root, "sub", "marker.txt"), "here");
    await shell.line("cd sub");
    await shell.line("pwd");
    assert.ok(
      await waitFor(() => /^\/sub$/m.test(shell.stdout), PIPED_ANSWER_TIMEOUT_MS),
      shell.stderr,
    );
    await killServer(first);
    if (options.again !== null) {
      second = await startServer(["--port", String(port), ...options.again], {
        ...serverOptions,
        dir: first.dir,
      });
    }
    await body(shell, second ?? first);
  } finally {
    await shell.close();
    await second?.stop();
    await first.stop();
  }
}

Deno.test("a piped shell reconnects to a server started again on its port, in the same directory", async () => {
  await withRestartedServer({ again: [] }, async (shell) => {
    await shell.line("ls");
    await shell.line("pwd");
    assert.equal(await shell.finish(), 0, shell.stderr);
    assert.match(shell.stdout, /^file\s+4 .* marker\.txt\n\/sub\n$/m);
    assert.match(
      shell.stderr,
      /^fts: connection lost during ls; reconnected \(\d+ attempts?\); running it again\n$/,
    );
  });
});

Deno.test("a piped shell gives up on a server that does not come back, with exit code 3", async () => {
  await withRestartedServer({ again: null }, async (shell) => {
    await shell.line("ls");
    await shell.line("pwd");
    assert.equal(await shell.finish(), 3, shell.stderr);
    // A wait this long is not silent: one line when the first attempt fails, one when it gives up.
    assert.match(
      shell.stderr,
      /^fts: connection lost during ls; reconnecting \(Ctrl-C stops\)\nfts: line 3: .*; could not reconnect \(8 attempts in [\d.]+ s\): cannot connect to 127\.0\.0\.1:\d+: connection refused/m,
    );
    assert.doesNotMatch(shell.stdout, /marker/);
  });
});

Deno.test("a reconnect the server refuses (the token no longer accepted) is not tried again", async () => {
  const [kept, revoked] = ["kept-token-0123456789", "revoked-token-0123456789"];
  await withRestartedServer(
    {
      first: ["--token", revoked],
      again: ["--token", kept],
      auth: true,
      client: ["--token", revoked],
    },
    async (shell, server) => {
      await shell.line("ls");
      assert.equal(await shell.finish(), 3, shell.stderr);
      assert.match(
        shell.stderr,
        /^fts: line 3: .*; reconnecting was refused: 127\.0\.0\.1:\d+: the token was not accepted\n$/,
      );
      assert.equal(server.log().match(/ auth DENIED/g)?.length, 1, server.log());
    },
  );
});

Deno.test("Ctrl-C while the shell waits to reconnect stops it, with exit code 130", async () => {
  await withRestartedServer({ again: null }, async (shell, server) => {
    // On the server's port now: a listener that closes each connection at once, so that the
    // test sees the client trying to reconnect, and the client goes on waiting to try again.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: server.port });
    let tries = 0;
    const accepting = (async () => {
      for await (const conn of listener) {
        tries += 1;
        conn.close();
      }
    })().catch(() => {});
    try {
      await shell.line("ls");
      assert.ok(await waitFor(() => tries > 0, PIPED_ANSWER_TIMEOUT_MS), shell.stderr);
      shell.interrupt();
      assert.equal(await shell.finish(), 130, shell.stderr);
      assert.match(shell.stderr, /^fts: line 3: Interrupt: stopped reconnecting$/m);
    } finally {
      listener.close();
      await accepting;
    }
  });
});

Deno.test({
  name:
    "the interactive shell reconnects to a server killed and started again, and ls works in the same directory",
  ignore,
  async fn() {
    const port = freePort();
    const first = await startServer(["--port", String(port)]);
    let second: RunningServer | null = null;
    const home = await Deno.makeTempDir();
    const term = await openShell(first.dir, port, home);
    try {
      await Deno.mkdir(join(first.root, "sub"));
      await Deno.writeTextFile(join(first.root, "sub", "marker.txt"), "here");
      await term.line("cd sub");
      assert.ok(await term.waitFor(/^fts:\/sub>\s*$/m), await term.screen());
      await killServer(first);
      second = await startServer(["--port", String(port)], { dir: first.dir });
      await term.line("ls");
      assert.ok(
        await term.waitFor(
          /fts:\/sub> ls\nfts: connection lost during ls; reconnected \(\d+ attempts?\); running it again\nfile\s+4 .* marker\.txt\nfts:\/sub>\s*$/m,
        ),
        await term.screen(),
      );
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await second?.stop();
      await first.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

/** A server behind a slow relay that the test can cut, and a shell connected through it. */
function testThroughRelay(
  name: string,
  body: (server: RunningServer, relay: DelayRelay, term: Terminal) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore,
    async fn() {
      const server = await startServer();
      const relay = await startDelayRelay(server.port, 0);
      relay.limitRate(SLOW_BYTES_PER_SECOND);
      const home = await Deno.makeTempDir();
      try {
        const term = await openShell(server.dir, relay.port, home);
        try {
          await body(server, relay, term);
        } finally {
          await term.close();
        }
      } finally {
        await relay.close();
        await server.stop();
        await Deno.remove(home, { recursive: true });
      }
    },
  });
}

testThroughRelay(
  "a download cut off mid-file resumes on a new connection and arrives byte for byte",
  async (server, relay, term) => {
    await Deno.mkdir(join(server.root, "d"));
    const sum = await writeRandomFile(join(server.root, "d", "big.bin"), BIG_FILE_BYTES);
    await term.line("cd d");
    assert.ok(await term.waitFor(/^fts:\/d>\s*$/m), await term.screen());
    await term.line("get big.bin");
    assert.ok(await term.waitFor(MOVING), await term.screen());
    relay.cut();
    relay.limitRate(null);
    assert.ok(
      await term.waitFor(
        /fts: connection lost during get; reconnected \(\d+ attempts?\); resuming: get --resume big\.bin big\.bin\n/,
      ),
      await term.screen(),
    );
    assert.ok(
      await term.waitFor(
        /downloaded d\/big\.bin -> big\.bin: 64\.0 MiB in .* resumed at [\d.]+ [KM]iB.*\nfts:\/d>\s*$/m,
      ),
      await term.screen(),
    );
    assert.equal(await sha256File(join(server.dir, "big.bin")), sum);
  },
);

testThroughRelay(
  "an upload cut off mid-file resumes from what the server kept and arrives byte for byte",
  async (server, relay, term) => {
    const sum = await writeRandomFile(join(server.dir, "big.bin"), BIG_FILE_BYTES);
    await Deno.mkdir(join(server.root, "up"));
    await term.line("cd up");
    assert.ok(await term.waitFor(/^fts:\/up>\s*$/m), await term.screen());
    await term.line("put big.bin");
    assert.ok(await term.waitFor(MOVING), await term.screen());
    relay.cut();
    relay.limitRate(null);
    assert.ok(
      await term.waitFor(
        /fts: connection lost during put; reconnected \(\d+ attempts?\); resuming: put --resume big\.bin big\.bin\n/,
      ),
      await term.screen(),
    );
    assert.ok(
      await term.waitFor(
        /uploaded big\.bin -> up\/big\.bin: 64\.0 MiB in .* resumed at [\d.]+ [KM]iB.*\nfts:\/up>\s*$/m,
      ),
      await term.screen(),
    );
    assert.equal(await sha256File(join(server.root, "up", "big.bin")), sum);
  },
);

testThroughRelay(
  "a tree download cut off mid-way goes on with the files left and every one arrives whole",
  async (server, relay, term) => {
    const sums = new Map<string, string>();
    await Deno.mkdir(join(server.root, "tree"));
    for (const name of ["a.bin", "b.bin", "c.bin"]) {
      sums.set(name, await writeRandomFile(join(server.root, "tree", name), 8 << 20));
    }
    await term.line("get -r tree copy");
    // The cut comes once the second file is moving (the first may wait to commit with it).
    assert.ok(
      await waitFor(
        () =>
          Deno.stat(join(server.dir, "copy", ".b.bin.fts-partial"))
            .then((info) => info.size > 0, () => false),
        PIPED_ANSWER_TIMEOUT_MS,
      ),
      await term.screen(),
    );
    relay.cut();
    relay.limitRate(null);
    assert.ok(
      await term.waitFor(
        /fts: connection lost during get; reconnected \(\d+ attempts?\); [01] of 3 files done, resuming the rest\n/,
      ),
      await term.screen(),
    );
    assert.ok(
      await term.waitFor(/downloaded [23] files, (?:16|24)\.0 MiB in .*verified\nfts:\/>\s*$/m),
      await term.screen(),
    );
    assert.match(
      await term.screen(),
      /downloaded tree\/b\.bin -> copy\/b\.bin: 8\.0 MiB, resumed at /,
    );
    for (const [name, sum] of sums) {
      assert.equal(await sha256File(join(server.dir, "copy", name)), sum, name);
    }
  },
);

testThroughRelay(
  "a tree upload cut off mid-way goes on with the files left and every one arrives whole",
  async (server, relay, term) => {
    const sums = new Map<string, string>();
    await Deno.mkdir(join(server.dir, "tree"));
    for (const name of ["a.bin", "b.bin", "c.bin"]) {
      sums.set(name, await writeRandomFile(join(server.dir, "tree", name), 8 << 20));
    }
    await term.line("put -r tree up");
    assert.ok(await term.waitFor(/3 files {2}[\d.]+ MiB \/ 24\.0 MiB/), await term.screen());
    // Past the first file: the second is moving.
    assert.ok(await term.waitFor(/3 files {2}(?:9|1\d)\.\d MiB \/ 24\.0 MiB/), await term.screen());
    relay.cut();
    relay.limitRate(null);
    assert.ok(
      await term.waitFor(
        /fts: connection lost during put; reconnected \(\d+ attempts?\); [01] of 3 files done, resuming the rest\n/,
      ),
      await term.screen(),
    );
    assert.ok(
      await term.waitFor(/uploaded [23] files, (?:16|24)\.0 MiB in .*verified\nfts:\/>\s*$/m),
      await term.screen(),
    );
    for (const [name, sum] of sums) {
      assert.equal(await sha256File(join(server.root, "up", name)), sum, name);
    }
  },
);

/** Files of the tree that `rm -r` is deleting when the connection is cut. */
const TREE_FILES = 200;

/**
 * A link slow enough that deleting {@link TREE_FILES} files one request at a
 * time takes seconds, so that the cut finds rm in the middle.
 */
const RM_BYTES_PER_SECOND = 4 << 10;

Deno.test("rm in flight when the connection drops is not run again: its outcome is reported unknown", async () => {
  const server = await startServer();
  const relay = await startDelayRelay(server.port, 0);
  const tree = join(server.root, "tree");
  await Deno.mkdir(tree);
  for (let i = 0; i < TREE_FILES; i++) await Deno.writeTextFile(join(tree, `f${i}.txt`), "x");
  const left = () => [...Deno.readDirSync(tree)].length;
  const shell = new PipedShell(server.dir, [`127.0.0.1:${relay.port}`]);
  try {
    relay.limitRate(RM_BYTES_PER_SECOND);
    // A line starting with '-' may fail without ending the script.
    await shell.line("-rm -r tree");
    assert.ok(await waitFor(() => left() < TREE_FILES, PIPED_ANSWER_TIMEOUT_MS), shell.stderr);
    relay.cut();
    relay.limitRate(null);
    await shell.line("ls tree");
    assert.equal(await shell.finish(), 0, shell.stderr);
    assert.match(
      shell.stderr,
      /^fts: line 1: connection lost during rm; reconnected \(\d+ attempts?\); rm was not run again: whether it took effect is unknown \(check with ls or stat\)\n$/,
    );
    // Run again, rm -r would have deleted the whole tree.
    const remaining = left();
    assert.ok(remaining > 0 && remaining < TREE_FILES, `${remaining} files left`);
    assert.equal(shell.stdout.trim().split("\n").length, remaining, shell.stdout);
  } finally {
    await shell.close();
    await relay.close();
    await server.stop();
  }
});

Deno.test("a one-shot get cut off mid-file resumes on a new connection and exits 0", async () => {
  const server = await startServer();
  const relay = await startDelayRelay(server.port, 0);
  relay.limitRate(SLOW_BYTES_PER_SECOND);
  try {
    const sum = await writeRandomFile(join(server.root, "big.bin"), BIG_FILE_BYTES);
    const client = new PipedShell(server.dir, [`127.0.0.1:${relay.port}`, "get", "big.bin"]);
    try {
      const partial = join(server.dir, ".big.bin.fts-partial");
      const held = () => Deno.stat(partial).then((info) => info.size, () => 0);
      assert.ok(await waitFor(async () => await held() > 0, PIPED_ANSWER_TIMEOUT_MS));
      relay.cut();
      relay.limitRate(null);
      assert.equal(await client.finish(), 0, client.stderr);
      assert.match(
        client.stderr,
        /^fts: connection lost during get; reconnected \(\d+ attempts?\); resuming: get --resume big\.bin big\.bin\n$/,
      );
      assert.match(client.stdout, /^downloaded big\.bin -> big\.bin: 64\.0 MiB .* resumed at /);
      assert.equal(await sha256File(join(server.dir, "big.bin")), sum);
    } finally {
      await client.close();
    }
  } finally {
    await relay.close();
    await server.stop();
  }
});

Deno.test("a one-shot put -f cut off mid-file resumes as put -f, replacing the file it was to replace", async () => {
  const server = await startServer();
  const relay = await startDelayRelay(server.port, 0);
  relay.limitRate(SLOW_BYTES_PER_SECOND);
  try {
    await Deno.writeTextFile(join(server.root, "big.bin"), "the old version");
    const sum = await writeRandomFile(join(server.dir, "big.bin"), BIG_FILE_BYTES);
    const client = new PipedShell(server.dir, [`127.0.0.1:${relay.port}`, "put", "-f", "big.bin"]);
    const tmpDir = await serverTmpDir(server);
    try {
      const written = () =>
        [...Deno.readDirSync(tmpDir)].some((entry) =>
          Deno.statSync(join(tmpDir, entry.name)).size > 0
        );
      assert.ok(await waitFor(() => Promise.resolve(written()), PIPED_ANSWER_TIMEOUT_MS));
      relay.cut();
      relay.limitRate(null);
      assert.equal(await client.finish(), 0, client.stderr);
      assert.match(client.stderr, /resuming: put -f --resume big\.bin big\.bin\n$/);
      assert.equal(await sha256File(join(server.root, "big.bin")), sum);
    } finally {
      await client.close();
    }
  } finally {
    await relay.close();
    await server.stop();
  }
});
