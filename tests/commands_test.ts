import assert from "node:assert/strict";
import { join } from "node:path";
import {
  listTree,
  runClient,
  runCommand,
  sha256File,
  startServer,
  writeRandomFile,
} from "./_helpers.ts";

Deno.test("connect runs every command once from the command line", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "report 2026 ü.bin");
    const sum = await writeRandomFile(local, 4096);

    const put = await runCommand(server, ["upload", local, "docs/report 2026 ü.bin"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(put.stderr, "", "no progress line when stderr is not a terminal");
    assert.match(put.stdout, /uploaded .* -> docs\/report 2026 ü\.bin: .*verified/);
    assert.equal(await sha256File(join(server.root, "docs", "report 2026 ü.bin")), sum);

    const ls = await runCommand(server, ["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.match(ls.stdout, /^dir .* docs\/$/m);
    assert.doesNotMatch(ls.stdout, /\.fts/);

    const lsDir = await runCommand(server, ["LIST", "docs"]);
    assert.match(lsDir.stdout, /^file\s+4096\s+\S+ \S+\s+report 2026 ü\.bin$/m);

    const got = await runCommand(server, ["get", "docs/report 2026 ü.bin", "copy.bin"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256File(join(server.dir, "copy.bin")), sum);

    const rm = await runCommand(server, ["rm", "docs/report 2026 ü.bin"]);
    assert.equal(rm.code, 0, rm.stderr);
    const rmDir = await runCommand(server, ["Delete", "docs"]);
    assert.equal(rmDir.code, 0, rmDir.stderr);
    assert.deepEqual([...Deno.readDirSync(server.root)].map((e) => e.name), [".fts"]);

    const help = await runCommand(server, ["help"]);
    assert.equal(help.code, 0);
    for (const word of ["list", "upload", "download", "delete", "logout", "terminate"]) {
      assert.match(help.stdout, new RegExp(`\\b${word}\\b`));
    }
    const helpPut = await runCommand(server, ["help", "put"]);
    assert.match(
      helpPut.stdout,
      /usage: upload \[-f\] \[-r\] \[-p\] \[--resume\] \[--if-unchanged\] LOCAL\.\.\. \[REMOTE\]/,
    );

    for (const bye of ["logout", "quit", "exit", "bye"]) {
      const run = await runCommand(server, [bye]);
      assert.equal(run.code, 0, `${bye}: ${run.stderr}`);
    }
  } finally {
    await server.stop();
  }
});

Deno.test("upload and download refuse to overwrite without --force", async () => {
  const server = await startServer();
  try {
    const first = join(server.dir, "a.txt");
    await Deno.writeTextFile(first, "first");
    assert.equal((await runCommand(server, ["put", first])).code, 0);
    await Deno.writeTextFile(first, "second version");
    const again = await runCommand(server, ["put", first]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /^fts: EXISTS: .*--force/);
    assert.equal(await Deno.readTextFile(join(server.root, "a.txt")), "first");

    const forced = await runCommand(server, ["put", "--force", first]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(await Deno.readTextFile(join(server.root, "a.txt")), "second version");

    await Deno.writeTextFile(join(server.dir, "local.txt"), "keep me");
    const get = await runCommand(server, ["get", "a.txt", "local.txt"]);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /EXISTS/);
    assert.equal(await Deno.readTextFile(join(server.dir, "local.txt")), "keep me");
    const getForced = await runCommand(server, ["get", "-f", "a.txt", "local.txt"]);
    assert.equal(getForced.code, 0, getForced.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "local.txt")), "second version");
    const leftovers = [...Deno.readDirSync(server.dir)].filter((e) => e.name.includes("partial"));
    assert.deepEqual(leftovers, []);
  } finally {
    await server.stop();
  }
});

Deno.test("upload to a directory name and download into a directory keep the base name", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "n.txt"), "n");
    assert.equal((await runCommand(server, ["put", "n.txt", "inbox/"])).code, 0);
    assert.equal(await Deno.readTextFile(join(server.root, "inbox", "n.txt")), "n");
    await Deno.mkdir(join(server.dir, "out"));
    const got = await runCommand(server, ["get", "inbox/n.txt", "out"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "out", "n.txt")), "n");
  } finally {
    await server.stop();
  }
});

Deno.test("commands report errors with a code and a distinct exit status", async () => {
  const server = await startServer();
  try {
    const missing = await runCommand(server, ["get", "nope.txt"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^fts: NOT_FOUND: /);
    const missingLocal = await runCommand(server, ["put", "no-such-local-file"]);
    assert.equal(missingLocal.code, 1);
    assert.match(missingLocal.stderr, /no such local file/);
    const bad = await runCommand(server, ["rm", "a\\b"]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^fts: BAD_NAME: /);
    const above = await runCommand(server, ["rm", "../etc"]);
    assert.equal(above.code, 2);
    assert.match(above.stderr, /above the top of the served directory/);
    const usage = await runCommand(server, ["put"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: upload/);
    const unknown = await runCommand(server, ["frobnicate"]);
    assert.equal(unknown.code, 2);
    await Deno.mkdir(join(server.root, "full"));
    await Deno.writeTextFile(join(server.root, "full", "x"), "x");
    const notEmpty = await runCommand(server, ["rm", "full"]);
    assert.equal(notEmpty.code, 1);
    assert.match(notEmpty.stderr, /NOT_EMPTY/);
  } finally {
    await server.stop();
  }
});

Deno.test("connect finds the port in the port file, and says clearly when it cannot", async () => {
  const server = await startServer();
  try {
    const viaFile = await runClient(["--port-file", server.portFile, "ls"], { cwd: server.dir });
    assert.equal(viaFile.code, 0, viaFile.stderr);
    const viaDefault = await runClient(["ls"], { cwd: server.dir });
    assert.equal(viaDefault.code, 0, viaDefault.stderr);
  } finally {
    await server.stop();
  }
  const empty = await Deno.makeTempDir();
  try {
    const noFile = await runClient(["ls"], { cwd: empty });
    assert.equal(noFile.code, 3);
    assert.equal(noFile.stderr.trim().split("\n").length, 1);
    assert.match(noFile.stderr, /no port file port: start `fts serve` here, or give HOST:PORT/);

    // A port nobody listens on: take one from the system, then close it.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    const refused = await runClient([`127.0.0.1:${port}`, "ls"], { cwd: empty });
    assert.equal(refused.code, 3);
    assert.match(refused.stderr, /cannot connect to 127\.0\.0\.1:\d+: connection refused/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});

Deno.test("commands from standard input run in order and stop at the first failure", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "one two.txt"), "1");
    const script = [
      "# a comment",
      `put "one two.txt" first.txt`,
      "",
      "PUT 'one two.txt' second.txt",
      "get missing.txt",
      "put 'one two.txt' never.txt",
    ].join("\n");
    const run = await runCommand(server, [], { stdin: script });
    assert.equal(run.code, 1);
    assert.match(run.stderr, /NOT_FOUND/);
    const names = [...Deno.readDirSync(server.root)].map((e) => e.name).sort();
    assert.deepEqual(names, [".fts", "first.txt", "second.txt"]);

    const ok = await runCommand(server, [], { stdin: "ls\nlogout\nls\n" });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout.match(/first\.txt/g)?.length, 1);
  } finally {
    await server.stop();
  }
});

Deno.test("download of a remote pattern into a missing local directory creates it, matches only", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "logs", "old.log"), { recursive: true });
    const sums: Record<string, string> = {};
    for (const name of ["a.log", "b.log"]) {
      sums[name] = await writeRandomFile(join(server.root, "logs", name), 70_000);
    }
    await writeRandomFile(join(server.root, "logs", "c.txt"), 100);
    await Deno.writeFile(join(server.root, "logs", "empty.log"), new Uint8Array());
    sums["empty.log"] = await sha256File(join(server.root, "logs", "empty.log"));
    const down = await runCommand(server, ["get", "logs/*.log", "out/nested"]);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /downloaded 3 files, .* all verified/);
    assert.deepEqual(await listTree(join(server.dir, "out")), [
      "nested/",
      "nested/a.log",
      "nested/b.log",
      "nested/empty.log",
    ]);
    for (const [name, sum] of Object.entries(sums)) {
      assert.equal(await sha256File(join(server.dir, "out", "nested", name)), sum, name);
    }
    const none = await runCommand(server, ["get", "logs/*.csv", "never"]);
    assert.equal(none.code, 1);
    await assert.rejects(Deno.stat(join(server.dir, "never")), Deno.errors.NotFound);
  } finally {
    await server.stop();
  }
});

Deno.test("a wildcard in a directory part of a pattern is a usage error on both sides", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.dir, "here"));
    await Deno.writeTextFile(join(server.dir, "here", "x.log"), "x");
    for (const args of [["get", "*/x.log", "out"], ["put", "h*/x.log", "logs"]]) {
      const run = await runCommand(server, args);
      assert.equal(run.code, 2, `${args}: ${run.stderr}`);
      assert.match(run.stderr, /^fts: only the last part of a pattern may hold wildcards/);
      assert.equal(run.stderr.trim().split("\n").length, 1, run.stderr);
    }
  } finally {
    await server.stop();
  }
});
