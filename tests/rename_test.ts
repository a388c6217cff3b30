/**
 * rename's errors name what is wrong: a missing source, or a missing
 * directory for the new name; EXISTS carries no client advice from the
 * server (the client adds `--force` for its own flag).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { listTree, RawClient, runCommand, startServer } from "./_helpers.ts";

Deno.test("rename into a missing directory is NOT_FOUND naming that directory, not the source", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, "a.txt"), "a");
    await Deno.writeTextFile(join(server.root, "b.txt"), "b");
    const raw = await RawClient.open(server.port);
    try {
      const intoMissing = await raw.request({
        op: "rename",
        name: "a.txt",
        to: "nowhere/a.txt",
        overwrite: false,
      });
      const error = intoMissing?.error as { code: string; message: string };
      assert.equal(error.code, "NOT_FOUND");
      assert.match(error.message, /the directory "nowhere" of the new name "nowhere\/a\.txt"/);
      const missingSource = await raw.request({
        op: "rename",
        name: "gone.txt",
        to: "c.txt",
        overwrite: false,
      });
      const missing = missingSource?.error as { code: string; message: string };
      assert.equal(missing.code, "NOT_FOUND");
      assert.match(missing.message, /"gone\.txt"/);
      const taken = await raw.request({
        op: "rename",
        name: "a.txt",
        to: "b.txt",
        overwrite: false,
      });
      const exists = taken?.error as { code: string; message: string };
      assert.equal(exists.code, "EXISTS");
      assert.equal(exists.message, `"b.txt" already exists`);
    } finally {
      raw.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("rename with overwrite names the target when it is what stands in the way", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "dir"));
    await Deno.mkdir(join(server.root, "full"));
    await Deno.writeTextFile(join(server.root, "full", "kept.txt"), "kept");
    await Deno.writeTextFile(join(server.root, "a.txt"), "a");
    const raw = await RawClient.open(server.port);
    try {
      const cases: [string, string, string, RegExp][] = [
        ["dir", "full", "NOT_EMPTY", /^"full" is a directory that is not empty$/],
        ["a.txt", "full", "WRONG_TYPE", /^"full" is a directory: a file cannot replace it$/],
        ["dir", "a.txt", "WRONG_TYPE", /^"a\.txt" is not a directory/],
      ];
      for (const [name, to, code, message] of cases) {
        const reply = await raw.request({ op: "rename", name, to, overwrite: true });
        const error = reply?.error as { code: string; message: string };
        assert.equal(error.code, code, `${name} -> ${to}`);
        assert.match(error.message, message);
      }
      assert.equal(await Deno.readTextFile(join(server.root, "full", "kept.txt")), "kept");
    } finally {
      raw.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("mv into a directory that is there moves under the same name, as mv does", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "archive"));
    await Deno.writeTextFile(join(server.root, "report.txt"), "r");
    const run = await runCommand(server, ["mv", "report.txt", "archive"]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /renamed report\.txt -> archive\/report\.txt/);
    assert.equal(await Deno.readTextFile(join(server.root, "archive", "report.txt")), "r");
    const slash = await runCommand(server, ["mv", "archive/report.txt", "missing/"]);
    assert.equal(slash.code, 1);
    assert.match(slash.stderr, /NOT_FOUND/);
  } finally {
    await server.stop();
  }
});

Deno.test("mv without -f moves links, a dangling one, and hard links as rename(2) does: onto nothing only", async () => {
  const server = await startServer([]);
  const root = server.root;
  const raw = await RawClient.open(server.port);
  const move = (name: string, to: string, overwrite = false) =>
    raw.request({ op: "rename", name, to, overwrite });
  try {
    Deno.mkdirSync(join(root, "d/sub"), { recursive: true });
    Deno.writeTextFileSync(join(root, "f"), "f");
    Deno.symlinkSync("f", join(root, "link"));
    Deno.symlinkSync("d", join(root, "dlink"));
    Deno.symlinkSync("nowhere", join(root, "dangling"));
    Deno.linkSync(join(root, "f"), join(root, "f2"));
    Deno.mkdirSync(join(root, "empty"));
    Deno.mkdirSync(join(root, "e2"));
    assert.equal((await move("d", "d/sub/x"))?.ok, false, "a directory into itself");
    const links: [string, string][] = [["link", "link2"], ["dlink", "dlink2"], [
      "dangling",
      "dangling2",
    ]];
    for (const [from, to] of links) {
      const reply = await move(from, to);
      assert.equal(reply?.ok, true, `${from}: ${JSON.stringify(reply)}`);
      assert.ok(Deno.lstatSync(join(root, to)).isSymlink, to);
    }
    assert.equal(Deno.readLinkSync(join(root, "link2")), "f");
    const same = await move("f", "f2");
    assert.equal((same?.error as { code: string }).code, "EXISTS", JSON.stringify(same));
    assert.equal((await move("f2", "g"))?.ok, true);
    assert.equal((await move("e2", "empty", true))?.ok, true);
    const names = (await listTree(root)).filter((path) => !path.startsWith(".fts/"));
    assert.deepEqual(names, ["d/", "d/sub/", "dangling2", "dlink2", "empty/", "f", "g", "link2"]);
    assert.equal(Deno.lstatSync(join(root, "g")).ino, Deno.lstatSync(join(root, "f")).ino);
  } finally {
    raw.close();
    await server.stop();
  }
});
