import assert from "node:assert/strict";
import { join } from "node:path";
import {
  EMPTY_ROOT,
  FTS_RUN_FLAGS,
  listTree,
  PROJECT_DIR,
  runCommand,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** Large enough that the upload is still running when the test notices it. */
const BIG_FILE_BYTES = 2 * 1024 ** 3;

Deno.test("a client killed mid-upload leaves nothing visible and the server keeps serving", async () => {
  const server = await startServer();
  try {
    const big = join(server.dir, "big.bin");
    await Deno.truncate(big, BIG_FILE_BYTES).catch(async () => {
      await Deno.writeFile(big, new Uint8Array(0));
      await Deno.truncate(big, BIG_FILE_BYTES);
    });
    const client = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "connect",
        `127.0.0.1:${server.port}`,
        "upload",
        big,
        "big.bin",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const tmpDir = join(server.root, ".fts", "tmp");
    const started = await waitFor(async () => {
      for await (const entry of Deno.readDir(tmpDir)) {
        if ((await Deno.stat(join(tmpDir, entry.name))).size > 0) return true;
      }
      return false;
    }, 30_000);
    assert.ok(started, "the upload never started");
    client.kill("SIGKILL");
    const status = await client.status;
    assert.notEqual(status.code, 0, "the upload finished before it could be interrupted");

    const cleaned = await waitFor(async () =>
      (await listTree(server.root)).join() === EMPTY_ROOT.join()
    );
    assert.ok(cleaned, `left behind: ${await listTree(server.root)}`);
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    const ls = await runCommand(server, ["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), "(empty)");
  } finally {
    await server.stop();
  }
});

Deno.test("temporaries left by a crash are removed when the server starts", async () => {
  const first = await startServer();
  const { root } = first;
  const keep = `${first.dir}-kept`;
  try {
    await Deno.writeTextFile(join(root, ".fts", "tmp", "left-by-crash"), "partial");
    first.process.kill("SIGKILL");
    await first.exited;
    await Deno.rename(first.dir, keep);
  } finally {
    await first.stop();
  }
  const second = await startServer(["--root", join(keep, "root")]);
  try {
    assert.deepEqual(await listTree(join(keep, "root")), EMPTY_ROOT);
  } finally {
    await second.stop();
    await Deno.remove(keep, { recursive: true });
  }
});
