/**
 * `partials` and `partials -d`, and the `partials` and `drop-partial`
 * operations under them, against the real server: listing what broken
 * uploads left, dropping it and the quota it frees, names with nothing
 * held, roles and a read-only server, and name files on disk that do not
 * match their partial.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  breakUploadAfter,
  RawClient,
  readWithin,
  runClient,
  runCommand,
  type RunningServer,
  startServer,
} from "./_helpers.ts";

/** Bytes of the broken uploads here: below the size that survives a restart, named at the break. */
const UPLOAD_BYTES = 200_000;

/** Bytes each broken upload sends before it breaks off. */
const SENT_BYTES = 80_000;

const DATA = new Uint8Array(UPLOAD_BYTES).map((_, i) => (i * 31) % 251);

/** `--json df`: what is used against the quota. */
async function usedBytes(server: RunningServer): Promise<number> {
  const run = await runCommand(server, ["--json", "df"]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).usedBytes;
}

/** `--json partials`, each without its times. */
async function listed(
  server: RunningServer,
): Promise<{ name: string; size: number; held: number }[]> {
  const run = await runCommand(server, ["--json", "partials"]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).partials.map((
    { name, size, held }: { name: string; size: number; held: number },
  ) => ({ name, size, held }));
}

Deno.test("partials lists a broken upload's data; partials -d drops it and frees its quota", async () => {
  const server = await startServer(["--quota", "10M"]);
  try {
    await breakUploadAfter(server, "dir/a.bin", DATA, SENT_BYTES);
    const json = await runCommand(server, ["--json", "partials"]);
    assert.equal(json.code, 0, json.stderr);
    const [held] = JSON.parse(json.stdout).partials;
    assert.equal(held.name, "dir/a.bin");
    assert.equal(held.size, UPLOAD_BYTES);
    assert.equal(held.held, SENT_BYTES);
    assert.ok(Number.isInteger(held.ageSeconds) && held.ageSeconds >= 0, json.stdout);
    assert.ok(Math.abs(held.mtime - Date.now()) < 60_000, json.stdout);
    const text = await runCommand(server, ["partials", "-h"]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^\s*held\s+of\s+age\s+name$/m);
    assert.match(text.stdout, /^78\.1 KiB\s+195\.3 KiB\s+\d+[smh]\s+\/dir\/a\.bin$/m);
    assert.equal(await usedBytes(server), SENT_BYTES);

    const dropped = await runCommand(server, ["partials", "-d", "dir/a.bin"]);
    assert.equal(dropped.code, 0, dropped.stderr);
    assert.equal(dropped.stdout.trim(), `dropped ${SENT_BYTES} held for /dir/a.bin`);
    assert.equal(await usedBytes(server), 0);
    assert.deepEqual(await listed(server), []);
    assert.deepEqual([...Deno.readDirSync(join(server.root, ".fts", "partial"))], []);
    assert.deepEqual([...Deno.readDirSync(join(server.root, ".fts", "partial-names"))], []);
    const none = await runCommand(server, ["partials"]);
    assert.equal(none.stdout.trim(), "(no interrupted uploads held)");

    // Dropped, it is gone: a resume has nothing to continue from, and says so.
    await Deno.writeFile(join(server.dir, "a.bin"), DATA);
    const put = await runCommand(server, ["--json", "put", "--resume", "a.bin", "dir/a.bin"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).files[0].resumedFrom, 0);
  } finally {
    await server.stop();
  }
});

Deno.test("partials -d of a name with nothing held is NOT_FOUND; partials takes names only with -d", async () => {
  const server = await startServer();
  try {
    const missing = await runCommand(server, ["partials", "-d", "never.bin"]);
    assert.notEqual(missing.code, 0);
    assert.match(
      missing.stderr,
      /NOT_FOUND: no data of an interrupted upload is held for "never\.bin"/,
    );
    const bad = await runCommand(server, ["partials", "-d", "a\\b.bin"]);
    assert.match(bad.stderr, /BAD_NAME/);
    const noName = await runCommand(server, ["partials", "-d"]);
    assert.equal(noName.code, 2, noName.stderr);
    assert.match(noName.stderr, /partials -d needs the NAME/);
    const stray = await runCommand(server, ["partials", "a.bin"]);
    assert.equal(stray.code, 2, stray.stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("drop-partial with a size drops that size only; without one, every size of the name", async () => {
  const server = await startServer();
  try {
    const longer = new Uint8Array(UPLOAD_BYTES + 1000).fill(7);
    await breakUploadAfter(server, "a.bin", DATA, SENT_BYTES);
    await breakUploadAfter(server, "a.bin", longer, SENT_BYTES + 1);
    await breakUploadAfter(server, "b.bin", DATA, SENT_BYTES + 2);
    assert.deepEqual(await listed(server), [
      { name: "a.bin", size: UPLOAD_BYTES, held: SENT_BYTES },
      { name: "a.bin", size: longer.length, held: SENT_BYTES + 1 },
      { name: "b.bin", size: UPLOAD_BYTES, held: SENT_BYTES + 2 },
    ]);
    const raw = await RawClient.open(server.port);
    try {
      const one = await raw.request({ op: "drop-partial", name: "a.bin", size: longer.length });
      assert.deepEqual(one, { type: "reply", id: 1, ok: true, count: 1, bytes: SENT_BYTES + 1 });
      const again = await raw.request({ op: "drop-partial", name: "a.bin", size: longer.length });
      assert.equal((again?.error as { code: string }).code, "NOT_FOUND");
    } finally {
      raw.close();
    }
    await breakUploadAfter(server, "a.bin", longer, SENT_BYTES + 3);
    const both = await runCommand(server, ["--json", "partials", "-d", "a.bin"]);
    assert.equal(both.code, 0, both.stderr);
    assert.deepEqual(JSON.parse(both.stdout), {
      op: "drop-partial",
      dropped: [{ name: "a.bin", count: 2, bytes: 2 * SENT_BYTES + 3 }],
    });
    assert.deepEqual(await listed(server), [
      { name: "b.bin", size: UPLOAD_BYTES, held: SENT_BYTES + 2 },
    ]);
  } finally {
    await server.stop();
  }
});

Deno.test("partials and drop-partial need the write role; a read-only server refuses drop-partial", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-partials-roles-" });
  const tokens = { reader: "read-token-0123456789abcdef", writer: "write-token-0123456789abcdef" };
  const tokensFile = join(dir, "tokens");
  await Deno.writeTextFile(
    tokensFile,
    `read reader ${tokens.reader}\nwrite writer ${tokens.writer}\n`,
  );
  const server = await startServer(["--tokens", tokensFile], { auth: true });
  const as = (token: string, args: string[]) =>
    runClient([`127.0.0.1:${server.port}`, "--token", token, ...args], { cwd: server.dir });
  try {
    await breakUploadAfter(server, "a.bin", DATA, SENT_BYTES, { token: tokens.writer });
    const list = await as(tokens.reader, ["partials"]);
    assert.notEqual(list.code, 0);
    assert.match(list.stderr, /DENIED: partials needs the write role; this token has read/);
    const drop = await as(tokens.reader, ["partials", "-d", "a.bin"]);
    assert.match(drop.stderr, /DENIED: drop-partial needs the write role; this token has read/);
    const still = await as(tokens.writer, ["--json", "partials"]);
    assert.equal(JSON.parse(still.stdout).partials.length, 1, still.stderr);
    const dropped = await as(tokens.writer, ["partials", "-d", "a.bin"]);
    assert.equal(dropped.code, 0, dropped.stderr);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
  const readOnly = await startServer(["--read-only"]);
  try {
    const refused = await runCommand(readOnly, ["partials", "-d", "a.bin"]);
    assert.match(refused.stderr, /DENIED/);
    assert.equal((await runCommand(readOnly, ["partials"])).code, 0);
  } finally {
    await readOnly.stop();
  }
});

Deno.test("a name file on disk that is not its partial's is not believed: the partial is not listed", async () => {
  const server = await startServer();
  try {
    await breakUploadAfter(server, "a.bin", DATA, SENT_BYTES);
    const namesDir = join(server.root, ".fts", "partial-names");
    const [nameFile] = [...Deno.readDirSync(namesDir)];
    const path = join(namesDir, nameFile!.name);
    const genuine = await Deno.readTextFile(path);
    assert.deepEqual(JSON.parse(genuine), { name: "a.bin", size: UPLOAD_BYTES });
    const forged = [
      JSON.stringify({ name: "../../etc/passwd", size: UPLOAD_BYTES }),
      JSON.stringify({ name: ".fts/lock", size: UPLOAD_BYTES }),
      JSON.stringify({ name: "b.bin", size: UPLOAD_BYTES }), // A valid name, not this key's.
      JSON.stringify({ name: "a.bin", size: UPLOAD_BYTES + 1 }),
      JSON.stringify({ name: "a\u001b[2J.bin", size: UPLOAD_BYTES }),
      genuine.slice(0, 10), // Torn.
      "\xff\xfe",
    ];
    for (const text of forged) {
      await Deno.writeTextFile(path, text);
      assert.deepEqual(await listed(server), [], text);
    }
    // Unlisted, it is still held: it can be dropped by name.
    const dropped = await runCommand(server, ["partials", "-d", "a.bin"]);
    assert.equal(dropped.code, 0, dropped.stderr);
    await breakUploadAfter(server, "a.bin", DATA, SENT_BYTES);
    await Deno.writeTextFile(path, genuine);
    assert.deepEqual(await listed(server), [{
      name: "a.bin",
      size: UPLOAD_BYTES,
      held: SENT_BYTES,
    }]);
    // A raw listing frames them as the protocol says.
    const raw = await RawClient.open(server.port);
    try {
      await raw.send({ type: "request", id: 4, op: "partials" });
      const batch = await readWithin(raw);
      assert.equal(batch?.type, "partials");
      assert.equal((batch?.partials as unknown[]).length, 1);
      assert.deepEqual(await readWithin(raw), { type: "reply", id: 4, ok: true, count: 1 });
    } finally {
      raw.close();
    }
  } finally {
    await server.stop();
  }
});

Deno.test("in a script, partials -d takes a name relative to the remote directory, as put does", async () => {
  const server = await startServer();
  try {
    await breakUploadAfter(server, "dir/a.bin", DATA, SENT_BYTES);
    const run = await runCommand(server, [], {
      stdin: "mkdir dir\ncd dir\npartials\npartials -d a.bin\npartials\n",
    });
    assert.equal(run.code, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    assert.match(lines[2]!, /^\s*80000\s+200000\s+\d+[smh]\s+\/dir\/a\.bin$/, run.stdout);
    assert.equal(lines[3], `dropped ${SENT_BYTES} held for /dir/a.bin`);
    assert.equal(lines[4], "(no interrupted uploads held)");
  } finally {
    await server.stop();
  }
});

Deno.test("a resumed upload, published, takes its partial's name file with it", async () => {
  const server = await startServer();
  try {
    await breakUploadAfter(server, "a.bin", DATA, SENT_BYTES);
    const namesDir = join(server.root, ".fts", "partial-names");
    assert.equal([...Deno.readDirSync(namesDir)].length, 1);
    await Deno.writeFile(join(server.dir, "a.bin"), DATA);
    const put = await runCommand(server, ["--json", "put", "--resume", "a.bin", "a.bin"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).files[0].resumedFrom, SENT_BYTES);
    assert.deepEqual([...Deno.readDirSync(namesDir)], []);
  } finally {
    await server.stop();
  }
});
