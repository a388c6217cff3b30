/**
 * An upload's `ifUnchanged` against the real server: the file is replaced
 * only if, as the upload is published, it is still the version the request
 * names; otherwise `CHANGED`, and the other writer's file is left intact.
 * Then `put --if-unchanged` in a real terminal, the target rewritten while
 * the upload is on its way.
 */

import assert from "node:assert/strict";
import { REPLACE_LOCK_FILE } from "../server/storage.ts";
import { join } from "node:path";
import { startDelayRelay } from "../scripts/bench_relay.ts";
import { FtsConnection } from "../client/connection.ts";
import { FtsError } from "../protocol/errors.ts";
import { IF_UNCHANGED_FEATURE } from "../protocol/limits.ts";
import { encodeFrame } from "../protocol/frames.ts";
import {
  FTS_RUN_FLAGS,
  PROJECT_DIR,
  RawClient,
  readWithin,
  sha256File,
  sha256Hex,
  startServer,
  writeRandomFile,
} from "./_helpers.ts";
import { HAS_TMUX, openShell } from "./_tmux.ts";

// CI installs tmux (.ci/run); elsewhere the terminal test says plainly that it did not run.
const ignore = !HAS_TMUX && Deno.env.get("CI") !== "true";

/** The version of the server's file `name` as the server lists it. */
async function versionOf(connection: FtsConnection, name: string) {
  const [entry] = await connection.list(name);
  assert.ok(entry !== undefined && entry.type === "file", `${name} is a file`);
  return { size: entry.size, mtime: entry.mtime };
}

Deno.test("upload with ifUnchanged replaces only the version it names, CHANGED otherwise", async () => {
  const server = await startServer();
  const connection = await FtsConnection.open("127.0.0.1", server.port);
  try {
    const target = join(server.root, "notes.txt");
    await Deno.writeTextFile(target, "version one");
    const mine = join(server.dir, "mine.txt");
    await Deno.writeTextFile(mine, "my edit");
    const seen = await versionOf(connection, "notes.txt");

    // Someone else writes the file after it was looked at.
    await Deno.writeTextFile(target, "their edit, longer");
    await assert.rejects(
      connection.upload(mine, "notes.txt", { ifUnchanged: seen }),
      (err) => err instanceof FtsError && err.code === "CHANGED" && /notes\.txt/.test(err.message),
    );
    assert.equal(await Deno.readTextFile(target), "their edit, longer");

    // Same size, another mtime: changed too.
    await Deno.writeTextFile(target, "version one");
    const other = new Date(seen.mtime + 5_000);
    await Deno.utime(target, other, other);
    await assert.rejects(
      connection.upload(mine, "notes.txt", { ifUnchanged: seen }),
      (err) => err instanceof FtsError && err.code === "CHANGED",
    );
    assert.equal(await Deno.readTextFile(target), "version one");

    // Still the version named: replaced.
    const now = await versionOf(connection, "notes.txt");
    await connection.upload(mine, "notes.txt", { ifUnchanged: now });
    assert.equal(await Deno.readTextFile(target), "my edit");

    // Removed since: nothing is made in its place.
    const last = await versionOf(connection, "notes.txt");
    await Deno.remove(target);
    await assert.rejects(
      connection.upload(mine, "notes.txt", { ifUnchanged: last }),
      (err) => err instanceof FtsError && err.code === "CHANGED" && /removed/.test(err.message),
    );
    await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
    // The session goes on.
    assert.deepEqual(await connection.list(""), []);
  } finally {
    connection.close();
    await server.stop();
  }
});

Deno.test("upload's ifUnchanged is checked as the file is published, after its data arrived", async () => {
  const server = await startServer();
  const raw = await RawClient.open(server.port);
  try {
    assert.ok((raw.hello.features as string[]).includes(IF_UNCHANGED_FEATURE));
    const target = join(server.root, "shared.bin");
    await Deno.writeTextFile(target, "before");
    const info = await Deno.stat(target);
    const data = new TextEncoder().encode("uploaded over it");
    const continued = await raw.request({
      op: "upload",
      name: "shared.bin",
      size: data.length,
      overwrite: true,
      ifUnchanged: { size: info.size, mtime: info.mtime!.getTime() },
    });
    assert.equal(continued?.type, "continue", JSON.stringify(continued));
    // The other writer, between the go-ahead and the publish.
    await Deno.writeTextFile(target, "the other writer's");
    await raw.sendBytes(data);
    await raw.sendBytes(
      encodeFrame({ type: "trailer", id: continued!.id as number, sha256: sha256Hex(data) }),
    );
    const reply = await readWithin(raw);
    assert.equal(reply?.ok, false, JSON.stringify(reply));
    assert.equal((reply?.error as { code: string }).code, "CHANGED");
    assert.equal(await Deno.readTextFile(target), "the other writer's");

    // An expectation without overwrite is impossible: an error reply, and the session goes on.
    const refused = await raw.request({
      op: "upload",
      name: "shared.bin",
      size: 1,
      overwrite: false,
      ifUnchanged: { size: 1, mtime: 0 },
    });
    assert.equal((refused?.error as { code: string }).code, "BAD_REQUEST", JSON.stringify(refused));
    const listed = await raw.request({ op: "list", name: "" });
    assert.equal(listed?.type, "entries", JSON.stringify(listed));
  } finally {
    raw.close();
    await server.stop();
  }
});

/** Slow enough that the upload is still on its way when the test rewrites the target. */
const SLOW_BYTES_PER_SECOND = 1 << 20;

Deno.test({
  name: "put --if-unchanged refuses to replace a target rewritten while it was sent",
  ignore,
  async fn() {
    const server = await startServer();
    const relay = await startDelayRelay(server.port, 0);
    const home = await Deno.makeTempDir();
    const term = await openShell(server.dir, relay.port, home);
    try {
      await writeRandomFile(join(server.dir, "big.bin"), 16 << 20);
      const target = join(server.root, "big.bin");
      await Deno.writeTextFile(target, "the version put saw");
      relay.limitRate(SLOW_BYTES_PER_SECOND);
      await term.line("put --if-unchanged big.bin");
      assert.ok(await term.waitFor(/big\.bin {2}[\d.]+ MiB \/ 16\.0 MiB/), await term.screen());
      await Deno.writeTextFile(target, "the other writer's, meanwhile");
      relay.limitRate(null);
      assert.ok(await term.waitFor(/CHANGED: .*big\.bin.* changed since/), await term.screen());
      assert.equal(await Deno.readTextFile(target), "the other writer's, meanwhile");

      // Unchanged meanwhile: replaced; and a target not there is made.
      await term.line("put --if-unchanged big.bin");
      assert.ok(await term.waitFor(/uploaded big\.bin -> big\.bin/), await term.screen());
      assert.equal(await sha256File(target), await sha256File(join(server.dir, "big.bin")));
      await term.line("put --if-unchanged big.bin fresh.bin");
      assert.ok(await term.waitFor(/uploaded big\.bin -> fresh\.bin/), await term.screen());
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

/** How long the test holds the replace lock: far longer than a small upload takes to reach its publish. */
const LOCK_HELD_MS = 1500;

Deno.test("a replacing publish waits for the root's replace lock, which every server takes, and checks the version under it", async () => {
  const server = await startServer();
  try {
    const target = join(server.root, "shared.txt");
    await Deno.writeTextFile(target, "version one");
    await Deno.writeTextFile(join(server.dir, "shared.txt"), "mine, to replace version one");
    // Another server (here: the test) holds the lock while it replaces the file itself.
    using lock = await Deno.open(join(server.root, REPLACE_LOCK_FILE), {
      write: true,
      create: true,
    });
    await lock.lock(true);
    const client = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "connect",
        `127.0.0.1:${server.port}`,
        "put",
        "--if-unchanged",
        "shared.txt",
      ],
      cwd: server.dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let exited = false;
    const output = client.output().finally(() => exited = true);
    // Long enough for the whole upload to arrive and reach its publish, which must wait.
    await new Promise((resolve) => setTimeout(resolve, LOCK_HELD_MS));
    assert.equal(exited, false, "the publish went ahead without the replace lock");
    await Deno.writeTextFile(target, "version two, by the other server");
    await lock.unlock();
    const done = await output;
    const stderr = new TextDecoder().decode(done.stderr);
    assert.equal(done.code, 1, stderr);
    assert.match(stderr, /CHANGED/);
    assert.equal(await Deno.readTextFile(target), "version two, by the other server");
  } finally {
    await server.stop();
  }
});
