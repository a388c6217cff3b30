import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type RunningServer,
  sha256File,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";
import { HAS_TMUX, openShell, Terminal } from "./_tmux.ts";

/** The escape sequence that starts blue text. */
const BLUE = "\x1b[34m";
/** The escape sequence that starts red text. */
const RED = "\x1b[31m";
/** What the progress line starts each redraw with: back to column 0, erase the line. */
const CLEAR_LINE = "\r\x1b[2K";

/** The progress line for a 768 MiB transfer of big.bin, as drawn. */
const BIG_PROGRESS =
  /big\.bin {2}[\d.]+ (?:B|KiB|MiB|GiB) \/ 768\.0 MiB {2}\d+% {2}[\d.]+ (?:B|KiB|MiB|GiB)\/s {2}ETA \d+:\d\d/;

// CI installs tmux (.ci/run); elsewhere these tests say plainly that they did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

Deno.test({
  name: "the interactive prompt runs commands in a real terminal and recalls history",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    const term = await openShell(server.dir, server.port, home);
    try {
      await Deno.writeTextFile(join(server.dir, "hello world.txt"), "hi");
      assert.ok(await term.waitFor(/fts:\/>/), await term.screen());
      await term.line(`put "hello world.txt" greeting.txt`);
      assert.ok(await term.waitFor(/uploaded .*greeting\.txt.*verified/), await term.screen());
      await term.line("get nothing-here");
      assert.ok(await term.waitFor(/NOT_FOUND/), await term.screen());
      await term.line("ls");
      assert.ok(await term.waitFor(/file\s+2 .* greeting\.txt/), await term.screen());
      // History: Up recalls the previous line; Enter runs it again.
      const lsLines = async () => (await term.screen()).match(/^fts:\/> ls\s*$/gm)?.length ?? 0;
      assert.equal(await lsLines(), 1);
      await term.keys("Up", "Enter");
      assert.ok(await term.waitFor(/^fts:\/> ls\s*$[\s\S]*^fts:\/> ls\s*$/m), await term.screen());
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "tab completes commands and remote names; history survives the session; cd changes the prompt",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    await Deno.mkdir(join(server.root, "reports"));
    await Deno.writeTextFile(join(server.root, "reports", "quarterly-2026.csv"), "a,b\n");
    const options = { env: { XDG_CONFIG_HOME: home } };
    const first = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], options);
    try {
      assert.ok(await first.waitFor(/fts:\/>/), await first.screen());
      await first.keys("dow", "Tab");
      assert.ok(await first.waitFor(/fts:\/> download\s*$/m), await first.screen());
      await first.keys(" rep", "Tab");
      assert.ok(await first.waitFor(/download reports\/\s*$/m), await first.screen());
      await first.keys("qu", "Tab");
      assert.ok(
        await first.waitFor(/download reports\/quarterly-2026\.csv\s*$/m),
        await first.screen(),
      );
      await first.keys("Enter");
      assert.ok(
        await first.waitFor(/downloaded .*quarterly-2026\.csv.*verified/),
        await first.screen(),
      );
      assert.equal(await Deno.readTextFile(join(server.dir, "quarterly-2026.csv")), "a,b\n");
      await first.line("cd reports");
      assert.ok(await first.waitFor(/fts:\/reports>/), await first.screen());
      await first.line("pwd");
      assert.ok(await first.waitFor(/^\/reports$/m), await first.screen());
      await first.line("quit");
      assert.ok(await first.waitFor(/exit status 0/), await first.screen());
    } finally {
      await first.close();
    }
    const second = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], options);
    try {
      assert.ok(await second.waitFor(/fts:\/>/), await second.screen());
      await second.keys("Up", "Up", "Up");
      assert.ok(await second.waitFor(/fts:\/> cd reports\s*$/m), await second.screen());
    } finally {
      await second.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a large download shows a progress line, and after the client is killed the shell offers to resume it",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    try {
      const size = 768 << 20;
      const sum = await writeRandomFile(join(server.root, "big.bin"), size);
      await killMidTransfer(server, home, "get big.bin");
      const partial = join(server.dir, ".big.bin.fts-partial");
      const held = (await Deno.stat(partial)).size;
      assert.ok(held > 0 && held < size, `partial holds ${held} bytes`);
      await assert.rejects(Deno.stat(join(server.dir, "big.bin")), Deno.errors.NotFound);

      await takeResumeOffer(server, home, {
        command: "get big.bin",
        offer:
          /MiB of big\.bin are here from an interrupted download\. Continue from there\? \[Y\/n\]/,
        answer: ["y", "Enter"],
        done:
          /downloaded big\.bin -> big\.bin: 768\.0 MiB in .* resumed at [\d.]+ [KMG]?i?B, .*verified/,
      });
      assert.equal(await sha256File(join(server.dir, "big.bin")), sum);
      await assert.rejects(Deno.stat(partial), Deno.errors.NotFound);
    } finally {
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "colour marks directories and verified transfers on a terminal, and NO_COLOR turns it off",
  ignore,
  async fn() {
    const server = await startServer();
    try {
      await Deno.mkdir(join(server.root, "folder"));
      const coloured = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`, "ls"]);
      try {
        assert.ok(await coloured.waitFor(/exit status 0/), await coloured.screen());
        assert.ok((await coloured.screen(true)).includes(`${BLUE}folder/`));
      } finally {
        await coloured.close();
      }
      const plain = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`, "ls"], {
        env: { NO_COLOR: "1" },
      });
      try {
        assert.ok(await plain.waitFor(/exit status 0/), await plain.screen());
        assert.ok(!(await plain.screen(true)).includes(BLUE));
      } finally {
        await plain.close();
      }
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "tab completes a remote name with a space escaped, and the completed line downloads it",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    const bytes = crypto.getRandomValues(new Uint8Array(4096));
    await Deno.writeFile(join(server.root, "two words.txt"), bytes);
    const term = await openShell(server.dir, server.port, home);
    try {
      await term.keys("get two", "Tab");
      assert.ok(await term.waitFor(/fts:\/> get two\\ words\.txt\s*$/m), await term.screen());
      await term.keys("Enter");
      assert.ok(
        await term.waitFor(/downloaded two words\.txt -> two words\.txt: .*verified/),
        await term.screen(),
      );
      assert.deepEqual(await Deno.readFile(join(server.dir, "two words.txt")), bytes);
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "tab completes local paths for put, a directory and then a name with a space",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    await Deno.mkdir(join(server.dir, "outbox"));
    await Deno.writeTextFile(join(server.dir, "outbox", "notes 2026.txt"), "local notes");
    const term = await openShell(server.dir, server.port, home);
    try {
      await term.keys("put outb", "Tab");
      assert.ok(await term.waitFor(/fts:\/> put outbox\/\s*$/m), await term.screen());
      await term.keys("no", "Tab");
      assert.ok(
        await term.waitFor(/fts:\/> put outbox\/notes\\ 2026\.txt\s*$/m),
        await term.screen(),
      );
      await term.keys("Enter");
      assert.ok(await term.waitFor(/uploaded .*notes 2026\.txt.*verified/), await term.screen());
      assert.equal(await Deno.readTextFile(join(server.root, "notes 2026.txt")), "local notes");
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "a large upload shows a progress line, and after the client is killed the shell offers to resume it",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    const partialDir = join(server.root, ".fts", "partial");
    /** Bytes held in the server's partial uploads. */
    const heldBytes = async () => {
      let bytes = 0;
      for await (const entry of Deno.readDir(partialDir)) {
        bytes += (await Deno.stat(join(partialDir, entry.name))).size;
      }
      return bytes;
    };
    try {
      const size = 768 << 20;
      const sum = await writeRandomFile(join(server.dir, "big.bin"), size);
      await killMidTransfer(server, home, "put big.bin");
      // The server keeps what arrived once it sees the connection drop.
      assert.ok(await waitFor(async () => (await heldBytes()) > 0), "no partial upload kept");
      const held = await heldBytes();
      assert.ok(held < size, `partial holds ${held} bytes`);
      await assert.rejects(Deno.stat(join(server.root, "big.bin")), Deno.errors.NotFound);

      await takeResumeOffer(server, home, {
        command: "put big.bin",
        offer:
          /the server holds .* of 768\.0 MiB from an interrupted upload of big\.bin\. Continue from there\? \[Y\/n\]/,
        answer: ["Enter"], // Enter alone takes the offer.
        done:
          /uploaded big\.bin -> big\.bin: 768\.0 MiB in .* resumed at [\d.]+ [KMG]?i?B, .*verified/,
      });
      assert.equal(await sha256File(join(server.root, "big.bin")), sum);
      assert.equal(await heldBytes(), 0);
    } finally {
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test({
  name: "--quiet draws no progress line on a terminal; without it the same upload draws one",
  ignore,
  async fn() {
    const server = await startServer();
    try {
      await writeRandomFile(join(server.dir, "small.bin"), 4 << 20);
      /** Everything the terminal was sent while `fts connect ARGS` ran. */
      const recorded = async (args: string[]) => {
        const recordFile = join(server.dir, `record-${crypto.randomUUID()}`);
        const term = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`, ...args], {
          recordFile,
        });
        try {
          assert.ok(await term.waitFor(/exit status 0/), await term.screen());
          const text = () => Deno.readTextFile(recordFile).catch(() => "");
          assert.ok(await waitFor(async () => (await text()).includes("exit status 0")));
          return await text();
        } finally {
          await term.close();
        }
      };
      const drawn = await recorded(["put", "small.bin"]);
      assert.match(drawn, /uploaded small\.bin -> small\.bin: .*verified/);
      assert.ok(drawn.includes(`${CLEAR_LINE}small.bin  `), drawn);
      assert.match(drawn, /ETA/);
      const quiet = await recorded(["--quiet", "put", "small.bin", "copy.bin"]);
      assert.match(quiet, /uploaded small\.bin -> copy\.bin: .*verified/);
      assert.ok(!quiet.includes(CLEAR_LINE), quiet);
      assert.doesNotMatch(quiet, /ETA/);
    } finally {
      await server.stop();
    }
  },
});

Deno.test({
  name: "errors are red when stderr is a terminal, whatever stdout is, and never under NO_COLOR",
  ignore,
  async fn() {
    const server = await startServer();
    const elsewhere = await Deno.makeTempDir();
    const address = `127.0.0.1:${server.port}`;
    try {
      const stdoutFile = join(server.dir, "stdout.txt");
      const toFile = await Terminal.start(server.dir, [address, "get", "missing"], { stdoutFile });
      try {
        assert.ok(await toFile.waitFor(/exit status 1/), await toFile.screen());
        assert.ok((await toFile.screen(true)).includes(`${RED}NOT_FOUND`), await toFile.screen());
      } finally {
        await toFile.close();
      }
      const stderrFile = join(server.dir, "stderr.txt");
      const errToFile = await Terminal.start(server.dir, [address, "get", "missing"], {
        stderrFile,
      });
      try {
        assert.ok(await errToFile.waitFor(/exit status 1/), await errToFile.screen());
        const written = await Deno.readTextFile(stderrFile);
        assert.match(written, /^fts: NOT_FOUND/);
        assert.ok(!written.includes("\x1b["), written);
      } finally {
        await errToFile.close();
      }
      const plain = await Terminal.start(server.dir, [address, "get", "missing"], {
        env: { NO_COLOR: "1" },
      });
      try {
        assert.ok(await plain.waitFor(/exit status 1/), await plain.screen());
        assert.match(await plain.screen(), /fts: NOT_FOUND/);
        assert.ok(!(await plain.screen(true)).includes(RED));
      } finally {
        await plain.close();
      }
      // Failing before any connection (no port file here) is coloured the same way.
      const unconnected = await Terminal.start(elsewhere, ["ls"], { stdoutFile });
      try {
        assert.ok(await unconnected.waitFor(/exit status 3/), await unconnected.screen());
        assert.ok(
          (await unconnected.screen(true)).includes(`${RED}no port file`),
          await unconnected.screen(),
        );
      } finally {
        await unconnected.close();
      }
    } finally {
      await server.stop();
      await Deno.remove(elsewhere, { recursive: true });
    }
  },
});

/** Opens the shell against `server`, its history under `home`, and waits for the prompt. */

/** Runs a large transfer in a new shell and kills the client once its progress line shows. */
async function killMidTransfer(server: RunningServer, home: string, command: string) {
  const term = await openShell(server.dir, server.port, home);
  try {
    await term.line(command);
    assert.ok(await term.waitFor(BIG_PROGRESS), await term.screen());
    await term.killClient();
    assert.ok(await term.waitFor(/exit status 137/), await term.screen());
  } finally {
    await term.close();
  }
}

/** In a new shell, runs `command`, sees the offer to resume, answers it, and sees the transfer done. */
async function takeResumeOffer(
  server: RunningServer,
  home: string,
  steps: { command: string; offer: RegExp; answer: string[]; done: RegExp },
) {
  const term = await openShell(server.dir, server.port, home);
  try {
    await term.line(steps.command);
    assert.ok(await term.waitFor(steps.offer), await term.screen());
    await term.keys(...steps.answer);
    assert.ok(await term.waitFor(steps.done, 60_000), await term.screen());
  } finally {
    await term.close();
  }
}
