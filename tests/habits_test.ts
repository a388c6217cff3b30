import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand, startServer } from "./_helpers.ts";

Deno.test("ls and lls take -l, -h and -t; ls and stat show times alike", async () => {
  const server = await startServer();
  try {
    await Deno.writeFile(join(server.root, "big.bin"), new Uint8Array(3 * 1024 * 1024));
    await Deno.writeTextFile(join(server.root, "new.txt"), "n");
    await Deno.utime(join(server.root, "big.bin"), 1_000_000, 1_000_000);
    const long = await runCommand(server, ["ls", "-l"]);
    assert.equal(long.code, 0, long.stderr);
    assert.match(long.stdout, /^file\s+3145728\s/m);
    const human = await runCommand(server, ["ls", "-lht"]);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^file\s+3\.0 MiB\s/m);
    assert.ok(human.stdout.indexOf("new.txt") < human.stdout.indexOf("big.bin"), "newest first");
    const byName = await runCommand(server, ["ls"]);
    assert.ok(byName.stdout.indexOf("big.bin") < byName.stdout.indexOf("new.txt"));
    const time = /(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+big\.bin/.exec(long.stdout)?.[1];
    assert.ok(time, long.stdout);
    const stat = await runCommand(server, ["stat", "big.bin"]);
    assert.match(stat.stdout, new RegExp(`modified: ${time}$`, "m"));

    const lls = await runCommand(server, ["lls", "-l", "-h", "root"]);
    assert.equal(lls.code, 0, lls.stderr);
    assert.match(lls.stdout, /3\.0 MiB .* big\.bin/);
  } finally {
    await server.stop();
  }
});

Deno.test("mkdir -p, rm of several names, patterns and -r trees", async () => {
  const server = await startServer();
  try {
    const mk = await runCommand(server, ["mkdir", "-p", "x/y", "z"]);
    assert.equal(mk.code, 0, mk.stderr);
    const again = await runCommand(server, ["mkdir", "-p", "x/y"]);
    assert.equal(again.code, 0, again.stderr);
    // Not claimed as made: it was there.
    assert.equal(again.stdout.trim(), "x/y/ is there already");
    const plain = await runCommand(server, ["mkdir", "x"]);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /EXISTS/);
    assert.doesNotMatch(plain.stderr, /--force/);

    for (const name of ["a.log", "b.log", "c.txt", "x/y/deep.txt"]) {
      await Deno.writeTextFile(join(server.root, name), name);
    }
    const rm = await runCommand(server, ["rm", "*.log", "c.txt"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.match(rm.stdout, /deleted a\.log\ndeleted b\.log\ndeleted c\.txt/);
    const notEmpty = await runCommand(server, ["rm", "x"]);
    assert.equal(notEmpty.code, 1);
    const tree = await runCommand(server, ["rm", "-r", "x", "z"]);
    assert.equal(tree.code, 0, tree.stderr);
    assert.deepEqual([...Deno.readDirSync(server.root)].map((e) => e.name), [".fts"]);
  } finally {
    await server.stop();
  }
});

Deno.test("put and get of several sources into a directory", async () => {
  const server = await startServer();
  try {
    for (const name of ["a", "b", "c"]) await Deno.writeTextFile(join(server.dir, name), name);
    const put = await runCommand(server, ["put", "a", "b", "c", "dir/"]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /uploaded 3 files/);
    assert.equal(await Deno.readTextFile(join(server.root, "dir", "b")), "b");
    const get = await runCommand(server, ["get", "dir/a", "dir/c", "back"]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "back", "c")), "c");
    // A name starting with '-' is written ./-x or after --.
    await Deno.writeTextFile(join(server.dir, "-x"), "dash");
    const dash = await runCommand(server, ["put", "--", "-x", "dash.txt"]);
    assert.equal(dash.code, 0, dash.stderr);
    assert.equal(await Deno.readTextFile(join(server.root, "dash.txt")), "dash");
    // A lone '-' is a file named '-', not standard input.
    await Deno.writeTextFile(join(server.dir, "-"), "lone");
    const lone = await runCommand(server, ["put", "-", "lone.txt"], { stdin: "not this" });
    assert.equal(lone.code, 0, lone.stderr);
    assert.equal(await Deno.readTextFile(join(server.root, "lone.txt")), "lone");
    const wrong = await runCommand(server, ["put", "-x"]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /upload has no option '-x'/);
  } finally {
    await server.stop();
  }
});
