import assert from "node:assert/strict";
import { join } from "node:path";
import { listTree, runCommand, startServer } from "./_helpers.ts";

/** Writes `tree/f1.log` and `tree/sub/f2.log` under `dir`. */
async function writeTree(dir: string): Promise<void> {
  await Deno.mkdir(join(dir, "tree", "sub"), { recursive: true });
  await Deno.writeTextFile(join(dir, "tree", "f1.log"), "one");
  await Deno.writeTextFile(join(dir, "tree", "sub", "f2.log"), "two");
}

Deno.test("put -r into a target ending in / or an existing directory lands inside it", async () => {
  const server = await startServer();
  try {
    await writeTree(server.dir);
    const slash = await runCommand(server, ["put", "-r", "tree", "docs/"]);
    assert.equal(slash.code, 0, slash.stderr);
    await Deno.mkdir(join(server.root, "there"));
    const existing = await runCommand(server, ["put", "-r", "tree", "there"]);
    assert.equal(existing.code, 0, existing.stderr);
    const missing = await runCommand(server, ["put", "-r", "tree", "copy"]);
    assert.equal(missing.code, 0, missing.stderr);
    const files = (await listTree(server.root)).filter((p) => !p.startsWith(".fts"));
    const expected = [
      "docs/tree/f1.log",
      "docs/tree/sub/f2.log",
      "there/tree/f1.log",
      "copy/f1.log",
    ];
    for (const path of expected) {
      assert.ok(files.includes(path), `${path} in ${files.join(", ")}`);
    }
    assert.ok(!files.includes("docs/f1.log"), "a tree put into docs/ keeps its own name");

    // A file into an existing directory named without its slash: inside, as scp does.
    await Deno.writeTextFile(join(server.dir, "a.txt"), "a");
    const file = await runCommand(server, ["put", "a.txt", "docs"]);
    assert.equal(file.code, 0, file.stderr);
    assert.equal(await Deno.readTextFile(join(server.root, "docs", "a.txt")), "a");
  } finally {
    await server.stop();
  }
});

Deno.test("get -r and get into a target ending in / land inside it, made when missing", async () => {
  const server = await startServer();
  try {
    await writeTree(server.root);
    const slash = await runCommand(server, ["get", "-r", "tree", "dst/"]);
    assert.equal(slash.code, 0, slash.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "dst", "tree", "sub", "f2.log")), "two");
    const existing = await runCommand(server, ["get", "-r", "tree", "dst"]);
    assert.equal(existing.code, 1, "the second copy meets the first: refused without -f");
    const missing = await runCommand(server, ["get", "-r", "tree", "flat"]);
    assert.equal(missing.code, 0, missing.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "flat", "f1.log")), "one");

    // A missing out/ is a directory, never a file named out.
    const file = await runCommand(server, ["get", "tree/f1.log", "out/"]);
    assert.equal(file.code, 0, file.stderr);
    assert.ok((await Deno.stat(join(server.dir, "out"))).isDirectory);
    assert.equal(await Deno.readTextFile(join(server.dir, "out", "f1.log")), "one");
  } finally {
    await server.stop();
  }
});

Deno.test("a leading / names the top of the served directory, and pwd shows /-rooted paths", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "etc"));
    await Deno.writeTextFile(join(server.root, "etc", "passwd"), "served");
    const run = await runCommand(server, [], {
      stdin: "cd etc\npwd\nget /etc/passwd got.txt\ncd /\npwd\n",
    });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^\/etc$/m);
    assert.match(run.stdout, /^\/$/m);
    assert.equal(await Deno.readTextFile(join(server.dir, "got.txt")), "served");
    const json = await runCommand(server, ["--json", "pwd"]);
    assert.deepEqual(JSON.parse(json.stdout), { dir: "/" });
  } finally {
    await server.stop();
  }
});

Deno.test("put of a local file that is not there makes nothing on the server, not even its target", async () => {
  const server = await startServer();
  try {
    for (
      const args of [["-r", "nonexist", "newdir/"], ["nonexist", "newdir2/"], ["a", "b", "dir3"]]
    ) {
      const run = await runCommand(server, ["put", ...args]);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /NOT_FOUND: no such local file: (nonexist|a)/);
    }
    assert.deepEqual((await listTree(server.root)).filter((p) => !p.startsWith(".fts")), []);
  } finally {
    await server.stop();
  }
});

Deno.test("local paths that are not there fail with a stable code and the path typed, not the runtime's text", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, "a.txt"), "a");
    const deeper = await runCommand(server, ["get", "a.txt", "nonexist/deeper/x.txt"]);
    assert.equal(deeper.code, 1, deeper.stderr);
    assert.match(
      deeper.stderr,
      /NOT_FOUND: no local directory nonexist\/deeper to write nonexist\/deeper\/x\.txt in/,
    );
    assert.doesNotMatch(deeper.stderr, /os error|fts-partial/);
    const json = await runCommand(server, ["--json", "lls", "nonexist"]);
    assert.equal(json.code, 1, json.stderr);
    assert.equal(JSON.parse(json.stdout).error.code, "NOT_FOUND");
    assert.match(json.stderr, /NOT_FOUND: here: no such file or directory: nonexist/);
  } finally {
    await server.stop();
  }
});

Deno.test("get of a directory without -r says a tree needs -r, whether a directory of its name is here or not", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "docs", "tree"), { recursive: true });
    await Deno.writeTextFile(join(server.root, "docs", "tree", "f.txt"), "f");
    const plain = await runCommand(server, ["get", "docs/tree"]);
    assert.equal(plain.code, 1, plain.stderr);
    assert.match(plain.stderr, /WRONG_TYPE: .*\(get -r fetches a tree\)/);
    await Deno.mkdir(join(server.dir, "tree"));
    for (const args of [["get", "docs/tree"], ["get", "-f", "docs/tree"]]) {
      const run = await runCommand(server, args);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, /WRONG_TYPE: .*\(get -r fetches a tree\)/, args.join(" "));
      assert.doesNotMatch(run.stderr, /EXISTS/);
    }
  } finally {
    await server.stop();
  }
});
