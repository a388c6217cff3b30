import assert from "node:assert/strict";
import { join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import {
  EMPTY_ROOT,
  listTree,
  runCommand,
  serverTmpDir,
  sha256File,
  spawnCommand,
  startServer,
  waitFor,
} from "./_helpers.ts";

/** Large enough that the upload is still running when the test notices it. */
const BIG_FILE_BYTES = 1024 ** 3;

Deno.test("a client killed mid-upload leaves nothing visible, the server keeps serving, and --resume finishes it", async () => {
  const server = await startServer();
  try {
    const big = join(server.dir, "big.bin");
    await Deno.truncate(big, BIG_FILE_BYTES).catch(async () => {
      await Deno.writeFile(big, new Uint8Array(0));
      await Deno.truncate(big, BIG_FILE_BYTES);
    });
    const client = spawnCommand(server, ["upload", big, "big.bin"]);
    const tmpDir = await serverTmpDir(server);
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

    // What arrived waits out of sight in .fts/partial, its name in .fts/partial-names; nothing
    // is visible.
    const parked = await waitFor(async () => {
      const tree = await listTree(server.root);
      return tree.length === EMPTY_ROOT.length + 3 &&
        tree.filter((p) => p.startsWith(".fts/partial/")).length === 2 &&
        tree.filter((p) => p.startsWith(".fts/partial-names/")).length === 2;
    });
    assert.ok(parked, `left behind: ${await listTree(server.root)}`);
    const ls = await runCommand(server, ["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.equal(ls.stdout.trim(), "(empty)");

    // Retried with --resume, the upload continues where it stopped and is verified whole.
    const resumed = await runCommand(server, ["--json", "upload", "--resume", big, "big.bin"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const at = Number(JSON.parse(resumed.stdout).files[0].resumedFrom);
    assert.ok(at > 0 && at < BIG_FILE_BYTES, resumed.stdout);
    assert.equal(await sha256File(join(server.root, "big.bin")), await sha256File(big));
    // The name went with the partial; its directory stays.
    assert.deepEqual(
      await listTree(server.root),
      [...EMPTY_ROOT, ".fts/partial-names/", "big.bin"].sort(),
    );
  } finally {
    await server.stop();
  }
});

Deno.test("partial uploads older than the expiry are removed when the server starts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-partial-" });
  const root = join(dir, "root");
  const partials = join(root, ".fts", "partial");
  await Deno.mkdir(partials, { recursive: true });
  const stale = join(partials, "stale-1");
  const fresh = join(partials, "fresh-1");
  await Deno.writeTextFile(stale, "old");
  await Deno.writeTextFile(fresh, "new");
  const longAgo = new Date(Date.now() - PARTIAL_EXPIRY_MS - 60_000);
  await Deno.utime(stale, longAgo, longAgo);
  const server = await startServer(["--root", root]);
  try {
    assert.deepEqual(await listTree(partials), ["fresh-1"]);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("temporaries left by a crash are removed when the server starts", async () => {
  const first = await startServer();
  const keep = `${first.dir}-kept`;
  try {
    await Deno.writeTextFile(join(await serverTmpDir(first), "left-by-crash"), "partial");
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
