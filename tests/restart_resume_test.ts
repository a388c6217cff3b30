/**
 * Resume that survives the server: `kill -9` of the real server process
 * while an upload is in flight, a restart on the same root, and
 * `put --resume` continuing from what the killed server had written; what
 * the restarted server counts for it against the quota; a held prefix torn
 * while the server was down; uploads too small to survive.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { startDelayRelay } from "../scripts/bench_relay.ts";
import {
  FTS_RUN_FLAGS,
  mountTmpfs,
  PROJECT_DIR,
  RawClient,
  readWithin,
  runCommand,
  type RunningServer,
  serverTmpDir,
  sha256File,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";

/** Large enough to survive a restart (RECOVERABLE_UPLOAD_MIN_BYTES) and to be in flight a while. */
const BIG_BYTES = 24 << 20;

/** The slow link the upload goes through: BIG_BYTES take about 6 s, so the kill lands mid-data. */
const LINK_BYTES_PER_SECOND = 4 << 20;

/** Bytes the server must have written before the kill: proof the upload is well under way. */
const WRITTEN_BEFORE_KILL = 2 << 20;

/** Bytes of the largest file in the server's temporary directory. */
async function largestTemporary(server: RunningServer): Promise<number> {
  const tmpDir = await serverTmpDir(server);
  let largest = 0;
  for await (const entry of Deno.readDir(tmpDir)) {
    largest = Math.max(largest, (await Deno.stat(join(tmpDir, entry.name))).size);
  }
  return largest;
}

/** SIGKILL to the server process, and its end: nothing of it runs on. */
async function killServer(server: RunningServer): Promise<void> {
  server.process.kill("SIGKILL");
  await server.exited;
}

/** `--json partials` against `server`: the held partials it lists. */
async function listedPartials(
  server: RunningServer,
): Promise<{ name: string; size: number; held: number }[]> {
  const run = await runCommand(server, ["--json", "partials"]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).partials;
}

/** `--json df` against `server`: what is used against the quota. */
async function usedBytes(server: RunningServer): Promise<number> {
  const run = await runCommand(server, ["--json", "df"]);
  assert.equal(run.code, 0, run.stderr);
  return JSON.parse(run.stdout).usedBytes;
}

Deno.test("put --resume after kill -9 of the server mid-upload and a restart continues from more than 0", async () => {
  const args = ["--quota", "1G"];
  const first = await startServer(args);
  let second: RunningServer | null = null;
  const relay = await startDelayRelay(first.port, 0);
  try {
    const local = join(first.dir, "big.bin");
    const sum = await writeRandomFile(local, BIG_BYTES);
    relay.limitRate(LINK_BYTES_PER_SECOND);
    const client = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "connect",
        `127.0.0.1:${relay.port}`,
        "put",
        "big.bin",
        "big5.bin",
      ],
      cwd: first.dir,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = client.output();
    const underWay = await waitFor(
      async () => await largestTemporary(first) >= WRITTEN_BEFORE_KILL,
      30_000,
    );
    assert.ok(underWay, "the upload never got under way");
    await killServer(first);
    const { code, stderr } = await output;
    const said = new TextDecoder().decode(stderr);
    assert.notEqual(code, 0, "the upload finished before the server was killed");
    assert.match(said, /to continue where it stopped: put --resume big\.bin big5\.bin/);

    second = await startServer(args, { dir: first.dir });
    const [held, ...others] = await listedPartials(second);
    assert.deepEqual(others, []);
    assert.equal(held?.name, "big5.bin");
    assert.equal(held?.size, BIG_BYTES);
    assert.ok(held!.held >= WRITTEN_BEFORE_KILL && held!.held < BIG_BYTES, JSON.stringify(held));
    // Measured at start: the recovered partial is all the root uses.
    assert.equal(await usedBytes(second), held!.held);

    const resumed = await runCommand(second, ["--json", "put", "--resume", "big.bin", "big5.bin"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const [file] = JSON.parse(resumed.stdout).files;
    assert.equal(file.resumedFrom, held!.held);
    assert.equal(await sha256File(join(second.root, "big5.bin")), sum);
    assert.deepEqual(await listedPartials(second), []);
    assert.equal(await usedBytes(second), BIG_BYTES);
  } finally {
    await relay.close();
    await second?.stop();
    await first.stop();
  }
});

Deno.test("a held prefix torn while the server was down fails the check, is discarded, and the next put --resume starts from 0 and says so", async () => {
  const first = await startServer();
  let second: RunningServer | null = null;
  const size = 6 << 20;
  const sent = 3 << 20;
  const small = 1 << 20;
  const raws: RawClient[] = [];
  try {
    const local = join(first.dir, "big.bin");
    const sum = await writeRandomFile(local, size);
    const data = await Deno.readFile(local);
    // Two uploads in flight, over raw sessions that stay open: one large enough to survive the
    // kill, one below RECOVERABLE_UPLOAD_MIN_BYTES, which does not.
    for (const [name, bytes, upTo] of [["big.bin", size, sent], ["small.bin", small, 1 << 19]]) {
      const raw = await RawClient.open(first.port);
      raws.push(raw);
      await raw.send({ type: "request", id: 1, op: "upload", name, size: bytes, resumable: true });
      assert.equal((await readWithin(raw))?.type, "continue");
      await raw.sendBytes(data.subarray(0, upTo as number));
    }
    const written = await waitFor(async () => await largestTemporary(first) === sent);
    assert.ok(written, "the server did not write what was sent");
    await killServer(first);
    for (const raw of raws) raw.close();

    second = await startServer([], { dir: first.dir });
    const listed = await listedPartials(second);
    assert.deepEqual(listed.map(({ name, held }) => ({ name, held })), [
      { name: "big.bin", held: sent },
    ]);
    // The killed server's directory was taken over; the new one's holds nothing.
    assert.equal([...Deno.readDirSync(join(second.root, ".fts", "tmp"))].length, 1);
    assert.deepEqual([...Deno.readDirSync(await serverTmpDir(second))], []);
    // What a power loss may leave of bytes never fsynced: the held prefix is not the file's.
    const partialDir = join(second.root, ".fts", "partial");
    const [partial] = [...Deno.readDirSync(partialDir)];
    {
      using torn = await Deno.open(join(partialDir, partial!.name), { write: true });
      await torn.write(new Uint8Array(4096).fill(0xee));
    }

    const refused = await runCommand(second, ["put", "--resume", "big.bin", "big.bin"]);
    assert.equal(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /INTEGRITY/);
    assert.match(refused.stderr, /held from an interrupted upload.*discarded/);
    assert.deepEqual(await listedPartials(second), []);

    // No loop: the next resume finds nothing held, says so, and sends the whole file.
    const again = await runCommand(second, ["put", "--resume", "big.bin", "big.bin"]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /^the server held nothing of an interrupted upload of big\.bin/m);
    assert.equal(await sha256File(join(second.root, "big.bin")), sum);
  } finally {
    for (const raw of raws) raw.close();
    await second?.stop();
    await first.stop();
  }
});

Deno.test("after a restart, a resume needs free space for the bytes still to come only, a fresh upload for all", async () => {
  // A real file system that fills: 16 MiB, of which the recovered partial takes 8.
  await using tmpfs = await mountTmpfs("16m");
  if (tmpfs === null) return;
  const args = ["--root", join(tmpfs.path, "root"), "--reserve", "4M"];
  const size = 10 << 20;
  const sent = 8 << 20;
  const first = await startServer(args);
  let second: RunningServer | null = null;
  try {
    const local = join(first.dir, "big.bin");
    const sum = await writeRandomFile(local, size);
    const raw = await RawClient.open(first.port);
    try {
      await raw.send({
        type: "request",
        id: 1,
        op: "upload",
        name: "big.bin",
        size,
        resumable: true,
      });
      assert.equal((await readWithin(raw))?.type, "continue");
      await raw.sendBytes((await Deno.readFile(local)).subarray(0, sent));
      const root = join(tmpfs.path, "root");
      const tmpDir = await serverTmpDir({ root, process: first.process });
      const written = await waitFor(async () => {
        for await (const entry of Deno.readDir(tmpDir)) {
          if ((await Deno.stat(join(tmpDir, entry.name))).size === sent) return true;
        }
        return false;
      });
      assert.ok(written, "the server did not write what was sent");
      await killServer(first);
    } finally {
      raw.close();
    }

    second = await startServer(args);
    const fresh = await RawClient.open(second.port);
    try {
      // 10 MiB to write and 4 MiB to leave free: more than the 8 MiB the disk has left.
      const refused = await fresh.request({ op: "upload", name: "big.bin", size, resumable: true });
      assert.equal((refused?.error as { code: string })?.code, "NO_SPACE", JSON.stringify(refused));
    } finally {
      fresh.close();
    }
    // 2 MiB still to come and 4 MiB to leave free: that fits.
    const resumed = await runCommand(second, ["--json", "put", "--resume", local, "big.bin"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.equal(JSON.parse(resumed.stdout).files[0].resumedFrom, sent);
    assert.equal(await sha256File(join(tmpfs.path, "root", "big.bin")), sum);
  } finally {
    await second?.stop();
    await first.stop();
  }
});
