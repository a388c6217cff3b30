/**
 * `sync` against the real server: a first run, a second that moves nothing,
 * changes with and without --delete, --dry-run, excludes and .ftsignore,
 * a conflict left alone, the preview answered in a real terminal, and the
 * same the other way (--down).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startDelayRelay } from "../scripts/bench_relay.ts";
import {
  listTree,
  runClient,
  type RunningServer,
  sha256File,
  startServer,
  writeRandomFile,
} from "./_helpers.ts";
import { HAS_TMUX, openShell } from "./_tmux.ts";

// CI installs tmux (.ci/run); elsewhere the terminal test says plainly that it did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

/** Writes `files` (path → text) under `dir`, making directories as needed. */
async function writeTree(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    const full = join(dir, ...path.split("/"));
    await Deno.mkdir(join(full, ".."), { recursive: true });
    await Deno.writeTextFile(full, text);
  }
}

/** Every file under `dir` with its text, for comparing two trees. */
async function treeContents(dir: string): Promise<Record<string, string>> {
  const contents: Record<string, string> = {};
  for (const path of await listTree(dir)) {
    if (path.endsWith("/") || path.startsWith(".fts/")) continue;
    contents[path] = await Deno.readTextFile(join(dir, ...path.split("/")));
  }
  return contents;
}

/** Runs one sync as a one-shot command with --json, and returns its document. */
async function sync(server: RunningServer, ...args: string[]) {
  const run = await runClient([`127.0.0.1:${server.port}`, "--json", "sync", ...args], {
    cwd: server.dir,
  });
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout);
}

const FIRST = { "a.txt": "alpha", "sub/b.txt": "bravo", "sub/deep/c.txt": "charlie" };

Deno.test("sync sends a tree, then nothing, then only what changed; --delete removes the rest", async () => {
  const server = await startServer();
  try {
    const src = join(server.dir, "src");
    await writeTree(src, FIRST);
    const first = await sync(server, "src", "mirror");
    assert.equal(first.result.files, 3);
    assert.deepEqual(await treeContents(join(server.root, "mirror")), FIRST);

    const again = await sync(server, "src", "mirror");
    assert.equal(again.result.files, 0, "an unchanged tree moves nothing");
    assert.equal(again.plan.unchanged, 3);

    await Deno.writeTextFile(join(src, "a.txt"), "alpha, longer now");
    await writeTree(src, { "sub/new.txt": "new" });
    await Deno.remove(join(src, "sub", "b.txt"));
    const changed = await sync(server, "src", "mirror");
    assert.deepEqual(changed.plan.create.map((f: { path: string }) => f.path), ["sub/new.txt"]);
    assert.deepEqual(changed.plan.update.map((f: { path: string }) => f.path), ["a.txt"]);
    assert.equal(changed.result.files, 2);
    // Without --delete the file gone from the source stays on the server.
    assert.equal(await Deno.readTextFile(join(server.root, "mirror", "sub", "b.txt")), "bravo");

    const removing = await sync(server, "--delete", "src", "mirror");
    assert.deepEqual(removing.plan.remove, [{ path: "sub/b.txt", dir: false }]);
    assert.equal(removing.result.files, 0);
    assert.deepEqual(
      await treeContents(join(server.root, "mirror")),
      await treeContents(src),
    );
  } finally {
    await server.stop();
  }
});

Deno.test("sync --dry-run shows the plan and changes neither tree", async () => {
  const server = await startServer();
  try {
    const src = join(server.dir, "src");
    await writeTree(src, FIRST);
    await writeTree(join(server.root, "mirror"), { "old.txt": "old", "a.txt": "stale!" });
    const before = await listTree(server.root);
    const run = await runClient(
      [`127.0.0.1:${server.port}`, "sync", "-n", "--delete", "src", "mirror"],
      { cwd: server.dir },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^\+ sub\/deep\/c\.txt$/m);
    assert.match(run.stdout, /^- old\.txt$/m);
    assert.match(run.stdout, /dry run: nothing was changed/);
    assert.deepEqual(await listTree(server.root), before);
    assert.equal(await Deno.readTextFile(join(server.root, "mirror", "old.txt")), "old");
  } finally {
    await server.stop();
  }
});

Deno.test("sync leaves out --exclude and .ftsignore matches on both sides, and --include keeps one", async () => {
  const server = await startServer();
  try {
    const src = join(server.dir, "src");
    await writeTree(src, {
      ".ftsignore": "# build output\nbuild/\n",
      "a.txt": "a",
      "x.log": "log",
      "keep.log": "kept",
      "build/out.bin": "binary",
    });
    // The server's own excluded file must survive --delete.
    await writeTree(join(server.root, "mirror"), { "server.log": "the server's own" });
    const done = await sync(
      server,
      "--delete",
      "--exclude",
      "*.log",
      "--include=keep.log",
      "src",
      "mirror",
    );
    assert.deepEqual(done.plan.remove, []);
    assert.deepEqual(await treeContents(join(server.root, "mirror")), {
      ".ftsignore": "# build output\nbuild/\n",
      "a.txt": "a",
      "keep.log": "kept",
      "server.log": "the server's own",
    });
  } finally {
    await server.stop();
  }
});

Deno.test("sync leaves a target file newer than the source's alone, unless -f", async () => {
  const server = await startServer();
  try {
    const src = join(server.dir, "src");
    await writeTree(src, { "notes.txt": "mine" });
    await sync(server, "src", "mirror");
    // Someone else wrote the server's copy later.
    const theirs = join(server.root, "mirror", "notes.txt");
    await Deno.writeTextFile(theirs, "theirs, written later");
    const later = new Date(Date.now() + 60_000);
    await Deno.utime(theirs, later, later);
    const run = await runClient([`127.0.0.1:${server.port}`, "sync", "src", "mirror"], {
      cwd: server.dir,
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /! notes\.txt: newer on the target \(-f replaces it\)/);
    assert.equal(await Deno.readTextFile(theirs), "theirs, written later");
    const forced = await sync(server, "-f", "src", "mirror");
    assert.equal(forced.result.files, 1);
    assert.equal(await Deno.readTextFile(theirs), "mine");
  } finally {
    await server.stop();
  }
});

Deno.test("sync --down makes a local tree equal to a remote one, the same way", async () => {
  const server = await startServer();
  try {
    await writeTree(join(server.root, "published"), FIRST);
    const first = await sync(server, "--down", "published", "copy");
    assert.equal(first.result.files, 3);
    const copy = join(server.dir, "copy");
    assert.deepEqual(await treeContents(copy), FIRST);
    const again = await sync(server, "--down", "published", "copy");
    assert.equal(again.result.files, 0);

    await Deno.writeTextFile(
      join(server.root, "published", "a.txt"),
      "alpha, edited on the server",
    );
    await writeTree(copy, { "local-only.txt": "here only" });
    const changed = await sync(server, "--down", "--delete", "published", "copy");
    assert.deepEqual(changed.plan.update.map((f: { path: string }) => f.path), ["a.txt"]);
    assert.deepEqual(changed.plan.remove, [{ path: "local-only.txt", dir: false }]);
    assert.deepEqual(await treeContents(copy), await treeContents(join(server.root, "published")));
  } finally {
    await server.stop();
  }
});

Deno.test({
  name: "sync in the shell previews the plan: no changes nothing, yes syncs",
  ignore,
  async fn() {
    const server = await startServer();
    const home = await Deno.makeTempDir();
    await writeTree(join(server.dir, "src"), FIRST);
    const term = await openShell(server.dir, server.port, home);
    try {
      await term.line("sync src mirror");
      assert.ok(
        await term.waitFor(
          /sync src -> \/mirror: 3 new.*\n(?:.*\n)*\+ sub\/deep\/c\.txt\nProceed\? \[y\/N\]/,
        ),
        await term.screen(),
      );
      await term.line("n");
      assert.ok(await term.waitFor(/nothing was changed/), await term.screen());
      await assert.rejects(Deno.stat(join(server.root, "mirror")), Deno.errors.NotFound);
      await term.line("sync src mirror");
      assert.ok(await term.waitFor(/Proceed\?[\s\S]*Proceed\? \[y\/N\]/), await term.screen());
      await term.line("y");
      assert.ok(await term.waitFor(/synced 3 files/), await term.screen());
      assert.deepEqual(await treeContents(join(server.root, "mirror")), FIRST);
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});

Deno.test("sync's mistakes are usage errors that say what is missing", async () => {
  const server = await startServer();
  try {
    const noPattern = await runClient([`127.0.0.1:${server.port}`, "sync", "a", "b", "--exclude"]);
    assert.equal(noPattern.code, 2, noPattern.stderr);
    assert.match(noPattern.stderr, /--exclude needs a PATTERN/);
    const valueOnSwitch = await runClient([
      `127.0.0.1:${server.port}`,
      "sync",
      "--delete=yes",
      "a",
      "b",
    ]);
    assert.equal(valueOnSwitch.code, 2, valueOnSwitch.stderr);
    assert.match(valueOnSwitch.stderr, /--delete takes no value/);
    const missing = await runClient([`127.0.0.1:${server.port}`, "sync", "no-such-dir", "b"], {
      cwd: server.dir,
    });
    assert.equal(missing.code, 1, missing.stderr);
    assert.match(missing.stderr, /NOT_FOUND: the source directory no-such-dir does not exist/);
  } finally {
    await server.stop();
  }
});

/** A rate at which the big file of the interrupted sync takes half a minute: Ctrl-C finds it moving. */
const SLOW_BYTES_PER_SECOND = 2 << 20;

Deno.test({
  name: "Ctrl-C stops a sync in the shell; running it again sends only what had not arrived",
  ignore,
  async fn() {
    const server = await startServer();
    const relay = await startDelayRelay(server.port, 0);
    const home = await Deno.makeTempDir();
    const src = join(server.dir, "src");
    await writeTree(src, { "a.txt": "alpha", "b.txt": "bravo", "c.txt": "charlie" });
    await writeRandomFile(join(src, "z-big.bin"), 64 << 20);
    relay.limitRate(SLOW_BYTES_PER_SECOND);
    const term = await openShell(server.dir, relay.port, home);
    try {
      await term.line("sync -y src mirror");
      assert.ok(await term.waitFor(/4 files {2}[\d.]+ MiB \/ 64\.0 MiB/), await term.screen());
      await term.keys("C-c");
      assert.ok(
        await term.waitFor(
          /fts: Interrupt: 3 of 4 files done; to continue where it stopped: sync -y src mirror/,
        ),
        await term.screen(),
      );
      assert.ok(await term.waitFor(/fts:\/>\s*$/m), await term.screen());
      // Nothing half-sent is visible under its name.
      await assert.rejects(
        Deno.stat(join(server.root, "mirror", "z-big.bin")),
        Deno.errors.NotFound,
      );
      relay.limitRate(null);
      await term.line("sync -y src mirror");
      assert.ok(await term.waitFor(/synced 1 file,/), await term.screen());
      assert.match(
        await term.screen(),
        /1 new \(64\.0 MiB\), 0 updated \(0 B\), 0 to remove, 3 unchanged/,
      );
      assert.equal(
        await sha256File(join(server.root, "mirror", "z-big.bin")),
        await sha256File(join(src, "z-big.bin")),
      );
      await term.line("quit");
      assert.ok(await term.waitFor(/exit status 0/), await term.screen());
    } finally {
      await term.close();
      await relay.close();
      await server.stop();
      await Deno.remove(home, { recursive: true });
    }
  },
});
