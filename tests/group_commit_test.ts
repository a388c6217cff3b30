/**
 * Group commit (io/commit_group.ts): files received back to back are
 * fsynced together, moved onto their names in order, each directory fsynced
 * once, then reported one by one; a failure stops its own file only. Against
 * the real server on the disk (/var/tmp, where fsync is real), a real full
 * file system (a small tmpfs), and the real client; the order of the
 * server's system calls is checked with strace.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { commitGroup } from "../io/commit_group.ts";
import { encodeFrame, type Message } from "../protocol/frames.ts";
import {
  concat,
  eagerUpload,
  FTS_RUN_FLAGS,
  listTree,
  mountTmpfs,
  PROJECT_DIR,
  RawClient,
  rawList,
  readWithin,
  runCommand,
  sha256File,
  sha256Hex,
  startServer,
} from "./_helpers.ts";

/** On the disk, not a tmpfs: an fsync there waits for the device. */
const DISK_DIR = "/var/tmp";

/** How long the strace of the server may take to attach. */
const STRACE_ATTACH_TIMEOUT_MS = 30_000;

/** A fresh directory under {@link DISK_DIR}, removed when disposed of. */
async function diskDir(): Promise<{ path: string; [Symbol.asyncDispose](): Promise<void> }> {
  const path = await Deno.makeTempDir({ dir: DISK_DIR, prefix: "fts-group-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

/** An eager upload whose data was changed after its SHA-256 was taken: the trailer will not match. */
function corruptedEagerUpload(id: number, name: string, data: Uint8Array): Uint8Array {
  const bytes = eagerUpload(id, name, data);
  const trailerBytes = encodeFrame({ type: "trailer", id, sha256: sha256Hex(data) }).length;
  bytes[bytes.length - trailerBytes - 1]! ^= 0xff;
  return bytes;
}

/** `size` random bytes (getRandomValues fills at most 64 KiB a call). */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
  return bytes;
}

function codeOf(reply: Message | null): unknown {
  return (reply?.error as { code?: unknown } | undefined)?.code;
}

/** The temporary files left in a served root's state directory. */
async function leftInTmp(root: string): Promise<string[]> {
  return (await listTree(root)).filter((path) =>
    path.startsWith(".fts/tmp/") && path !== ".fts/tmp/" && path !== ".fts/tmp/SERVER/"
  );
}

Deno.test("commitGroup() settles every member before it places any, and fails only the member that fails", async () => {
  await using disk = await diskDir();
  const elsewhere = join(disk.path, "elsewhere");
  await Deno.mkdir(elsewhere);
  const events: string[] = [];
  const member = (name: string, fail?: "settle" | "place" | "directory") => ({
    async settle() {
      await new Promise((resolve) => setTimeout(resolve, name === "a" ? 20 : 0));
      events.push(`settle ${name}`);
      if (fail === "settle") throw new Error(`settle ${name} failed`);
    },
    place() {
      events.push(`place ${name}`);
      if (fail === "place") throw new Error(`place ${name} failed`);
      Deno.writeTextFileSync(join(fail === "directory" ? elsewhere : disk.path, name), name);
      return fail === "directory" ? join(disk.path, "no-such-directory") : disk.path;
    },
  });
  const outcomes = await commitGroup([
    member("a"),
    member("b", "settle"),
    member("c", "place"),
    member("d", "directory"),
    member("e"),
  ]);
  // Every settle (the slow one too) before the first place; places in order; none for a failed settle.
  assert.deepEqual(events.slice(0, 5).sort(), ["a", "b", "c", "d", "e"].map((n) => `settle ${n}`));
  assert.deepEqual(events.slice(5), ["place a", "place c", "place d", "place e"]);
  assert.deepEqual(outcomes.map((outcome) => outcome.ok), [true, false, false, false, true]);
  assert.match(String((outcomes[1] as { error: unknown }).error), /settle b failed/);
  assert.match(String((outcomes[2] as { error: unknown }).error), /place c failed/);
  assert.ok((outcomes[3] as { error: unknown }).error instanceof Deno.errors.NotFound);
  assert.deepEqual((await listTree(disk.path)).sort(), ["a", "e", "elsewhere/", "elsewhere/d"]);
});

Deno.test("pipelined uploads on the disk: a taken name and a bad SHA-256 fail alone, every other file lands, in several directories", async () => {
  await using disk = await diskDir();
  const root = join(disk.path, "root");
  const server = await startServer(["--root", root]);
  const client = await RawClient.open(server.port);
  try {
    await Deno.mkdir(join(root, "b"));
    await Deno.writeTextFile(join(root, "b", "taken.bin"), "kept");
    const files = Array.from({ length: 30 }, (_, i) => ({
      // Interleaved, so a group spans the three directories (a and c are made
      // by the uploads). File 22 takes file 10's name while both are held in
      // one group: it is refused when it is placed, after file 10.
      name: i === 7 ? "b/taken.bin" : i === 22 ? "b/f10.bin" : `${"abc"[i % 3]}/f${i}.bin`,
      data: crypto.getRandomValues(new Uint8Array(i * 100)),
      corrupt: i === 13,
    }));
    await client.sendBytes(
      concat(
        files.map(({ name, data, corrupt }, i) =>
          corrupt ? corruptedEagerUpload(i + 1, name, data) : eagerUpload(i + 1, name, data)
        ),
      ),
    );
    for (const [i, { name, data, corrupt }] of files.entries()) {
      const reply = await readWithin(client);
      assert.equal(reply?.id, i + 1, "replies come in order");
      const taken = name === "b/taken.bin" || i === 22;
      const expected = taken ? "EXISTS" : corrupt ? "INTEGRITY" : undefined;
      assert.equal(codeOf(reply), expected, `${name}: ${JSON.stringify(reply)}`);
      if (expected !== undefined) continue;
      assert.equal(reply?.sha256, sha256Hex(data));
      assert.equal(await sha256File(join(root, name)), sha256Hex(data), name);
    }
    assert.equal(await Deno.readTextFile(join(root, "b", "taken.bin")), "kept");
    await assert.rejects(Deno.stat(join(root, files[13]!.name)), Deno.errors.NotFound);
    assert.deepEqual(await leftInTmp(root), []);
    // The session goes on, and sees every file.
    const { names, reply } = await rawList(client, 31, "a");
    assert.equal(reply.ok, true);
    assert.equal(names.length, 10);
  } finally {
    client.close();
    await server.stop();
  }
});

Deno.test("pipelined uploads onto a file system that fills: NO_SPACE for the files that do not fit, the others whole", async () => {
  await using tmpfs = await mountTmpfs("8m");
  if (tmpfs === null) return;
  const root = join(tmpfs.path, "root");
  const server = await startServer(["--root", root, "--reserve", "0"]);
  const client = await RawClient.open(server.port);
  try {
    // 12 MiB for 8: the first files fit, the last do not.
    const files = Array.from({ length: 12 }, (_, i) => ({
      name: `d${i % 2}/n${i}.bin`,
      data: randomBytes(1 << 20),
    }));
    await client.sendBytes(
      concat(files.map(({ name, data }, i) => eagerUpload(i + 1, name, data))),
    );
    const codes: unknown[] = [];
    for (const [i, { name, data }] of files.entries()) {
      const reply = await readWithin(client);
      assert.equal(reply?.id, i + 1, "replies come in order");
      codes.push(codeOf(reply));
      if (reply?.ok === true) {
        assert.equal(await sha256File(join(root, name)), sha256Hex(data), name);
      } else {
        assert.equal(codeOf(reply), "NO_SPACE", `${name}: ${JSON.stringify(reply)}`);
        await assert.rejects(Deno.stat(join(root, name)), Deno.errors.NotFound);
      }
    }
    // The first file fits: the files held behind it in its group cannot take its room.
    assert.equal(codes[0], undefined, codes.join());
    assert.ok(codes.includes("NO_SPACE"), codes.join());
    assert.deepEqual(await leftInTmp(root), []);
    const { reply } = await rawList(client, 13, "");
    assert.equal(reply.ok, true);
  } finally {
    client.close();
    await server.stop();
  }
});

Deno.test("an eager upload alone is answered while the client sends nothing more", async () => {
  await using disk = await diskDir();
  const server = await startServer(["--root", join(disk.path, "root")]);
  const client = await RawClient.open(server.port);
  try {
    const data = new TextEncoder().encode("alone");
    await client.sendBytes(eagerUpload(1, "alone.txt", data));
    const reply = await readWithin(client);
    assert.equal(reply?.ok, true, JSON.stringify(reply));
    assert.equal(await Deno.readTextFile(join(disk.path, "root", "alone.txt")), "alone");
  } finally {
    client.close();
    await server.stop();
  }
});

Deno.test("get -r on the disk: a file that cannot take its name fails alone, every other file lands whole", async () => {
  await using disk = await diskDir();
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "d"));
    const sums = new Map<string, string>();
    for (let i = 0; i < 40; i++) {
      const name = `f${String(i).padStart(2, "0")}.bin`;
      const data = crypto.getRandomValues(new Uint8Array(4096));
      await Deno.writeFile(join(server.root, "d", name), data);
      sums.set(name, sha256Hex(data));
    }
    // got is there already, so the tree lands in got/d (as scp -r puts it).
    const target = join(disk.path, "got", "d");
    // A directory (not empty) where f20.bin would land: its rename fails.
    await Deno.mkdir(join(target, "f20.bin"), { recursive: true });
    await Deno.writeTextFile(join(target, "f20.bin", "inside"), "in the way");
    const run = await runCommand(server, ["get", "-r", "-f", "d", join(disk.path, "got")]);
    assert.notEqual(run.code, 0, run.stdout);
    assert.match(run.stderr, /f20\.bin/);
    // All 40 requests were in flight before the first reply was read: every
    // other file, before and after the failure, is received and lands whole.
    const landed = await listTree(target);
    for (const [name, sum] of sums) {
      if (name === "f20.bin") continue;
      assert.ok(landed.includes(name), `${name} missing: ${landed}`);
      assert.equal(await sha256File(join(target, name)), sum, name);
    }
    assert.equal(await Deno.readTextFile(join(target, "f20.bin", "inside")), "in the way");
    assert.deepEqual(landed.filter((path) => path.includes("fts-partial")), []);
  } finally {
    await server.stop();
  }
});

Deno.test({
  name:
    "put -r on the disk: every file is fsynced before it takes its name, and each directory is fsynced once per group",
  ignore: !canStrace(),
  async fn() {
    await using disk = await diskDir();
    const root = join(disk.path, "root");
    const source = join(disk.path, "source");
    const targets = (await makeTree(source)).map((name) => join(root, "up", name));
    const server = await startServer(["--root", root]);
    const traceFile = join(disk.path, "trace");
    const strace = new Deno.Command("strace", {
      args: [...STRACE_ARGS, "-o", traceFile, "-p", String(server.process.pid)],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    try {
      await straceAttached(strace);
      const run = await runCommand(server, ["put", "-r", source, "up"]);
      assert.equal(run.code, 0, run.stderr);
    } finally {
      strace.kill("SIGINT");
      await strace.status;
      await server.stop();
    }
    const tmpDir = join(root, ".fts", "tmp");
    const trace = parseTrace(await Deno.readTextFile(traceFile), {
      temporary: (path) => path.startsWith(`${tmpDir}/`),
      directory: (path) => path.startsWith(`${root}/`) && !path.startsWith(join(root, ".fts")),
    });
    // mkdir's own directory fsyncs come before the uploads: not counted.
    assertSyncedBeforePlaced(trace, targets, TREE_DIRECTORIES.length);
  },
});

Deno.test({
  name:
    "get -r on the disk: every file is fsynced before it takes its name, and each directory is fsynced once per group",
  ignore: !canStrace(),
  async fn() {
    await using disk = await diskDir();
    const server = await startServer();
    const target = join(disk.path, "got");
    const targets = (await makeTree(join(server.root, "up"))).map((name) => join(target, name));
    const traceFile = join(disk.path, "trace");
    try {
      const token = server.token ? ["--token", server.token] : [];
      const run = await new Deno.Command("strace", {
        args: [
          ...STRACE_ARGS,
          "-o",
          traceFile,
          Deno.execPath(),
          "run",
          ...FTS_RUN_FLAGS,
          join(PROJECT_DIR, "main.ts"),
          "connect",
          `127.0.0.1:${server.port}`,
          ...token,
          "get",
          "-r",
          "up",
          target,
        ],
        cwd: server.dir,
        stdin: "null",
      }).output();
      assert.ok(run.success, new TextDecoder().decode(run.stderr));
    } finally {
      await server.stop();
    }
    const trace = parseTrace(await Deno.readTextFile(traceFile), {
      temporary: (path) => path.startsWith(`${target}/`) && path.endsWith(".fts-partial"),
      directory: (path) => path === target || path.startsWith(`${target}/`),
    });
    assertSyncedBeforePlaced(trace, targets, TREE_DIRECTORIES.length);
  },
});

/** The directories of the tree {@link makeTree} makes, each with {@link TREE_FILES_EACH} files. */
const TREE_DIRECTORIES = ["a", "b", "c"];

/** Files in each of {@link TREE_DIRECTORIES}. */
const TREE_FILES_EACH = 8;

/** Writes a small tree of 4 KiB random files into `dir`; returns their names, relative. */
async function makeTree(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const sub of TREE_DIRECTORIES) {
    await Deno.mkdir(join(dir, sub), { recursive: true });
    for (let i = 0; i < TREE_FILES_EACH; i++) {
      const name = `${sub}/f${i}`;
      await Deno.writeFile(join(dir, name), crypto.getRandomValues(new Uint8Array(4096)));
      names.push(name);
    }
  }
  return names;
}

/**
 * Every one of `targets` took its name from a temporary file whose fsync
 * had returned, and the directories were fsynced (after the first file's
 * fsync) at most once per directory, and twice more: a group that closed
 * early, never once per file.
 */
function assertSyncedBeforePlaced(trace: Trace, targets: string[], directories: number): void {
  assert.deepEqual(trace.placed.map(({ target }) => target).sort(), [...targets].sort());
  for (const { source, target, at } of trace.placed) {
    const synced = trace.fileSyncs.get(source);
    assert.ok(synced !== undefined && synced < at, `${target} took its name before its fsync`);
  }
  const firstFileSync = Math.min(...trace.fileSyncs.values());
  const directorySyncs = trace.directorySyncs.filter(({ at }) => at > firstFileSync);
  assert.ok(
    directorySyncs.length <= directories + 2,
    `${directorySyncs.length} directory fsyncs for ${targets.length} files in ${directories} directories`,
  );
}

/** strace's arguments for the calls that make a file durable and give it its name. */
const STRACE_ARGS = [
  "-f",
  "-y",
  "-e",
  "trace=fsync,fdatasync,rename,renameat,renameat2,link,linkat",
];

/** Whether strace is installed and may trace (as root, it may attach to the server). */
function canStrace(): boolean {
  if (Deno.uid() !== 0) return false;
  try {
    return new Deno.Command("strace", { args: ["-V"], stdout: "null", stderr: "null" }).outputSync()
      .success;
  } catch {
    return false;
  }
}

/** Waits for strace to say it has attached to every thread of the process. */
async function straceAttached(strace: Deno.ChildProcess): Promise<void> {
  const reader = strace.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => strace.kill("SIGINT"), STRACE_ATTACH_TIMEOUT_MS);
  try {
    while (!/attached/.test(text)) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`strace did not attach: ${text}`);
      text += value;
    }
  } finally {
    clearTimeout(timer);
  }
  // Keep reading, so strace never blocks on a full pipe.
  (async () => {
    while (!(await reader.read()).done);
  })();
}

/** What the server's trace shows: when each fsync returned, and each file's move onto its name. */
interface Trace {
  /** Temporary file → the trace line where its fsync returned. */
  fileSyncs: Map<string, number>;
  /** The fsyncs of directories of the root, outside its state directory. */
  directorySyncs: { path: string; at: number }[];
  /** Each link or rename from a temporary file onto a name. */
  placed: { source: string; target: string; at: number }[];
}

/** Which paths of a trace are temporary files, and which directories count. */
interface TracePaths {
  temporary(path: string): boolean;
  directory(path: string): boolean;
}

/**
 * Reads an `strace -f -y` output: a call another thread interrupted is
 * split into "<unfinished ...>" and "<... resumed>" lines; its return is the
 * resumed line's position.
 */
function parseTrace(text: string, paths: TracePaths): Trace {
  const trace: Trace = { fileSyncs: new Map(), directorySyncs: [], placed: [] };
  const unfinished = new Map<string, string>();
  for (const [at, line] of text.split("\n").entries()) {
    const match = /^(\d+) +(.*)$/.exec(line);
    if (!match) continue;
    const [, pid, rest] = match as unknown as [string, string, string];
    let call = rest;
    if (rest.endsWith("<unfinished ...>")) {
      unfinished.set(pid, rest);
      continue;
    }
    const resumed = /^<\.\.\. \w+ resumed>(.*)$/.exec(rest);
    if (resumed) {
      call = (unfinished.get(pid) ?? "").replace(/ <unfinished \.\.\.>$/, "") + resumed[1];
      unfinished.delete(pid);
    }
    if (!/= 0$/.test(call.trim())) continue;
    const sync = /^f(?:data)?sync\(\d+<([^>]*)>\)/.exec(call);
    if (sync) {
      const path = sync[1]!;
      if (paths.temporary(path)) trace.fileSyncs.set(path, at);
      else if (paths.directory(path)) trace.directorySyncs.push({ path, at });
      continue;
    }
    const move = /^(?:link|linkat|rename|renameat2?)\(.*?"([^"]+)".*?"([^"]+)"/.exec(call);
    if (move && paths.temporary(move[1]!)) {
      trace.placed.push({ source: move[1]!, target: move[2]!, at });
    }
  }
  return trace;
}
