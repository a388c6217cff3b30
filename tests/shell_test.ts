import assert from "node:assert/strict";
import { join } from "node:path";
import { sha256File, startServer, writeRandomFile } from "./_helpers.ts";
import { HAS_TMUX, Terminal } from "./_tmux.ts";

/** The escape sequence that starts blue text. */
const BLUE = "\x1b[34m";

// CI installs tmux (.ci/run); elsewhere these tests say plainly that they did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

Deno.test({
  name: "the interactive prompt runs commands in a real terminal and recalls history",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    const term = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], {
      XDG_CONFIG_HOME: home,
    });
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
    const env = { XDG_CONFIG_HOME: home };
    const first = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], env);
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
    const second = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], env);
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
  name: "a large download shows a progress line, and resumes after the client is killed",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    try {
      const size = 768 << 20;
      const sum = await writeRandomFile(join(server.root, "big.bin"), size);
      const first = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], {
        XDG_CONFIG_HOME: home,
      });
      try {
        assert.ok(await first.waitFor(/fts:\/>/), await first.screen());
        await first.line("get big.bin");
        const progress =
          /big\.bin {2}[\d.]+ (?:B|KiB|MiB|GiB) \/ 768\.0 MiB {2}\d+% {2}[\d.]+ (?:B|KiB|MiB|GiB)\/s {2}ETA \d+:\d\d/;
        assert.ok(await first.waitFor(progress), await first.screen());
        await first.killClient();
        assert.ok(await first.waitFor(/exit status 137/), await first.screen());
      } finally {
        await first.close();
      }
      const partial = join(server.dir, ".big.bin.fts-partial");
      const held = (await Deno.stat(partial)).size;
      assert.ok(held > 0 && held < size, `partial holds ${held} bytes`);
      await assert.rejects(Deno.stat(join(server.dir, "big.bin")), Deno.errors.NotFound);

      const second = await Terminal.start(server.dir, [`127.0.0.1:${server.port}`], {
        XDG_CONFIG_HOME: home,
      });
      try {
        assert.ok(await second.waitFor(/fts:\/>/), await second.screen());
        await second.line("get --resume big.bin");
        assert.ok(
          await second.waitFor(
            /downloaded big\.bin -> big\.bin: 768\.0 MiB in .* resumed at \d+ bytes, .*verified/,
            60_000,
          ),
          await second.screen(),
        );
      } finally {
        await second.close();
      }
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
        NO_COLOR: "1",
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
