import assert from "node:assert/strict";
import { join } from "node:path";
import { RawClient, runCommand, startServer } from "./_helpers.ts";

/** The permission bits of `path`. */
function modeOf(path: string): number {
  return Deno.statSync(path).mode! & 0o7777;
}

Deno.test("put -p keeps a file's mode bits, get -p takes the server's; without -p, 0644", async () => {
  const server = await startServer();
  try {
    const script = join(server.dir, "run.sh");
    await Deno.writeTextFile(script, "#!/bin/sh\necho hi\n");
    await Deno.chmod(script, 0o755);
    const kept = await runCommand(server, ["put", "-p", "run.sh"]);
    assert.equal(kept.code, 0, kept.stderr);
    assert.equal(modeOf(join(server.root, "run.sh")).toString(8), "755");
    const plain = await runCommand(server, ["put", "run.sh", "plain.sh"]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(modeOf(join(server.root, "plain.sh")).toString(8), "644");

    await Deno.chmod(join(server.root, "plain.sh"), 0o750);
    const got = await runCommand(server, ["get", "-p", "plain.sh", "back/"]);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(modeOf(join(server.dir, "back", "plain.sh")).toString(8), "750");
  } finally {
    await server.stop();
  }
});

Deno.test("chmod MODE NAME... sets permission bits and refuses anything else", async () => {
  const server = await startServer();
  const readOnly = await startServer(["--read-only"]);
  try {
    for (const name of ["a.sh", "b.sh"]) await Deno.writeTextFile(join(server.root, name), name);
    const run = await runCommand(server, ["chmod", "700", "a.sh", "b.sh"]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(modeOf(join(server.root, "a.sh")).toString(8), "700");
    assert.equal(modeOf(join(server.root, "b.sh")).toString(8), "700");
    for (const mode of ["4755", "u+x", "999"]) {
      const bad = await runCommand(server, ["chmod", mode, "a.sh"]);
      assert.equal(bad.code, 2, mode);
      assert.match(bad.stderr, /octal mode/);
    }
    // Set-user-ID over the wire is refused by the server too, whatever the client.
    const raw = await RawClient.open(server.port);
    try {
      const reply = await raw.request({ op: "chmod", name: "a.sh", mode: 0o4755 });
      assert.equal(reply?.ok, false);
      assert.equal((reply?.error as { code: string }).code, "BAD_REQUEST");
    } finally {
      raw.close();
    }
    assert.equal(modeOf(join(server.root, "a.sh")).toString(8), "700");
    const missing = await runCommand(server, ["chmod", "644", "nothing"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /NOT_FOUND/);

    await Deno.writeTextFile(join(readOnly.root, "c.sh"), "c");
    const refused = await runCommand(readOnly, ["chmod", "777", "c.sh"]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /DENIED/);
  } finally {
    await server.stop();
    await readOnly.stop();
  }
});

Deno.test("df reports free space, the reserve and the quota with what is used", async () => {
  const server = await startServer(["--quota", "10M", "--reserve", "1M"]);
  try {
    await Deno.writeTextFile(join(server.dir, "a.txt"), "a");
    assert.equal((await runCommand(server, ["put", "a.txt"])).code, 0);
    const json = await runCommand(server, ["--json", "df"]);
    assert.equal(json.code, 0, json.stderr);
    const space = JSON.parse(json.stdout);
    assert.equal(space.quotaBytes, 10 * 1024 * 1024);
    assert.equal(space.reserveBytes, 1024 * 1024);
    assert.ok(space.usedBytes >= 4096, `a file counts at least a block: ${space.usedBytes}`);
    assert.ok(space.freeBytes > 0);
    const human = await runCommand(server, ["df", "-h"]);
    assert.match(human.stdout, /^quota: {2}10\.0 MiB, [\d.]+ KiB used, [\d.]+ MiB left$/m);
    assert.match(human.stdout, /^free: .*1\.0 MiB kept free\)$/m);
  } finally {
    await server.stop();
  }
});

Deno.test("df without a quota reports nothing used: the root is not measured then", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.dir, "a.txt"), "a");
    assert.equal((await runCommand(server, ["put", "a.txt"])).code, 0);
    const json = await runCommand(server, ["--json", "df"]);
    const space = JSON.parse(json.stdout);
    assert.equal(space.quotaBytes, null);
    assert.equal(space.usedBytes, 0);
  } finally {
    await server.stop();
  }
});
