import assert from "node:assert/strict";
import { join } from "node:path";
import { startServer } from "./_helpers.ts";
import { HAS_TMUX, openShell } from "./_tmux.ts";

// CI installs tmux (.ci/run); elsewhere these tests say plainly that they did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

Deno.test({
  name: "rm of several names asks first in the shell, and !COMMAND runs a local shell",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    const term = await openShell(server.dir, server.port, home);
    try {
      for (const name of ["a.log", "b.log", "c.log"]) {
        await Deno.writeTextFile(join(server.root, name), name);
      }
      assert.ok(await term.waitFor(/fts:\/>/), await term.screen());
      await term.line("rm '*.log'");
      assert.ok(await term.waitFor(/Remove 3 files\? \[y\/N\]/m), await term.screen());
      await term.line("n");
      assert.ok(await term.waitFor(/nothing was removed/), await term.screen());
      assert.equal([...Deno.readDirSync(server.root)].length, 4, "declined: all still there");
      await term.line("rm a.log b.log");
      assert.ok(await term.waitFor(/Remove 2 files\? \[y\/N\]/m), await term.screen());
      await term.line("y");
      assert.ok(await term.waitFor(/deleted b\.log/), await term.screen());
      await term.line("rm c.log");
      assert.ok(await term.waitFor(/deleted c\.log/), await term.screen());
      assert.deepEqual([...Deno.readDirSync(server.root)].map((e) => e.name), [".fts"]);

      await term.line("!echo local-$((6 * 7)) > from-sh.txt; cat from-sh.txt");
      assert.ok(await term.waitFor(/^local-42$/m), await term.screen());
      assert.equal(await Deno.readTextFile(join(server.dir, "from-sh.txt")), "local-42\n");
      await term.line("pwd");
      assert.ok(await term.waitFor(/^\/$/m), await term.screen());
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});
