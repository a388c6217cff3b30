/**
 * Times `put -r` and `get -r` of many small files on the disk, for two
 * checkouts of fts run in turn (before and after a change): each run starts
 * a server of one checkout on a fresh root under /var/tmp, uploads the tree,
 * downloads it again, and stops the server; the checkouts alternate run by
 * run. Every timed step starts after an untimed `sync`. Not a test: it
 * prints a table of wall times.
 *
 *     deno run --allow-all scripts/measure_small_files.ts --before ../fts-main --after . --runs 3
 *
 * `--dir DIR` measures on another file system (a tmpfs, where fsync costs nothing);
 * `--glusterfs` on a real two-brick GlusterFS volume the script starts and
 * removes (tests/_glusterfs.ts; root, Linux, the Debian packages), beside
 * `cp -r` onto the same mount timed to `sync`. Without `--before` it
 * measures one checkout.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { ftsTaskFlags } from "./compile.ts";
import { glusterMissing, type GlusterVolume, startGlusterVolume } from "../tests/_glusterfs.ts";

/** Seconds a client command took: from spawn to exit, and the transfer it reported. */
interface Timing {
  wall: number;
  transfer: number;
}

/** Where the roots and trees go: the disk, not a tmpfs, so fsync is real. */
const DISK_DIR = "/var/tmp";

/** How long a server may take to say it is listening. */
const SERVER_START_TIMEOUT_MS = 30_000;

const args = parseArgs({
  args: Deno.args,
  options: {
    before: { type: "string" },
    after: { type: "string", default: "." },
    runs: { type: "string", default: "3" },
    files: { type: "string", default: "1000" },
    size: { type: "string", default: "4096" },
    dir: { type: "string", default: DISK_DIR },
    glusterfs: { type: "boolean", default: false },
  },
  strict: true,
}).values;
const checkouts: (readonly [string, string])[] = args.before === undefined
  ? [["fts", args.after]]
  : [["before", args.before], ["after", args.after]];
const runs = Number(args.runs);
const fileCount = Number(args.files);
const fileBytes = Number(args.size);
const flags = ftsTaskFlags();

let volume: GlusterVolume | null = null;
if (args.glusterfs) {
  const missing = glusterMissing();
  if (missing !== null) throw new Error(missing);
  volume = await startGlusterVolume();
}
const onDir = volume?.mountA ?? args.dir;
const trees = await Deno.makeTempDir({ dir: DISK_DIR, prefix: "fts-measure-trees-" });
const work = await Deno.makeTempDir({ dir: onDir, prefix: "fts-measure-" });
try {
  const source = join(trees, "tree");
  await makeTree(source, fileCount, fileBytes);
  const times: Record<string, { put: Timing[]; get: Timing[] }> = {};
  for (let run = 0; run < runs; run++) {
    // Alternate which checkout goes first, so neither always runs on a warmer machine.
    const order = run % 2 === 0 ? checkouts : [...checkouts].reverse();
    for (const [label, dir] of order) {
      const { put, get } = await measureOnce(
        dir,
        source,
        join(work, `${label}-${run}`),
        join(trees, `${label}-${run}`),
      );
      (times[label] ??= { put: [], get: [] }).put.push(put);
      times[label]!.get.push(get);
      console.error(`run ${run + 1} ${label}: put ${show([put])}, get ${show([get])}`);
    }
    if (volume) {
      const cp = await timedCopy(source, join(work, `cp-${run}`));
      (times["cp -r"] ??= { put: [], get: [] }).put.push(cp);
      times["cp -r"]!.get.push(await timedCopy(join(work, `cp-${run}`), join(trees, `cp-${run}`)));
    }
  }
  console.log(
    `${fileCount} x ${fileBytes} B on ${
      volume ? "GlusterFS" : onDir
    }, ${runs} runs; seconds, wall (transfer):`,
  );
  for (const [label, { put, get }] of Object.entries(times)) {
    console.log(
      `${label.padEnd(7)} put -r ${show(put)}, median ${
        median(put.map((t) => t.wall)).toFixed(3)
      }` +
        `  get -r ${show(get)}, median ${median(get.map((t) => t.wall)).toFixed(3)}`,
    );
  }
} finally {
  await Deno.remove(work, { recursive: true });
  await Deno.remove(trees, { recursive: true });
  await volume?.[Symbol.asyncDispose]();
}

/** `cp -r from to` after an untimed sync, timed to a `sync` after it (no transfer time of its own). */
async function timedCopy(from: string, to: string): Promise<Timing> {
  await new Deno.Command("sync").output();
  const started = performance.now();
  const copy = await new Deno.Command("cp", { args: ["-r", from, to] }).output();
  if (!copy.success) throw new Error(new TextDecoder().decode(copy.stderr));
  await new Deno.Command("sync").output();
  return { wall: (performance.now() - started) / 1000, transfer: NaN };
}

/** Writes `count` random files of `bytes` each, 100 to a directory. */
async function makeTree(dir: string, count: number, bytes: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const sub = join(dir, `d${Math.floor(i / 100)}`);
    if (i % 100 === 0) await Deno.mkdir(sub, { recursive: true });
    await Deno.writeFile(join(sub, `f${i}`), crypto.getRandomValues(new Uint8Array(bytes)));
  }
}

/**
 * One server of `checkout` on a fresh root in `dir`: the put -r and get -r
 * wall times, in seconds; the download and the port file go to `local`.
 */
async function measureOnce(
  checkout: string,
  source: string,
  dir: string,
  local: string,
): Promise<{ put: Timing; get: Timing }> {
  await Deno.mkdir(dir);
  await Deno.mkdir(local);
  const main = join(checkout, "main.ts");
  const portFile = join(local, "port");
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...flags,
      main,
      "serve",
      "--root",
      join(dir, "root"),
      "--port-file",
      portFile,
      "--no-auth",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const port = await listeningPort(server);
    const client = (command: string[]) =>
      timed(["run", ...flags, main, "connect", `127.0.0.1:${port}`, ...command]);
    const put = await client(["put", "-r", source, "tree"]);
    const get = await client(["get", "-r", "tree", join(local, "back")]);
    return { put, get };
  } finally {
    server.kill("SIGTERM");
    await server.status;
  }
}

/**
 * Runs deno with `args` after an untimed sync: its wall time in seconds,
 * and the transfer's own, from its summary line (`… in 0.42 s`).
 */
async function timed(args: string[]): Promise<Timing> {
  await new Deno.Command("sync").output();
  const started = performance.now();
  const output = await new Deno.Command(Deno.execPath(), { args, stdin: "null" }).output();
  const wall = (performance.now() - started) / 1000;
  if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
  const summary = / in ([\d.]+) s /.exec(
    new TextDecoder().decode(output.stdout).split("\n").at(-2)!,
  );
  return { wall, transfer: Number(summary?.[1] ?? NaN) };
}

/** Reads the server's stdout until its "serving … on HOST:PORT" line; the port. */
async function listeningPort(server: Deno.ChildProcess): Promise<number> {
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  const timer = setTimeout(() => server.kill("SIGTERM"), SERVER_START_TIMEOUT_MS);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`server exited before listening: ${text}`);
      text += value;
      const match = /fts: serving .* on .*:(\d+)\n/.exec(text);
      if (match) {
        // Keep draining stdout so the server never blocks on a full pipe.
        (async () => {
          while (!(await reader.read()).done);
        })();
        return Number(match[1]);
      }
    }
  } finally {
    clearTimeout(timer);
  }
}

function show(timings: Timing[]): string {
  return timings.map((t) => `${t.wall.toFixed(3)} (${t.transfer.toFixed(2)})`).join(" ");
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}
