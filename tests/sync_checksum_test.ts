/**
 * `sync -c` against the real server: files compared by content digest, the
 * server's digests kept per directory in its state directory and the
 * client's per tree in its cache, each forgotten when its file changes.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { listTree, runClient, type RunningServer, startServer } from "./_helpers.ts";

/** Runs one sync as a one-shot command with --json (and a cache of its own), and returns its document. */
async function sync(server: RunningServer, cache: string, ...args: string[]) {
  const run = await runClient([`127.0.0.1:${server.port}`, "--json", "sync", ...args], {
    cwd: server.dir,
    env: { XDG_CACHE_HOME: cache },
  });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

/** Rewrites `path` with `text` of the same length and gives it back its modification time. */
async function rewriteKeepingTime(path: string, text: string): Promise<void> {
  const before = await Deno.stat(path);
  assert.equal(new TextEncoder().encode(text).length, before.size);
  await Deno.writeTextFile(path, text);
  await Deno.utime(path, before.atime!, before.mtime!);
}

const paths = (files: { path: string }[]) => files.map((file) => file.path);

Deno.test("sync -c finds a change that size and time miss, both ways", async () => {
  const server = await startServer();
  const cache = await Deno.makeTempDir({ prefix: "fts-cache-" });
  try {
    const src = join(server.dir, "src");
    await Deno.mkdir(join(src, "sub"), { recursive: true });
    await Deno.writeTextFile(join(src, "a.txt"), "alpha");
    await Deno.writeTextFile(join(src, "sub", "b.txt"), "bravo");
    await sync(server, cache, "src", "mirror");

    // The server's copy changes, same size, same time: only -c sees it.
    await rewriteKeepingTime(join(server.root, "mirror", "sub", "b.txt"), "BRAVO");
    const byTime = await sync(server, cache, "src", "mirror");
    assert.equal(byTime.plan.unchanged, 2);
    const byDigest = await sync(server, cache, "-c", "src", "mirror");
    assert.deepEqual(paths(byDigest.plan.update), ["sub/b.txt"]);
    assert.equal(await Deno.readTextFile(join(server.root, "mirror", "sub", "b.txt")), "bravo");
    const again = await sync(server, cache, "-c", "src", "mirror");
    assert.equal(again.plan.unchanged, 2);

    // The local copy changes the same way: --down -c brings the server's back.
    await rewriteKeepingTime(join(src, "a.txt"), "ALPHA");
    const down = await sync(server, cache, "--down", "-c", "mirror", "src");
    assert.deepEqual(paths(down.plan.update), ["a.txt"]);
    assert.equal(await Deno.readTextFile(join(src, "a.txt")), "alpha");
  } finally {
    await server.stop();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("sync -c keeps digests per directory on the server and per tree here, and forgets changed files", async () => {
  const server = await startServer();
  const cache = await Deno.makeTempDir({ prefix: "fts-cache-" });
  try {
    const src = join(server.dir, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "a.txt"), "alpha");
    await sync(server, cache, "src", "mirror");
    await sync(server, cache, "-c", "src", "mirror");
    const records = await listTree(join(server.root, ".fts", "digests"));
    assert.equal(records.length, 1, records.join(" "));
    assert.match(records[0]!, /^[0-9a-f]{64}-xxh3-128$/);
    const kept = JSON.parse(
      await Deno.readTextFile(join(server.root, ".fts", "digests", records[0]!)),
    );
    assert.deepEqual(Object.keys(kept.files), ["a.txt"]);
    const local = await listTree(join(cache, "fts", "digests"));
    assert.equal(local.length, 1, local.join(" "));

    // A kept digest is for the file as it was: changed, it is hashed again (same size, same time).
    await rewriteKeepingTime(join(server.root, "mirror", "a.txt"), "ALPHA");
    const changed = await sync(server, cache, "-c", "src", "mirror");
    assert.deepEqual(paths(changed.plan.update), ["a.txt"]);
    await rewriteKeepingTime(join(src, "a.txt"), "alphA");
    const changedHere = await sync(server, cache, "-c", "src", "mirror");
    assert.deepEqual(paths(changedHere.plan.update), ["a.txt"]);
    assert.equal(await Deno.readTextFile(join(server.root, "mirror", "a.txt")), "alphA");
  } finally {
    await server.stop();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("digests is refused for a file and for a name outside the root", async () => {
  const server = await startServer();
  const cache = await Deno.makeTempDir({ prefix: "fts-cache-" });
  try {
    await Deno.writeTextFile(join(server.root, "plain.txt"), "x");
    const onFile = await runClient([
      `127.0.0.1:${server.port}`,
      "sync",
      "-c",
      "--down",
      "plain.txt",
      "out",
    ], {
      cwd: server.dir,
      env: { XDG_CACHE_HOME: cache },
    });
    assert.notEqual(onFile.code, 0);
    assert.match(onFile.stderr, /WRONG_TYPE/);
  } finally {
    await server.stop();
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("the server answers digests from its record while the file is unchanged, not by reading it", async () => {
  const server = await startServer();
  const cache = await Deno.makeTempDir({ prefix: "fts-cache-" });
  try {
    const src = join(server.dir, "src");
    await Deno.mkdir(src);
    await Deno.writeTextFile(join(src, "a.txt"), "alpha");
    await sync(server, cache, "src", "mirror");
    // A digest is trusted once the file's last change is in an earlier second than the record.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await sync(server, cache, "-c", "src", "mirror");
    const [record] = await listTree(join(server.root, ".fts", "digests"));
    const path = join(server.root, ".fts", "digests", record!);
    const kept = JSON.parse(await Deno.readTextFile(path));
    // Were the file read again, this planted digest would not be seen.
    kept.files["a.txt"].hex = "f".repeat(32);
    await Deno.writeTextFile(path, JSON.stringify(kept));
    const planned = await sync(server, cache, "-c", "-n", "src", "mirror");
    assert.deepEqual(paths(planned.plan.update), ["a.txt"]);
  } finally {
    await server.stop();
    await Deno.remove(cache, { recursive: true });
  }
});
