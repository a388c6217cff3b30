import assert from "node:assert/strict";
import { join } from "node:path";
import { type DelayRelay, startDelayRelay } from "../scripts/bench_relay.ts";
import { shellQuote } from "../cli/shell_quote.ts";
import {
  FTS_RUN_FLAGS,
  PROJECT_DIR,
  type RunningServer,
  sha256File,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";
import { HAS_TMUX, openShell, Terminal } from "./_tmux.ts";

// CI installs tmux (.ci/run); elsewhere these tests say plainly that they did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

/**
 * The slow link the transfers cross until the test lifts it: at this rate
 * {@link BIG_FILE_BYTES} would take half a minute, so Ctrl-C always finds the
 * transfer running.
 */
const SLOW_BYTES_PER_SECOND = 2 << 20;

/** Large enough to be running still, on the slow link, whenever the test presses Ctrl-C. */
const BIG_FILE_BYTES = 64 << 20;

/** A progress line of big.bin, with some data moved (so there is something to keep). */
const MOVING = /big\.bin {2}[\d.]+ (?:KiB|MiB) \/ 64\.0 MiB {2}\d+%/;

/** A server, with a slow relay in front of it that the shells connect through. */
interface SlowServer {
  server: RunningServer;
  relay: DelayRelay;
  home: string;
  close(): Promise<void>;
}

async function startSlowServer(): Promise<SlowServer> {
  const server = await startServer();
  const relay = await startDelayRelay(server.port, 0);
  relay.limitRate(SLOW_BYTES_PER_SECOND);
  const home = await Deno.makeTempDir();
  return {
    server,
    relay,
    home,
    async close() {
      await relay.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    },
  };
}

/**
 * A test in a shell connected through a slow relay: `body` gets both, and
 * both are closed when it ends, whatever it did.
 */
function testInSlowShell(
  name: string,
  body: (slow: SlowServer, term: Terminal) => Promise<void>,
): void {
  Deno.test({
    name,
    ignore,
    async fn() {
      const slow = await startSlowServer();
      try {
        const term = await openShell(slow.server.dir, slow.relay.port, slow.home);
        try {
          await body(slow, term);
        } finally {
          await term.close();
        }
      } finally {
        await slow.close();
      }
    },
  });
}

/** Bytes the server keeps from broken uploads. */
async function serverHeldBytes(server: RunningServer): Promise<number> {
  let bytes = 0;
  for await (const entry of Deno.readDir(join(server.root, ".fts", "partial"))) {
    bytes += (await Deno.stat(join(server.root, ".fts", "partial", entry.name))).size;
  }
  return bytes;
}

testInSlowShell(
  "Ctrl-C stops a download in the shell, keeps its partial, says how to resume, and the session goes on",
  async (slow, term) => {
    const { server } = slow;
    await Deno.mkdir(join(server.root, "d"));
    const sum = await writeRandomFile(join(server.root, "d", "big.bin"), BIG_FILE_BYTES);
    const partial = join(server.dir, ".big.bin.fts-partial");
    await term.line("cd d");
    assert.ok(await term.waitFor(/fts:\/d>/), await term.screen());
    await term.line("get big.bin");
    assert.ok(await term.waitFor(MOVING), await term.screen());
    // Keys typed during the transfer are neither echoed nor run afterwards.
    await term.line("lls");
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(
        /fts: Interrupt; to continue where it stopped: get --resume big\.bin big\.bin/,
      ),
      await term.screen(),
    );
    assert.ok(await term.waitFor(/^fts:\/d>\s*$/m), await term.screen());
    assert.doesNotMatch(await term.screen(), /lls/);
    const held = (await Deno.stat(partial)).size;
    assert.ok(held > 0 && held < BIG_FILE_BYTES, `partial holds ${held} bytes`);
    await assert.rejects(Deno.stat(join(server.dir, "big.bin")), Deno.errors.NotFound);

    slow.relay.limitRate(null);
    await term.line("ls");
    assert.ok(await term.waitFor(/file\s+67108864 .* big\.bin/), await term.screen());
    await term.line("get --resume big.bin big.bin");
    assert.ok(
      await term.waitFor(
        /downloaded d\/big\.bin -> big\.bin: 64\.0 MiB in .* resumed at [\d.]+ [KM]iB/,
      ),
      await term.screen(),
    );
    assert.equal(await sha256File(join(server.dir, "big.bin")), sum);
    await term.line("quit");
    assert.ok(await term.waitFor(/exit status 0/), await term.screen());
  },
);

testInSlowShell(
  "Ctrl-C stops an upload in the shell, the server keeps what arrived, and put --resume continues it",
  async (slow, term) => {
    const { server } = slow;
    const sum = await writeRandomFile(join(server.dir, "big.bin"), BIG_FILE_BYTES);
    await term.line("put big.bin");
    assert.ok(await term.waitFor(MOVING), await term.screen());
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(
        /fts: Interrupt; to continue where it stopped: put --resume big\.bin big\.bin/,
      ),
      await term.screen(),
    );
    assert.ok(await term.waitFor(/^fts:\/>\s*$/m), await term.screen());
    // What the relay still holds reaches the server, which then sees the connection end.
    slow.relay.limitRate(null);
    assert.ok(await waitFor(async () => await serverHeldBytes(server) > 0, 20_000));
    await term.line("ls");
    assert.ok(await term.waitFor(/^fts:\/> ls\n(?:.*\n)*fts:\/>\s*$/m), await term.screen());
    await assert.rejects(Deno.stat(join(server.root, "big.bin")), Deno.errors.NotFound);
    await term.line("put --resume big.bin big.bin");
    assert.ok(
      await term.waitFor(
        /uploaded big\.bin -> big\.bin: 64\.0 MiB in .* resumed at [\d.]+ [KM]iB/,
      ),
      await term.screen(),
    );
    assert.equal(await sha256File(join(server.root, "big.bin")), sum);
  },
);

testInSlowShell(
  "after put -f is stopped, the shell offers to resume it only where the upload could go through",
  async (slow, term) => {
    const { server } = slow;
    await Deno.writeTextFile(join(server.root, "big.bin"), "the old version");
    const sum = await writeRandomFile(join(server.dir, "big.bin"), BIG_FILE_BYTES);
    await term.line("put -f big.bin");
    assert.ok(await term.waitFor(MOVING), await term.screen());
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(/to continue where it stopped: put -f --resume big\.bin big\.bin/),
      await term.screen(),
    );
    slow.relay.limitRate(null);
    assert.ok(await waitFor(async () => await serverHeldBytes(server) > 0, 20_000));
    // Without -f the file there refuses the upload: no question that cannot lead anywhere.
    await term.line("put big.bin");
    assert.ok(await term.waitFor(/EXISTS: "big\.bin" already exists/), await term.screen());
    assert.doesNotMatch(await term.screen(), /Continue from there/);
    await term.line("put -f big.bin");
    assert.ok(await term.waitFor(/Continue from there\? \[Y\/n\]/), await term.screen());
    await term.line("y");
    assert.ok(
      await term.waitFor(/uploaded big\.bin -> big\.bin: .*resumed at/),
      await term.screen(),
    );
    assert.equal(await sha256File(join(server.root, "big.bin")), sum);
  },
);

testInSlowShell(
  "Ctrl-C stops the whole of get -r, not just the file it is on, and says how far it got",
  async (slow, term) => {
    const { server } = slow;
    const names = ["a.bin", "b.bin", "c.bin"];
    await Deno.mkdir(join(server.root, "tree"));
    for (const name of names) await writeRandomFile(join(server.root, "tree", name), 16 << 20);
    await term.line("get -r tree");
    assert.ok(
      await term.waitFor(/3 files {2}[\d.]+ (?:KiB|MiB) \/ 48\.0 MiB/),
      await term.screen(),
    );
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(
        /fts: Interrupt: 0 of 3 files done; to continue where it stopped: get --resume -r tree\n/,
      ),
      await term.screen(),
    );
    assert.ok(await term.waitFor(/^fts:\/>\s*$/m), await term.screen());
    // The stop is the command's: the files after the one moving were not fetched.
    slow.relay.limitRate(null);
    await term.line("pwd");
    assert.ok(await term.waitFor(/^fts:\/> pwd\n\/\nfts:\/>\s*$/m), await term.screen());
    const local = [...Deno.readDirSync(join(server.dir, "tree"))].map((e) => e.name).sort();
    assert.deepEqual(local, [".a.bin.fts-partial"]);
    // The printed command finishes the whole of it, the broken file resumed.
    await term.line("get --resume -r tree");
    assert.ok(
      await term.waitFor(/downloaded 3 files, 48\.0 MiB in .*verified/),
      await term.screen(),
    );
    assert.match(
      await term.screen(),
      /downloaded tree\/a\.bin -> tree\/a\.bin: 16\.0 MiB, resumed at/,
    );
    for (const name of names) {
      assert.equal(
        await sha256File(join(server.dir, "tree", name)),
        await sha256File(join(server.root, "tree", name)),
        name,
      );
    }
  },
);

/** Bytes of uploads in flight on the server: its temporaries, wherever under .fts/tmp they are. */
async function bytesArriving(root: string): Promise<number> {
  let bytes = 0;
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(dir)) {
      const path = join(dir, entry.name);
      if (entry.isDirectory) await walk(path);
      else bytes += await Deno.stat(path).then((info) => info.size, () => 0);
    }
  };
  await walk(join(root, ".fts", "tmp")).catch(() => {});
  return bytes;
}

testInSlowShell(
  "put -r stopped by Ctrl-C is finished by the command it prints: what arrived is not sent again",
  async (slow, term) => {
    const { server } = slow;
    await Deno.mkdir(join(server.dir, "tree"));
    await Deno.writeTextFile(join(server.dir, "tree", "a.txt"), "small, first, done at once");
    for (const name of ["b.bin", "c.bin"]) {
      await writeRandomFile(join(server.dir, "tree", name), 32 << 20);
    }
    await term.line("put -r tree");
    // The small file published and the first big one arriving, far from its end.
    assert.ok(
      await waitFor(async () => {
        const published = await Deno.stat(join(server.root, "tree", "a.txt")).then(
          () => true,
          () => false,
        );
        return published && await bytesArriving(server.root) > 0;
      }, 20_000),
      await term.screen(),
    );
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(
        /fts: Interrupt: \d of 3 files done; to continue where it stopped: put --resume -r tree\n/,
      ),
      await term.screen(),
    );
    assert.ok(await term.waitFor(/^fts:\/>\s*$/m), await term.screen());
    slow.relay.limitRate(null);
    // The server keeps what arrived once it has seen the connection end.
    assert.ok(
      await waitFor(async () => {
        for await (const _ of Deno.readDir(join(server.root, ".fts", "partial"))) return true;
        return false;
      }, 20_000),
    );
    await term.line("put --resume -r tree");
    assert.ok(
      await term.waitFor(/uploaded \d files, .*verified.*\nfts:\/>\s*$/m),
      await term.screen(),
    );
    assert.match(
      await term.screen(),
      /uploaded tree\/b\.bin -> tree\/b\.bin: 32\.0 MiB, resumed at/,
    );
    assert.match(await term.screen(), /; 1 there already, the same by digest/);
    for (const name of ["a.txt", "b.bin", "c.bin"]) {
      assert.equal(
        await sha256File(join(server.root, "tree", name)),
        await sha256File(join(server.dir, "tree", name)),
        name,
      );
    }
    // Run again, nothing is left: each file is there, the same by digest.
    await term.line("put --resume -r tree");
    assert.ok(
      await term.waitFor(/nothing left to move: 3 files there already, the same by digest/),
      await term.screen(),
    );
  },
);

testInSlowShell(
  "Ctrl-C at the prompt clears the typed line and prompts again, stops a !COMMAND, and Ctrl-D logs out",
  async (_slow, term) => {
    await term.keys("lsxyz");
    assert.ok(await term.waitFor(/^fts:\/> lsxyz$/m), await term.screen());
    await term.keys("C-c");
    assert.ok(await term.waitFor(/^fts:\/> lsxyz\^C\nfts:\/>\s*$/m), await term.screen());
    await term.line("pwd");
    assert.ok(await term.waitFor(/^fts:\/> pwd\n\/\nfts:\/>\s*$/m), await term.screen());
    assert.doesNotMatch(await term.screen(), /unknown command/);
    // During !COMMAND the terminal is the local program's: Ctrl-C stops it, not fts.
    await term.line("!echo sleeping; sleep 30");
    assert.ok(await term.waitFor(/^sleeping$/m), await term.screen());
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(/local command exited with status 130\nfts:\/>\s*$/m),
      await term.screen(),
    );
    await term.line("pwd");
    assert.ok(
      await term.waitFor(/^sleeping\n.*status 130\nfts:\/> pwd\n\/\nfts:\/>\s*$/m),
      await term.screen(),
    );
    await term.keys("C-d");
    assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    // The prompt's line is ended: the shell's next output starts a line of its own.
    assert.match(await term.screen(), /^fts:\/>\s*\n(?:.*\n)*?exit status 0/m);
    assert.doesNotMatch(await term.screen(), /fts:\/> ?\S*exit status/);
  },
);

testInSlowShell(
  "Ctrl-C at the resume question or at rm's confirmation cancels the command and keeps everything",
  async (slow, term) => {
    const { server } = slow;
    slow.relay.limitRate(null);
    await writeRandomFile(join(server.root, "big.bin"), 4 << 20);
    const partial = join(server.dir, ".big.bin.fts-partial");
    await writeRandomFile(partial, 1 << 20);
    await Deno.writeTextFile(join(server.root, "a.log"), "a");
    await Deno.writeTextFile(join(server.root, "b.log"), "b");
    await term.line("get big.bin");
    assert.ok(await term.waitFor(/Continue from there\? \[Y\/n\]\s*$/m), await term.screen());
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(/\[Y\/n\] \^C\nfts: Interrupt\nfts:\/>\s*$/m),
      await term.screen(),
    );
    assert.equal((await Deno.stat(partial)).size, 1 << 20, "the partial is kept as it was");
    await assert.rejects(Deno.stat(join(server.dir, "big.bin")), Deno.errors.NotFound);

    await term.line("rm a.log b.log");
    assert.ok(await term.waitFor(/Remove 2 files\? \[y\/N\]\s*$/m), await term.screen());
    await term.keys("C-c");
    assert.ok(
      await term.waitFor(/\[y\/N\] \^C\nfts: Interrupt\nfts:\/>\s*$/m),
      await term.screen(),
    );
    assert.equal(await Deno.readTextFile(join(server.root, "a.log")), "a");
    // The session goes on: the next command runs, and its answer is its own.
    await term.line("ls");
    assert.ok(
      await term.waitFor(/file\s+1 .* b\.log\nfile\s+4194304 .* big\.bin\nfts:\/>\s*$/m),
      await term.screen(),
    );
  },
);

Deno.test({
  name: "Ctrl-C stops a one-shot download with exit status 130, the resume command and the partial",
  ignore,
  async fn() {
    const slow = await startSlowServer();
    const { server } = slow;
    await writeRandomFile(join(server.root, "big.bin"), BIG_FILE_BYTES);
    const term = await Terminal.start(server.dir, [
      `127.0.0.1:${slow.relay.port}`,
      "get",
      "big.bin",
    ]);
    try {
      assert.ok(await term.waitFor(MOVING), await term.screen());
      await term.keys("C-c");
      assert.ok(await term.waitFor(/exit status 130/), await term.screen());
      assert.match(
        await term.screen(),
        /fts: Interrupt; to continue where it stopped: get --resume big\.bin big\.bin/,
      );
      const held = (await Deno.stat(join(server.dir, ".big.bin.fts-partial"))).size;
      assert.ok(held > 0 && held < BIG_FILE_BYTES, `partial holds ${held} bytes`);
    } finally {
      await term.close();
      await slow.close();
    }
  },
});

Deno.test({
  name: "deno task serve stops on Ctrl-C with exit status 0, though deno task passes the signal on",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const portFile = join(dir, "port");
    const term = await Terminal.run(dir, [
      Deno.execPath(),
      "task",
      "--config",
      join(PROJECT_DIR, "deno.json"),
      "serve",
      "--no-auth",
      "--root",
      join(dir, "root"),
      "--port-file",
      portFile,
      "--state-dir",
      join(dir, "state"),
    ]);
    try {
      assert.ok(
        await term.waitFor(/fts: serving .* on 127\.0\.0\.1:\d+/, 30_000),
        await term.screen(),
      );
      await term.keys("C-c");
      assert.ok(await term.waitFor(/exit status \d+/), await term.screen());
      assert.match(await term.screen(), /fts: stopped \(signal\)\n(?:.*\n)*exit status 0/);
      await assert.rejects(Deno.stat(portFile), Deno.errors.NotFound);
    } finally {
      await term.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "Ctrl-Z suspends the shell and fg brings it back, the half-typed line as it was",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    // A shell with job control, in which fts runs as a job of its own.
    const term = await Terminal.run(server.dir, ["bash", "--norc", "--noprofile", "-i"], {
      env: { XDG_CONFIG_HOME: home, PS1: "job-shell$ " },
    });
    try {
      const fts = [Deno.execPath(), "run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts")]
        .map(shellQuote).join(" ");
      assert.ok(await term.waitFor(/job-shell\$\s*$/m), await term.screen());
      await term.line(`${fts} connect 127.0.0.1:${server.port}`);
      assert.ok(await term.waitFor(/^fts:\/>\s*$/m), await term.screen());
      await term.keys("pw");
      await term.keys("C-z");
      assert.ok(await term.waitFor(/Stopped[\s\S]*job-shell\$\s*$/m), await term.screen());
      await term.line("fg");
      assert.ok(await term.waitFor(/fts:\/> pw\s*$/m), await term.screen());
      await term.line("d");
      assert.ok(await term.waitFor(/^fts:\/> pwd\n\/\nfts:\/>\s*$/m), await term.screen());
      await term.line("quit");
      assert.ok(await term.waitFor(/job-shell\$\s*$/m), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});
