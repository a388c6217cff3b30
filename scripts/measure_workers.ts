/**
 * Measures what several server workers buy: the same loads against
 * `fts serve --workers 1` and `--workers 2` (or the counts given), on a tmpfs
 * root, alternating, and reports the median of each: wall time, and the
 * server's CPU time over it (cores used), from /proc/PID/stat.
 *
 * - 16 clients at once, each uploading a 64 MiB file;
 * - one `put -r` of 1000 files of 4 KiB;
 * - 1000 connections at once from one process, each uploading 1 MiB (with
 *   the server's peak RSS: the README's bound for it is 150 MiB).
 *
 * Usage (as root, for the tmpfs mount; Linux):
 *   deno run --allow-all scripts/measure_workers.ts [--rounds N] [--workers 1,2] [--baseline DIR]
 *     [--loads clients,small,connections]
 *
 * `--baseline DIR` also runs the fts checkout in DIR (without `--workers`),
 * in the same rounds: a reference on a machine whose load varies.
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";
import { FtsConnection } from "../client/connection.ts";
import { ftsTaskFlags } from "./compile.ts";

const PROJECT_DIR = new URL("..", import.meta.url).pathname;
const MAIN = join(PROJECT_DIR, "main.ts");
/** Where the tmpfs is mounted (Deno refuses /dev paths to sandboxed code). */
const TMPFS_DIR = "/tmp/fts-workers-tmpfs";
/** Clients uploading at once, and each one's file. */
const CLIENTS = 16;
const CLIENT_FILE_BYTES = 64 * 1024 * 1024;
/** The small-file tree. */
const SMALL_FILES = 1000;
const SMALL_FILE_BYTES = 4096;
/** Connections at once, and each one's file. */
const CONNECTIONS = 1000;
const CONNECTION_FILE_BYTES = 1024 * 1024;
/** What `--loads` calls the loads, in order. */
const LOAD_NAMES = ["clients", "small", "connections"];
/** Clock ticks per second in /proc/PID/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS_PER_S = 100;

/** One measured run. */
interface Run {
  wallS: number;
  serverCpuS: number;
  /** The server's peak resident memory, MiB. */
  peakRssMiB: number;
}

async function run(command: string, args: string[]): Promise<void> {
  const { code, stderr } = await new Deno.Command(command, { args, stderr: "piped" }).output();
  if (code !== 0) {
    throw new Error(`${command} ${args.join(" ")}: ${new TextDecoder().decode(stderr)}`);
  }
}

/** CPU seconds process `pid` has used (user and system, all threads). */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** The servers compared: a worker count here, or the baseline checkout. */
type Subject = { workers: number } | { baseline: string };

function describe(subject: Subject): string {
  return "workers" in subject ? `--workers ${subject.workers}` : `baseline ${subject.baseline}`;
}

/** Starts a server on `root`; resolves with its port and process once it serves. */
async function startServer(root: string, subject: Subject) {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...ftsTaskFlags(),
      "workers" in subject ? MAIN : join(subject.baseline, "main.ts"),
      "serve",
      "--no-auth",
      "--root",
      root,
      "--port-file",
      join(TMPFS_DIR, "port"),
      "--reserve",
      "0",
      // Room for every connection of the 1000-connection load, from one address.
      "--max-connections",
      String(2 * CONNECTIONS),
      "--max-connections-per-peer",
      String(2 * CONNECTIONS),
      // A thousand handshakes at once on two busy cores may take longer than the default.
      "--handshake-timeout",
      "120",
      ...("workers" in subject ? ["--workers", String(subject.workers)] : []),
    ],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!/serving .* on .*:(\d+)\n/.test(text)) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`server exited: ${text}`);
    text += value;
  }
  void (async () => {
    while (!(await reader.read()).done);
  })();
  return { child, port: Number(/serving .* on .*:(\d+)\n/.exec(text)![1]) };
}

/** The peak resident memory of process `pid`, MiB. */
function peakRssMiB(pid: number): number {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

function client(port: number, args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...ftsTaskFlags(), MAIN, "connect", `127.0.0.1:${port}`, "--quiet", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
}

/** Runs `load` against a fresh server; measures it. */
async function measure(
  subject: Subject,
  load: (port: number) => Promise<Deno.CommandOutput[]>,
): Promise<Run> {
  const root = join(TMPFS_DIR, "root");
  await Deno.remove(root, { recursive: true }).catch(() => {});
  const { child, port } = await startServer(root, subject);
  try {
    const cpuBefore = cpuSeconds(child.pid);
    const started = performance.now();
    const outputs = await load(port);
    const wallS = (performance.now() - started) / 1000;
    const serverCpuS = cpuSeconds(child.pid) - cpuBefore;
    for (const output of outputs) {
      if (output.code !== 0) throw new Error(new TextDecoder().decode(output.stderr));
    }
    return { wallS, serverCpuS, peakRssMiB: peakRssMiB(child.pid) };
  } finally {
    child.kill("SIGTERM");
    await child.status;
  }
}

function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      rounds: { type: "string", default: "3" },
      workers: { type: "string", default: "1,2" },
      baseline: { type: "string" },
      loads: { type: "string", default: "clients,small,connections" },
    },
  });
  const rounds = Number(values.rounds);
  const subjects: Subject[] = values.workers!.split(",").map((n) => ({ workers: Number(n) }));
  if (values.baseline) subjects.push({ baseline: values.baseline });
  await Deno.mkdir(TMPFS_DIR, { recursive: true });
  const mounted = !(await Deno.readTextFile("/proc/mounts")).includes(` ${TMPFS_DIR} tmpfs `);
  if (mounted) await run("mount", ["-t", "tmpfs", "-o", "size=4g", "tmpfs", TMPFS_DIR]);
  try {
    const bigFile = join(TMPFS_DIR, "big.bin");
    const chunk = new Uint8Array(1 << 20);
    using file = await Deno.open(bigFile, { write: true, create: true, truncate: true });
    for (let i = 0; i < CLIENT_FILE_BYTES / chunk.length; i++) {
      crypto.getRandomValues(chunk.subarray(0, 65536));
      await file.write(chunk);
    }
    const smallDir = join(TMPFS_DIR, "small");
    await Deno.mkdir(smallDir, { recursive: true });
    for (let i = 0; i < SMALL_FILES; i++) {
      await Deno.writeFile(
        join(smallDir, `f${i}.bin`),
        crypto.getRandomValues(new Uint8Array(SMALL_FILE_BYTES)),
      );
    }
    const connectionFile = join(TMPFS_DIR, "connection.bin");
    await Deno.writeFile(
      connectionFile,
      new Uint8Array(CONNECTION_FILE_BYTES).map((_, i) => i * 31),
    );
    const allLoads = {
      [`${CLIENTS} clients x ${CLIENT_FILE_BYTES >> 20} MiB upload`]: (port: number) =>
        Promise.all(
          Array.from({ length: CLIENTS }, (_, i) => client(port, ["put", bigFile, `c${i}.bin`])),
        ),
      [`put -r ${SMALL_FILES} x ${SMALL_FILE_BYTES >> 10} KiB`]: async (port: number) => [
        await client(port, ["put", "-r", smallDir, "tree"]),
      ],
      [`${CONNECTIONS} connections x ${CONNECTION_FILE_BYTES >> 20} MiB upload`]: async (
        port: number,
      ) => {
        await Promise.all(Array.from({ length: CONNECTIONS }, async (_, i) => {
          const connection = await FtsConnection.open("127.0.0.1", port);
          await connection.upload(connectionFile, `${i}.bin`, { overwrite: true });
          await connection.logout();
        }));
        return [];
      },
    };
    const chosen = values.loads!.split(",");
    const loads = Object.fromEntries(
      Object.entries(allLoads).filter((_, i) => chosen.includes(LOAD_NAMES[i]!)),
    );
    const results = new Map<string, Run[]>();
    for (let round = 0; round < rounds; round++) {
      for (const [name, load] of Object.entries(loads)) {
        for (const subject of subjects) {
          const measured = await measure(subject, load);
          const key = `${name}|${describe(subject)}`;
          results.set(key, [...(results.get(key) ?? []), measured]);
          console.error(
            `round ${round + 1}: ${name}, ${describe(subject)}: ${measured.wallS.toFixed(3)} s, ` +
              `server CPU ${measured.serverCpuS.toFixed(2)} s, ` +
              `peak RSS ${measured.peakRssMiB.toFixed(0)} MiB`,
          );
        }
      }
    }
    console.log(
      `| load | server | wall s (median of ${rounds}) | server CPU s | server cores used | ` +
        "server peak RSS MiB |",
    );
    console.log("| --- | --- | --- | --- | --- | --- |");
    for (const [key, runs] of results) {
      const [name, server] = key.split("|");
      const wall = median(runs.map((r) => r.wallS));
      const cpu = median(runs.map((r) => r.serverCpuS));
      const cores = median(runs.map((r) => r.serverCpuS / r.wallS));
      const rss = median(runs.map((r) => r.peakRssMiB));
      console.log(
        `| ${name} | ${server} | ${wall.toFixed(3)} | ${cpu.toFixed(2)} | ${cores.toFixed(2)} | ${
          rss.toFixed(0)
        } |`,
      );
    }
  } finally {
    await Deno.remove(join(TMPFS_DIR, "root"), { recursive: true }).catch(() => {});
    if (mounted) await run("umount", [TMPFS_DIR]);
  }
}

if (import.meta.main) await main();
