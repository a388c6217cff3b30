import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand, sha256File, startServer, xxh3File } from "./_helpers.ts";

Deno.test("mkdir, rename, stat, and cd/pwd in a script work on the server", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "a.txt"), "alpha");
    const script = [
      "mkdir inbox/2026",
      "cd inbox",
      "pwd",
      "put a.txt 2026/a.txt",
      "put a.txt",
      "mv a.txt b.txt",
      "stat b.txt",
      "cd ..",
      "pwd",
    ].join("\n");
    const run = await runCommand(server, [], { stdin: script });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /^\/inbox$/m);
    assert.match(run.stdout, /^\/$/m);
    assert.match(run.stdout, /renamed inbox\/a\.txt -> inbox\/b\.txt/);
    assert.match(run.stdout, /^type: +file$/m);
    assert.match(run.stdout, /^size: +5 /m);
    assert.match(
      run.stdout,
      new RegExp(`^sha256: +${await sha256File(join(server.dir, "a.txt"))}$`, "m"),
    );
    assert.equal(await Deno.readTextFile(join(server.root, "inbox", "2026", "a.txt")), "alpha");
    assert.equal(await Deno.readTextFile(join(server.root, "inbox", "b.txt")), "alpha");
    await assert.rejects(Deno.stat(join(server.root, "inbox", "a.txt")), Deno.errors.NotFound);

    const exists = await runCommand(server, ["mkdir", "inbox"]);
    assert.equal(exists.code, 1);
    assert.match(exists.stderr, /EXISTS/);
    const clash = await runCommand(server, ["mv", "inbox/b.txt", "inbox/2026/a.txt"]);
    assert.match(clash.stderr, /EXISTS/);
    assert.equal(
      (await runCommand(server, ["mv", "-f", "inbox/b.txt", "inbox/2026/a.txt"])).code,
      0,
    );
    const intoItself = await runCommand(server, ["mv", "inbox", "inbox/2026/inbox"]);
    assert.equal(intoItself.code, 1);
    assert.match(intoItself.stderr, /BAD_REQUEST/);
    const notDir = await runCommand(server, [], { stdin: "cd inbox/2026/a.txt\n" });
    assert.equal(notDir.code, 2);
    assert.match(notDir.stderr, /not a directory/);
  } finally {
    await server.stop();
  }
});

Deno.test("lcd, lpwd and lls work on the local side", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.dir, "local"));
    await Deno.writeTextFile(join(server.dir, "local", "l.txt"), "12345");
    const run = await runCommand(server, [], { stdin: "lcd local\nlpwd\nlls\nput l.txt\n" });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /\/local$/m);
    assert.match(run.stdout, /^file\s+5 .* l\.txt$/m);
    assert.equal(await Deno.readTextFile(join(server.root, "l.txt")), "12345");
  } finally {
    await server.stop();
  }
});

Deno.test("upload -r and download -r move whole trees, each file verified, with -p keeping mtimes", async () => {
  const server = await startServer();
  try {
    const tree = join(server.dir, "project");
    await Deno.mkdir(join(tree, "src", "deep"), { recursive: true });
    await Deno.mkdir(join(tree, "empty"));
    await Deno.writeTextFile(join(tree, "README"), "read me");
    await Deno.writeTextFile(join(tree, "src", "main.ts"), "main");
    await Deno.writeFile(join(tree, "src", "deep", "blob.bin"), new Uint8Array(70_000).fill(9));
    const old = new Date("2020-01-02T03:04:05Z");
    await Deno.utime(join(tree, "README"), old, old);

    const up = await runCommand(server, ["upload", "-r", "-p", "project", "backup"]);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /uploaded 3 files, .* all verified/);
    for (const path of ["README", "src/main.ts", "src/deep/blob.bin"]) {
      assert.equal(
        await sha256File(join(server.root, "backup", path)),
        await sha256File(join(tree, path)),
      );
    }
    assert.ok((await Deno.stat(join(server.root, "backup", "empty"))).isDirectory);
    assert.equal(
      (await Deno.stat(join(server.root, "backup", "README"))).mtime?.getTime(),
      old.getTime(),
    );

    const down = await runCommand(server, ["download", "-r", "-p", "backup", "restored"]);
    assert.equal(down.code, 0, down.stderr);
    for (const path of ["README", "src/main.ts", "src/deep/blob.bin"]) {
      assert.equal(
        await sha256File(join(server.dir, "restored", path)),
        await sha256File(join(tree, path)),
      );
    }
    assert.ok((await Deno.stat(join(server.dir, "restored", "empty"))).isDirectory);
    assert.equal(
      (await Deno.stat(join(server.dir, "restored", "README"))).mtime?.getTime(),
      old.getTime(),
    );
  } finally {
    await server.stop();
  }
});

Deno.test("glob patterns pick local files for upload and remote files for download", async () => {
  const server = await startServer();
  try {
    for (const name of ["a.log", "b.log", "c.txt", ".hidden.log"]) {
      await Deno.writeTextFile(join(server.dir, name), name);
    }
    const up = await runCommand(server, ["upload", "*.log", "logs"]);
    assert.equal(up.code, 0, up.stderr);
    const names = [...Deno.readDirSync(join(server.root, "logs"))].map((e) => e.name).sort();
    assert.deepEqual(names, ["a.log", "b.log"]);
    await Deno.mkdir(join(server.dir, "fetched"));
    const down = await runCommand(server, ["download", "logs/[ab].log", "fetched"]);
    assert.equal(down.code, 0, down.stderr);
    assert.deepEqual([...Deno.readDirSync(join(server.dir, "fetched"))].map((e) => e.name).sort(), [
      "a.log",
      "b.log",
    ]);
    const none = await runCommand(server, ["download", "logs/*.csv"]);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no remote files match/);
  } finally {
    await server.stop();
  }
});

Deno.test("--json prints one document per command with stable fields", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "j.txt"), "json");
    const put = await runCommand(server, ["--json", "put", "j.txt"]);
    assert.equal(put.code, 0, put.stderr);
    const transfer = JSON.parse(put.stdout);
    assert.equal(transfer.op, "upload");
    assert.deepEqual(Object.keys(transfer.files[0]).sort(), [
      "checksum",
      "digest",
      "local",
      "remote",
      "resumedFrom",
      "size",
      "verified",
    ]);
    assert.equal(transfer.files[0].checksum, "xxh3-128");
    assert.equal(transfer.files[0].digest, await xxh3File(join(server.dir, "j.txt")));
    assert.equal(transfer.files[0].verified, true);
    assert.equal(transfer.files[0].size, 4);
    const ls = JSON.parse((await runCommand(server, ["--json", "ls"])).stdout);
    assert.deepEqual(ls.entries.map((e: { name: string }) => e.name), ["j.txt"]);
    assert.deepEqual(Object.keys(ls.entries[0]).sort(), ["mtime", "name", "size", "type"]);
    const stat = JSON.parse((await runCommand(server, ["--json", "stat", "j.txt"])).stdout);
    assert.equal(stat.sha256, await sha256File(join(server.dir, "j.txt")));
    const failed = await runCommand(server, ["--json", "get", "missing"]);
    assert.equal(failed.code, 1);
    assert.equal(JSON.parse(failed.stdout).error.code, "NOT_FOUND");
    const script = await runCommand(server, ["--json"], { stdin: "ls\nstat j.txt\n" });
    const documents = script.stdout.trim().split("\n").map((line) => JSON.parse(line));
    assert.equal(documents.length, 2);
  } finally {
    await server.stop();
  }
});

Deno.test("-b runs a batch file; lines starting with - may fail", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "x.txt"), "x");
    await Deno.writeTextFile(
      join(server.dir, "batch"),
      "-rm not-there.txt\nput x.txt\n-mkdir\nput x.txt second.txt\nrm nope\nput x.txt never.txt\n",
    );
    const run = await runCommand(server, ["-b", "batch"]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /NOT_FOUND.*not-there/);
    const names = [...Deno.readDirSync(server.root)].map((e) => e.name).filter((n) => n !== ".fts");
    assert.deepEqual(names.sort(), ["second.txt", "x.txt"]);
  } finally {
    await server.stop();
  }
});
