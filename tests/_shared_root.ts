/**
 * What several fts servers on one root must keep, as scenarios over two
 * real server processes: tests/shared_root_test.ts runs them on one local
 * directory, tests/glusterfs_test.ts on two mounts of one GlusterFS volume.
 * Each scenario is given the root as each server sees it (the same path, or
 * two mounts) and starts and stops its own servers.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeFrame, type Message } from "../protocol/frames.ts";
import {
  breakUploadAfter,
  eagerUpload,
  RawClient,
  readWithin,
  runCommand,
  type RunningServer,
  serverTmpDir,
  sha256File,
  sha256Hex,
  startServer,
  waitFor,
  writeRandomFile,
} from "./_helpers.ts";

/** The root as each of two servers serves it. */
export interface SharedRoot {
  /** Server A's path to the root. */
  a: string;
  /** Server B's path to the same root (the same path locally, another mount on GlusterFS). */
  b: string;
}

/** Large enough to survive a kill -9 of its server (partials.ts's RECOVERABLE_UPLOAD_MIN_BYTES). */
export const RECOVERABLE_BYTES = 6 << 20;

/** Runs `body` on a fresh local root (a directory in a new temporary one); removes it all after. */
export async function inFreshRoot(body: (root: string) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "fts-shared-" }));
  try {
    const root = join(dir, "root");
    await Deno.mkdir(root);
    await body(root);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Runs `body` with a server on each view of `root`, both started with
 * `args`; both are stopped after, whatever happens.
 */
export async function withTwoServers(
  root: SharedRoot,
  body: (a: RunningServer, b: RunningServer) => Promise<void>,
  args: string[] = [],
): Promise<void> {
  const a = await startServer(args, { root: root.a });
  try {
    const b = await startServer(args, { root: root.b });
    try {
      await body(a, b);
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
  }
}

/** An upload over a raw session, begun: the server has said `continue`. */
export async function beginUpload(
  server: RunningServer,
  name: string,
  size: number,
  fields: Message = {},
): Promise<RawClient> {
  const raw = await RawClient.open(server.port);
  await raw.send({ type: "request", id: 1, op: "upload", name, size, ...fields });
  const go = await readWithin(raw);
  assert.equal(go?.type, "continue", JSON.stringify(go));
  return raw;
}

/** Sends `data`'s bytes from `from` on and the trailer of all of `data`; returns the final reply. */
export async function finishUpload(
  raw: RawClient,
  data: Uint8Array,
  from = 0,
): Promise<Message | null> {
  await raw.sendBytes(data.subarray(from));
  await raw.send({ type: "trailer", id: 1, sha256: sha256Hex(data) });
  return await readWithin(raw);
}

/** Random bytes, `size` of them. */
export function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

/** The bytes of the file under `name` in `root`, or null when there is none. */
async function readOrNull(root: string, name: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(join(root, name));
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return null;
    throw err;
  }
}

/** A file put through A is there through B, whole: downloaded through B, it is byte-identical. */
export async function downloadThroughOther(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const local = join(a.dir, "report.bin");
    const sum = await writeRandomFile(local, 3 << 20);
    const put = await runCommand(a, ["put", "report.bin"]);
    assert.equal(put.code, 0, put.stderr);
    const get = await runCommand(b, ["get", "report.bin", "copy.bin"]);
    assert.equal(get.code, 0, get.stderr);
    assert.equal(await sha256File(join(b.dir, "copy.bin")), sum);
  });
}

/** Many files through both servers at once, each to names of its own: every one lands whole. */
export async function uploadsToDifferentNames(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const sums = new Map<string, string>();
    for (const [server, side] of [[a, "a"], [b, "b"]] as const) {
      await Deno.mkdir(join(server.dir, side));
      for (let i = 0; i < 20; i++) {
        sums.set(`${side}/f${i}`, await writeRandomFile(join(server.dir, side, `f${i}`), 50_000));
      }
    }
    const [putA, putB] = await Promise.all([
      runCommand(a, ["put", "-r", "a"]),
      runCommand(b, ["put", "-r", "b"]),
    ]);
    assert.equal(putA.code, 0, putA.stderr);
    assert.equal(putB.code, 0, putB.stderr);
    for (const [name, sum] of sums) assert.equal(await sha256File(join(root.a, name)), sum, name);
  });
}

/**
 * Two uploads of one name without overwrite, one through each server, both
 * under way before either ends: one is published, the other is refused with
 * EXISTS, and the name holds the published one's bytes.
 */
export async function sameNameWithoutOverwrite(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const first = randomBytes(1 << 20);
    const second = randomBytes(1 << 20);
    const viaA = await beginUpload(a, "same.bin", first.length, { overwrite: false });
    const viaB = await beginUpload(b, "same.bin", second.length, { overwrite: false });
    try {
      // Both are past the check at the start: only the publish can tell them apart.
      await viaA.sendBytes(first.subarray(0, 1000));
      await viaB.sendBytes(second.subarray(0, 1000));
      const [replyA, replyB] = await Promise.all([
        finishUpload(viaA, first, 1000),
        finishUpload(viaB, second, 1000),
      ]);
      const won = [replyA, replyB].filter((reply) => reply?.ok === true);
      const refused = [replyA, replyB].filter((reply) =>
        (reply?.error as Message | undefined)?.code === "EXISTS"
      );
      assert.equal(won.length, 1, JSON.stringify([replyA, replyB]));
      assert.equal(refused.length, 1, JSON.stringify([replyA, replyB]));
      const stored = await readOrNull(root.a, "same.bin");
      assert.deepEqual(stored, replyA?.ok === true ? first : second);
    } finally {
      viaA.close();
      viaB.close();
    }
  });
}

/**
 * Two uploads of one name with overwrite, through the two servers, their
 * bytes sent in turns: the name ends holding one of them whole, never a mixture.
 */
export async function sameNameInterleaved(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const size = 2 << 20;
    const first = randomBytes(size);
    const second = randomBytes(size);
    const viaA = await beginUpload(a, "both.bin", size, { overwrite: true });
    const viaB = await beginUpload(b, "both.bin", size, { overwrite: true });
    try {
      const step = size / 8;
      for (let offset = 0; offset < size - step; offset += step) {
        await viaA.sendBytes(first.subarray(offset, offset + step));
        await viaB.sendBytes(second.subarray(offset, offset + step));
      }
      const [replyA, replyB] = await Promise.all([
        finishUpload(viaA, first, size - step),
        finishUpload(viaB, second, size - step),
      ]);
      assert.equal(replyA?.ok, true, JSON.stringify(replyA));
      assert.equal(replyB?.ok, true, JSON.stringify(replyB));
      // Read through A: on GlusterFS a reader through B was seen, now and then, to find the name
      // listed but not to open it (ENOENT) just after the two renames (README, Several servers).
      const stored = await readOrNull(root.a, "both.bin");
      assert.ok(stored !== null);
      const digest = sha256Hex(stored);
      assert.ok(digest === sha256Hex(first) || digest === sha256Hex(second), "a mixture");
    } finally {
      viaA.close();
      viaB.close();
    }
  });
}

/**
 * `kill -9` of A with an upload in flight while B has one in flight too: B's
 * completes; a server started again on A's view of the root sees A is gone
 * and takes over its temporaries (the recorded upload becomes a partial,
 * which B lists), leaves B's alone, and nothing partial is under a real name.
 */
export async function killOneMidUpload(root: SharedRoot): Promise<void> {
  const a = await startServer([], { root: root.a });
  let again: RunningServer | null = null;
  try {
    const b = await startServer([], { root: root.b });
    try {
      const dataA = randomBytes(RECOVERABLE_BYTES);
      const dataB = randomBytes(RECOVERABLE_BYTES);
      const viaA = await beginUpload(a, "from-a.bin", dataA.length, { resumable: true });
      const viaB = await beginUpload(b, "from-b.bin", dataB.length, { resumable: true });
      try {
        const sentA = 2 << 20;
        await viaA.sendBytes(dataA.subarray(0, sentA));
        await viaB.sendBytes(dataB.subarray(0, 1 << 20));
        const tmpA = await serverTmpDir(a);
        const tmpB = await serverTmpDir(b);
        const written = async (dir: string, bytes: number) => {
          for await (const entry of Deno.readDir(dir)) {
            if ((await Deno.stat(join(dir, entry.name))).size === bytes) return true;
          }
          return false;
        };
        assert.ok(await waitFor(() => written(tmpA, sentA)), "A did not write what it was sent");
        assert.ok(await waitFor(() => written(tmpB, 1 << 20)), "B did not write what it was sent");
        a.process.kill("SIGKILL");
        await a.exited;
        // A's lease and temporaries outlive it, until a server starts and sees it is gone.
        assert.ok(await written(tmpA, sentA));
        again = await startServer([], { root: root.a });
        await assert.rejects(Deno.stat(tmpA), Deno.errors.NotFound);
        assert.ok(await written(tmpB, 1 << 20), "B's upload in flight was touched");
        const reply = await finishUpload(viaB, dataB, 1 << 20);
        assert.equal(reply?.ok, true, JSON.stringify(reply));
        assert.deepEqual(await readOrNull(root.a, "from-b.bin"), dataB);
        assert.equal(await readOrNull(root.b, "from-a.bin"), null);
        const partials = await runCommand(b, ["--json", "partials"]);
        assert.equal(partials.code, 0, partials.stderr);
        assert.deepEqual(
          JSON.parse(partials.stdout).partials.map((p: Message) => [p.name, p.held]),
          [["from-a.bin", sentA]],
        );
      } finally {
        viaA.close();
        viaB.close();
      }
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
    await again?.stop();
  }
}

/**
 * `terminate` through A stops A only: B goes on serving, and an upload B had
 * in flight when A stopped completes whole.
 */
export async function terminateStopsOne(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const data = randomBytes(1 << 20);
    const viaB = await beginUpload(b, "in-flight.bin", data.length);
    try {
      await viaB.sendBytes(data.subarray(0, 1000));
      const run = await runCommand(a, ["terminate"]);
      assert.equal(run.code, 0, run.stderr);
      assert.equal(await a.exited, 0);
      const reply = await finishUpload(viaB, data, 1000);
      assert.equal(reply?.ok, true, JSON.stringify(reply));
      assert.deepEqual(await readOrNull(root.a, "in-flight.bin"), data);
    } finally {
      viaB.close();
    }
    const ls = await runCommand(b, ["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    await Deno.writeTextFile(join(b.dir, "after.txt"), "still serving");
    const put = await runCommand(b, ["put", "after.txt"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(await Deno.readTextFile(join(root.a, "after.txt")), "still serving");
  });
}

/**
 * An upload broken off on A is resumed through B: the partial is on the
 * shared root, and B takes it (a rename into its own directory, so that no
 * two sessions resume it at once) and sends for the rest only.
 */
export async function resumeThroughOther(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const data = randomBytes(RECOVERABLE_BYTES);
    const held = 1 << 20;
    await breakUploadAfter(a, "resumed.bin", data, held);
    await Deno.writeFile(join(b.dir, "resumed.bin"), data);
    const put = await runCommand(b, ["--json", "put", "--resume", "resumed.bin"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).files[0].resumedFrom, held);
    assert.deepEqual(await readOrNull(root.a, "resumed.bin"), data);
  });
}

/**
 * Two sessions resume one partial at the same moment, one through A and one
 * through B: the claim is a rename, so one of them continues from what was
 * held and the other, finding nothing to take, sends from the start. With
 * `overwrite` both are published, one after the other; without it one is
 * and the other is refused with EXISTS (then which of them took the partial
 * cannot be seen from the client: the first to publish wins). Either way the
 * file is whole and no partial is left over.
 */
export async function twoResumersOfOnePartial(
  root: SharedRoot,
  { overwrite }: { overwrite: boolean },
): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const data = randomBytes(RECOVERABLE_BYTES);
    const held = 1 << 20;
    await breakUploadAfter(a, "raced.bin", data, held);
    await Deno.writeFile(join(a.dir, "raced.bin"), data);
    await Deno.writeFile(join(b.dir, "raced.bin"), data);
    const args = ["--json", "put", "--resume", ...(overwrite ? ["-f"] : []), "raced.bin"];
    const records = (await Promise.all([a, b].map((server) => runCommand(server, args))))
      .map((put) => JSON.parse(put.stdout));
    const published = records.filter((record) => record.files);
    const refused = records.filter((record) => record.error).map((record) => record.error.code);
    const resumedFrom = published.map((record) => record.files[0].resumedFrom ?? 0).toSorted();
    if (overwrite) {
      assert.deepEqual(resumedFrom, [0, held], JSON.stringify(records));
    } else {
      assert.equal(published.length, 1, JSON.stringify(records));
      assert.deepEqual(refused, ["EXISTS"], JSON.stringify(records));
    }
    assert.deepEqual(await readOrNull(root.b, "raced.bin"), data);
    for (const server of [a, b]) {
      const partials = await runCommand(server, ["--json", "partials"]);
      assert.equal(partials.code, 0, partials.stderr);
      assert.deepEqual(JSON.parse(partials.stdout).partials, []);
    }
  });
}

/** The quota the quota scenarios give both servers: room for three uploads of {@link QUOTA_UPLOAD_BYTES}, not four. */
export const QUOTA_BYTES = 10 << 20;

/** The flags of a server under {@link QUOTA_BYTES}, with no free-space reserve to get in the way. */
export const QUOTA_FLAGS = ["--quota", String(QUOTA_BYTES), "--reserve", "0"];

/** An upload in the quota scenarios. */
const QUOTA_UPLOAD_BYTES = 3 << 20;

/** An upload over a raw session, asked for: its session and the server's first answer. */
export async function askUpload(
  server: RunningServer,
  name: string,
  size: number,
  fields: Message = {},
): Promise<{ raw: RawClient; reply: Message | null }> {
  const raw = await RawClient.open(server.port);
  await raw.send({ type: "request", id: 1, op: "upload", name, size, ...fields });
  return { raw, reply: await readWithin(raw) };
}

/** Fails unless `reply` refuses an upload for the quota. */
export function assertOverQuota(reply: Message | null): void {
  const error = reply?.error as { code: string; message: string } | undefined;
  assert.equal(error?.code, "NO_SPACE", JSON.stringify(reply));
  assert.match(error!.message, /quota/);
}

/**
 * Fails unless `server` has room for exactly `bytes` under the quota: one
 * byte more is refused, and an upload of `bytes` to `name` is let through and
 * published.
 */
export async function assertRoomFor(
  server: RunningServer,
  name: string,
  bytes: number,
): Promise<void> {
  const over = await askUpload(server, name, bytes + 1);
  over.raw.close();
  assertOverQuota(over.reply);
  const fits = await askUpload(server, name, bytes);
  try {
    assert.equal(fits.reply?.type, "continue", JSON.stringify(fits.reply));
    const reply = await finishUpload(fits.raw, randomBytes(bytes));
    assert.equal(reply?.ok, true, JSON.stringify(reply));
  } finally {
    fits.raw.close();
  }
}

/** What `df` through `server` says is used of the quota. */
export async function usedOf(server: RunningServer): Promise<number> {
  const df = await runCommand(server, ["--json", "df"]);
  assert.equal(df.code, 0, df.stderr);
  return JSON.parse(df.stdout).usedBytes;
}

/**
 * The quota holds for the root, not per server: eight uploads, four through
 * each server, all claiming room before any ends, under a quota with room
 * for three: three are let through, whichever server they came to, and the
 * other five are refused (per server, six would be); both servers' `df`
 * count the three; a file deleted through B makes room through A.
 */
export async function quotaAcrossServers(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const asked: { raw: RawClient; reply: Message | null }[] = [];
    try {
      for (let i = 0; i < 8; i++) {
        asked.push(await askUpload(i % 2 === 0 ? a : b, `q${i}.bin`, QUOTA_UPLOAD_BYTES));
      }
      const admitted = asked.filter(({ reply }) => reply?.type === "continue");
      assert.deepEqual(admitted.map((upload) => asked.indexOf(upload)), [0, 1, 2]);
      for (const { reply } of asked.slice(3)) assertOverQuota(reply);
      for (const { raw } of admitted) {
        const reply = await finishUpload(raw, randomBytes(QUOTA_UPLOAD_BYTES));
        assert.equal(reply?.ok, true, JSON.stringify(reply));
      }
    } finally {
      for (const { raw } of asked) raw.close();
    }
    assert.equal(await usedOf(a), 3 * QUOTA_UPLOAD_BYTES);
    assert.equal(await usedOf(b), 3 * QUOTA_UPLOAD_BYTES);
    const rm = await runCommand(b, ["rm", "q1.bin"]);
    assert.equal(rm.code, 0, rm.stderr);
    assert.equal(await usedOf(a), 2 * QUOTA_UPLOAD_BYTES);
    const again = await askUpload(a, "q8.bin", QUOTA_UPLOAD_BYTES);
    const over = await askUpload(b, "q9.bin", QUOTA_UPLOAD_BYTES);
    try {
      assert.equal(again.reply?.type, "continue", JSON.stringify(again.reply));
      assertOverQuota(over.reply);
      assert.equal((await finishUpload(again.raw, randomBytes(QUOTA_UPLOAD_BYTES)))?.ok, true);
    } finally {
      again.raw.close();
      over.raw.close();
    }
  }, QUOTA_FLAGS);
}

/**
 * `kill -9` of A with an upload in flight that will be kept as a partial:
 * until a server takes over what A left, A's claim of the whole upload still
 * holds room (B refuses what would fit without it); once A is started
 * again, only the bytes kept for a resume count, and B lets through what
 * fits beside them, and not a byte more.
 */
export async function quotaAfterKill(root: SharedRoot): Promise<void> {
  const a = await startServer(QUOTA_FLAGS, { root: root.a });
  let again: RunningServer | null = null;
  try {
    const b = await startServer(QUOTA_FLAGS, { root: root.b });
    try {
      const data = randomBytes(RECOVERABLE_BYTES);
      const sent = 2 << 20;
      const viaA = await beginUpload(a, "big.bin", data.length, { resumable: true });
      try {
        await viaA.sendBytes(data.subarray(0, sent));
        const tmpA = await serverTmpDir(a);
        const written = async () => {
          for await (const entry of Deno.readDir(tmpA)) {
            if ((await Deno.stat(join(tmpA, entry.name))).size === sent) return true;
          }
          return false;
        };
        assert.ok(await waitFor(written), "A did not write what it was sent");
        a.process.kill("SIGKILL");
        await a.exited;
      } finally {
        viaA.close();
      }
      const fitsBesideHeld = QUOTA_BYTES - sent;
      const whileClaimed = await askUpload(b, "b.bin", fitsBesideHeld);
      whileClaimed.raw.close();
      assertOverQuota(whileClaimed.reply);
      again = await startServer(QUOTA_FLAGS, { root: root.a });
      assert.equal(await usedOf(b), sent);
      await assertRoomFor(b, "b.bin", fitsBesideHeld);
      assert.equal(await usedOf(again), QUOTA_BYTES);
    } finally {
      await b.stop();
    }
  } finally {
    await a.stop();
    await again?.stop();
  }
}

/** Rounds of {@link moveRacesUpload}: each a move and an upload of one name through the two servers. */
const MOVE_RACE_ROUNDS = 60;

/** The most a round of {@link moveRacesUpload} holds its move back, ms. */
const MOVE_RACE_SPREAD_MS = 1;

/**
 * `mv` without `-f` of a file or a directory through A onto a name that an
 * upload without `-f` through B takes at the same moment, round after round
 * (each round's two requests sent at once): in every round exactly one of the two wins and
 * the other is refused with EXISTS (or WRONG_TYPE, an upload finding the
 * moved directory); the name holds the winner's bytes, and
 * the moved file is still under its old name when the move lost. (A check
 * followed by a rename would let both win, the upload lost under the move,
 * when the upload lands between the two: a window of microseconds that
 * these rounds hit only by chance.)
 */
export async function moveRacesUpload(root: SharedRoot): Promise<void> {
  await withTwoServers(root, async (a, b) => {
    const rounds = [...Array(MOVE_RACE_ROUNDS).keys()];
    const moved = (i: number) => new TextEncoder().encode(`moved ${i}\n`);
    const uploaded = (i: number) => new TextEncoder().encode(`uploaded ${i}\n`);
    // Odd rounds move a directory (holding one file), even rounds a file.
    const inside = (i: number) => i % 2 === 1 ? "inner" : "";
    for (const i of rounds) {
      if (inside(i)) await Deno.mkdir(join(root.a, `src${i}`));
      await Deno.writeFile(join(root.a, `src${i}`, inside(i)), moved(i));
    }
    const mover = await RawClient.open(a.port);
    const uploader = await RawClient.open(b.port);
    try {
      const wins = { move: 0, upload: 0 };
      for (const i of rounds) {
        const move = encodeFrame({
          type: "request",
          id: i + 1,
          op: "rename",
          name: `src${i}`,
          to: `dst${i}`,
          overwrite: false,
        });
        // The move sent up to MOVE_RACE_SPREAD_MS after the upload, so that rounds fall on both
        // sides of the moment the upload publishes.
        const delay = new Promise((resolve) => setTimeout(resolve, i % (MOVE_RACE_SPREAD_MS + 1)));
        await Promise.all([
          delay.then(() => mover.sendBytes(move)),
          uploader.sendBytes(eagerUpload(i + 1, `dst${i}`, uploaded(i))),
        ]);
        const [moveReply, uploadReply] = await Promise.all([
          readWithin(mover),
          readWithin(uploader),
        ]);
        const codeOf = (reply: Message | null) => (reply?.error as { code?: string })?.code;
        const won = [moveReply?.ok === true, uploadReply?.ok === true];
        const replies = JSON.stringify([moveReply, uploadReply]);
        assert.equal(won.filter(Boolean).length, 1, `round ${i}: ${replies}`);
        // An upload finding the moved directory there is told what is in its way.
        const refusals = won[0] && inside(i) ? ["EXISTS", "WRONG_TYPE"] : ["EXISTS"];
        const refusal = codeOf(won[0] ? uploadReply : moveReply);
        assert.ok(refusals.includes(refusal!), `round ${i}: ${replies}`);
        const held = await Deno.readFile(join(root.b, `dst${i}`, won[0] ? inside(i) : ""));
        assert.deepEqual(held, won[0] ? moved(i) : uploaded(i), `round ${i}`);
        const left = await readOrNull(root.a, join(`src${i}`, inside(i)));
        assert.deepEqual(left, won[0] ? null : moved(i), `round ${i}`);
        wins[won[0] ? "move" : "upload"]++;
      }
      console.log(`moveRacesUpload: the move won ${wins.move} rounds, the upload ${wins.upload}`);
    } finally {
      mover.close();
      uploader.close();
    }
  });
}
