import assert from "node:assert/strict";
import { join } from "node:path";
import { FTS_RUN_FLAGS, PROJECT_DIR, startServer, waitFor } from "./_helpers.ts";

const HAS_TMUX = new Deno.Command("tmux", { args: ["-V"], stdout: "null", stderr: "null" })
  .output().then((o) => o.success, () => false);

async function tmux(...args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return text;
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

Deno.test({
  name: "the interactive prompt runs commands in a real terminal and recalls history",
  // CI installs tmux (.ci/run); elsewhere the test says plainly why it did not run.
  ignore: !(await HAS_TMUX) && Deno.env.get("CI") !== "true",
  async fn() {
    const server = await startServer();
    const session = `fts-test-${Deno.pid}-${Date.now()}`;
    const screen = () => tmux("capture-pane", "-p", "-t", session);
    try {
      await Deno.writeTextFile(join(server.dir, "hello world.txt"), "hi");
      const command = [Deno.execPath(), "run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts")]
        .concat(["connect", `127.0.0.1:${server.port}`]).map(quote).join(" ");
      await tmux(
        "new-session",
        "-d",
        "-s",
        session,
        "-x",
        "150",
        "-y",
        "40",
        "-c",
        server.dir,
        `${command}; echo "exit status $?"; sleep 30`,
      );
      assert.ok(
        await waitFor(async () => (await screen()).includes("fts>"), 20_000),
        await screen(),
      );

      await tmux("send-keys", "-t", session, `put "hello world.txt" greeting.txt`, "Enter");
      assert.ok(
        await waitFor(async () => /uploaded .*greeting\.txt.*verified/.test(await screen())),
        await screen(),
      );
      await tmux("send-keys", "-t", session, "get nothing-here", "Enter");
      assert.ok(await waitFor(async () => (await screen()).includes("NOT_FOUND")), await screen());

      await tmux("send-keys", "-t", session, "ls", "Enter");
      assert.ok(
        await waitFor(async () => /file\s+2 .* greeting\.txt/.test(await screen())),
        await screen(),
      );
      // History: Up recalls the previous line; Enter runs it again.
      const lsLines = async () => (await screen()).match(/^fts> ls\s*$/gm)?.length ?? 0;
      assert.equal(await lsLines(), 1);
      await tmux("send-keys", "-t", session, "Up");
      await tmux("send-keys", "-t", session, "Enter");
      assert.ok(await waitFor(async () => await lsLines() === 2), await screen());
      assert.ok(
        await waitFor(async () => ((await screen()).match(/greeting\.txt$/gm)?.length ?? 0) >= 3),
        await screen(),
      );

      await tmux("send-keys", "-t", session, "quit", "Enter");
      assert.ok(
        await waitFor(async () => (await screen()).includes("exit status 0")),
        await screen(),
      );
    } finally {
      await tmux("kill-session", "-t", session).catch(() => {});
      await server.stop();
    }
  },
});
