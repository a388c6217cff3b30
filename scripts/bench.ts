/**
 * `deno task bench`: fts side by side with raw TCP (socat), a tar stream
 * through socat, OpenSSH scp and sftp, and an rsync daemon, on loopback, on a
 * tmpfs and on the disk. The systems take turns round after round (A B C A B
 * C …) and the table reports medians and the median of per-round ratios to
 * the fastest peer, because this machine's disk is shared and noisy. Every
 * transferred file is verified by SHA-256. The single-file rows also report
 * the CPU spent per GiB (and fts's busiest thread on each side), the
 * concurrent rows the cores the server used.
 *
 * `--storage glusterfs` runs (a), (b) and (c), at sizes of their own, on a
 * real two-brick GlusterFS volume it starts and removes (tests/_glusterfs.ts;
 * root, Linux, the Debian packages), mounted twice: the served roots are on
 * the first mount, the files sent and received on the disk; fts with one
 * server, and with two (`fts-two`, the second on the second mount), beside
 * an rsync daemon, tar through socat and `cp` onto the mount, each timed to
 * a `sync` of what it wrote.
 *
 * Usage: deno task bench [--quick] [--rounds N] [--storage tmpfs|disk|both|glusterfs]
 *        [--systems fts,fts-sha256,fts-two,socat,tar|socat,rsync,scp,sftp,cp]
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { busiestThread, type CpuUse, measureCpu } from "./bench_cpu.ts";
import { type Sample, type SampleCpu, table, targetLines } from "./bench_report.ts";
import {
  type BenchSystem,
  CP,
  FTS,
  FTS_TWO,
  GLUSTERFS_SYSTEMS,
  type Operation,
  run,
  type RunningSystem,
  type StartOptions,
  SYSTEMS,
} from "./bench_systems.ts";
import { glusterMissing, type GlusterVolume, startGlusterVolume } from "../tests/_glusterfs.ts";

/** Sizes of every workload, full and quick. */
const SIZES = {
  full: {
    big: 1 << 30,
    small: 4096,
    smallCount: 1000,
    clients: 16,
    clientBytes: 64 << 20,
    connections: 1000,
    connectionBytes: 1 << 20,
    listed: 10_000,
    huge: 4 * 2 ** 30,
    rttCount: 200,
  },
  quick: {
    big: 8 << 20,
    small: 4096,
    smallCount: 50,
    clients: 4,
    clientBytes: 4 << 20,
    connections: 20,
    connectionBytes: 64 << 10,
    listed: 200,
    huge: 64 << 20,
    rttCount: 20,
  },
};
type Sizes = typeof SIZES.full;

/**
 * The GlusterFS rows' sizes, smaller than the disk's but for the one file:
 * every file-system call there is a round trip to the bricks (fts's 300
 * small files took 9 to 17 s), and the run has to end in minutes.
 */
const GLUSTERFS_SIZES: Partial<Sizes> = {
  smallCount: 300,
  clients: 4,
  clientBytes: 64 << 20,
};

/** The workloads `--storage glusterfs` runs: one file, small files, several clients. */
const GLUSTERFS_WORKLOADS = new Set(["a", "b", "c"]);

/** Where the tmpfs storage is mounted: Deno refuses /dev paths to sandboxed code, so not /dev/shm. */
const TMPFS_DIR = "/tmp/fts-bench-tmpfs";
const DISK_DIR = "/var/tmp/fts-bench-disk";

/** (h)'s relay holds each chunk this long each way: a 20 ms round trip. */
const RTT_LINK_DELAY_MS = 10;

/** Bytes in a GiB, for CPU seconds per GiB. */
const GIB = 2 ** 30;

async function sha256(path: string): Promise<string> {
  const hash = createHash("sha256");
  using file = await Deno.open(path);
  for await (const chunk of file.readable) hash.update(chunk);
  return hash.digest("hex");
}

async function writeRandom(path: string, size: number): Promise<void> {
  using file = await Deno.open(path, { write: true, create: true, truncate: true });
  const chunk = new Uint8Array(Math.min(size, 1 << 20));
  for (let done = 0; done < size; done += chunk.length) {
    for (let i = 0; i < chunk.length; i += 65536) {
      crypto.getRandomValues(chunk.subarray(i, i + 65536));
    }
    await file.write(chunk.subarray(0, Math.min(chunk.length, size - done)));
  }
}

/**
 * Peak resident memory of a process (VmHWM), or null. VmHWM belongs to the
 * process's address space, which all its threads share: for fts's server it
 * covers the main thread, the sandboxed worker and the runtime's threads. A
 * daemon that forks per connection (rsync, sshd) is measured without the
 * children it forked.
 */
async function peakRss(pid: number | null): Promise<number | null> {
  if (pid === null) return null;
  const status = await Deno.readTextFile(`/proc/${pid}/status`).catch(() => "");
  const kb = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1]);
  return Number.isFinite(kb) ? kb * 1024 : null;
}

async function timed(operation: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await operation();
  return (performance.now() - started) / 1000;
}

/** A storage made ready for a run. */
interface PreparedStorage {
  /** Where the files sent and received go (and the roots, but for GlusterFS). */
  dir: string;
  /** Whether this run mounted a tmpfs on `dir` (and so unmounts it when done). */
  mounted: boolean;
  /** The GlusterFS volume this run started (and removes when done), whose mounts hold the roots. */
  volume: GlusterVolume | null;
}

/** Makes the storage's directory, mounting a tmpfs or starting a GlusterFS volume when asked. */
async function prepareStorage(storage: string): Promise<PreparedStorage> {
  const dir = storage === "tmpfs" ? TMPFS_DIR : DISK_DIR;
  if (storage === "glusterfs") {
    const missing = glusterMissing();
    if (missing !== null) throw new Error(missing);
  }
  await Deno.mkdir(dir, { recursive: true });
  if (storage === "glusterfs") return { dir, mounted: false, volume: await startGlusterVolume() };
  if (storage !== "tmpfs") return { dir, mounted: false, volume: null };
  if ((await Deno.readTextFile("/proc/mounts")).includes(` ${dir} tmpfs `)) {
    return { dir, mounted: false, volume: null };
  }
  await run("mount", ["-t", "tmpfs", "-o", "size=12g", "tmpfs", dir]);
  return { dir, mounted: true, volume: null };
}

/**
 * Where one run's roots go: under `first`, and the same directory as a
 * second mount shows it (for a second server), or `first` again.
 */
interface RootPlace {
  first: string;
  second: string;
}

/** How an operation's CPU is measured: every thread sampled, the totals only, or not at all. */
type CpuMeasure = "threads" | "totals" | "none";

/** CPU seconds per GiB of client and server, and for fts its busiest thread on each side. */
function cpuPerGiB(cpu: CpuUse, bytes: number, isFts: boolean): SampleCpu {
  const gib = bytes / GIB;
  const perGiB = (cpu.serverSeconds + cpu.clientSeconds) / gib;
  if (!isFts) return { perGiB };
  const server = busiestThread(cpu.server);
  const client = busiestThread(cpu.clients);
  const named = (t: typeof server) => t ? `${t.command}/${t.name}` : "none";
  return {
    perGiB,
    busiestServerThreadPerGiB: (server?.seconds ?? 0) / gib,
    busiestClientThreadPerGiB: (client?.seconds ?? 0) / gib,
    busiestThreads: `server: ${named(server)}, client: ${named(client)}`,
  };
}

/** The cores the server used: its CPU seconds over the wall seconds (with a server process). */
function serverCores(cpu: CpuUse, running: RunningSystem): SampleCpu {
  return running.serverPid === null ? {} : { serverCores: cpu.serverSeconds / cpu.wallSeconds };
}

/** Everything one system does in one round of one storage; returns its samples. */
async function measureSystem(
  system: BenchSystem,
  storage: string,
  base: string,
  roots: RootPlace,
  sizes: Sizes,
  round: number,
): Promise<Sample[]> {
  const runs = (workload: string) => storage !== "glusterfs" || GLUSTERFS_WORKLOADS.has(workload);
  const samples: Sample[] = [];
  const sample = (
    row: string,
    seconds: number,
    amount: number,
    unit: Sample["unit"],
    rss: number | null,
    cpu: SampleCpu = {},
  ) =>
    samples.push({
      system: system.name,
      isFts: system.isFts,
      workload: row.slice(1, 2),
      row,
      storage,
      round,
      seconds,
      amount,
      unit,
      rssBytes: rss,
      cpu,
    });
  /** A sample of uploads at once: their aggregate rate and the cores the server used. */
  const concurrentSample = async (
    row: string,
    s: RunningSystem,
    measured: { seconds: number; cpu: CpuUse | null },
    bytes: number,
  ) => {
    const cores = serverCores(measured.cpu!, s);
    sample(row, measured.seconds, bytes, "MB/s", await peakRss(s.serverPid), cores);
  };
  const durable = storage !== "tmpfs";
  const sync = durable && !system.isFts
    ? (paths: string[]) => run("sync", paths) // fts acknowledges only after fsync; time peers to durability too.
    : () => Promise.resolve("");
  // On the disk every measurement starts with nothing left to write back from
  // the one before (an untimed sync), so that no system pays for another's data.
  // A peer's `sync FILE` on the disk is inside the measurement, its CPU counted as a client's.
  const measure = async (
    running: RunningSystem,
    operation: () => Promise<unknown>,
    cpu: CpuMeasure = "none",
  ): Promise<{ seconds: number; cpu: CpuUse | null }> => {
    if (durable) await run("sync", []);
    if (cpu === "none") return { seconds: await timed(operation), cpu: null };
    const measured = await measureCpu(operation, {
      serverPid: running.serverPid,
      sampleThreads: cpu === "threads",
    });
    return { seconds: measured.cpu.wallSeconds, cpu: measured.cpu };
  };

  const session = async (
    needs: Operation[],
    body: (s: RunningSystem, root: string) => Promise<void>,
    options: StartOptions = {},
  ) => {
    if (!needs.every((operation) => system.operations.includes(operation))) return;
    const root = join(roots.first, `root-${system.name}`);
    const work = join(base, `work-${system.name}`);
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.mkdir(root, { recursive: true });
    await Deno.mkdir(work, { recursive: true });
    const running = await system.start(root, work, {
      secondRoot: join(roots.second, `root-${system.name}`),
      ...options,
    });
    try {
      await body(running, root);
    } finally {
      await running.stop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(join(base, "out"), { recursive: true }).catch(() => {});
    }
  };
  const out = join(base, "out");

  // (a) one big file, upload then download, with the CPU each costs.
  if (runs("a")) {
    await session(["upload", "download"], async (s, root) => {
      const source = join(base, "big.bin");
      const up = await measure(s, async () => {
        await s.upload!(source, "big.bin");
        await sync([join(root, "big.bin")]);
      }, "threads");
      await verify(source, join(root, "big.bin"));
      await Deno.mkdir(out, { recursive: true });
      const down = await measure(s, () => s.download!("big.bin", join(out, "big.bin")), "threads");
      await verify(source, join(out, "big.bin"));
      const rss = await peakRss(s.serverPid);
      const cpu = (m: typeof up) => cpuPerGiB(m.cpu!, sizes.big, system.isFts);
      sample("(a) 1 file, upload", up.seconds, sizes.big, "MB/s", rss, cpu(up));
      sample("(a) 1 file, download", down.seconds, sizes.big, "MB/s", rss, cpu(down));
    });
  }

  // (b) many small files in one session; (h) fewer, through a relay that delays
  // each direction (a round trip of twice RTT_LINK_DELAY_MS).
  const manyFiles = async (label: string, dir: string, names: string[], options: StartOptions) =>
    await session(["uploadMany", "downloadMany"], async (s, root) => {
      const up = await measure(s, async () => {
        await s.uploadMany!(dir, names, "small");
        await sync(names.map((n) => join(root, "small", n)));
      });
      await verifyAll(dir, join(root, "small"), names);
      await Deno.mkdir(out, { recursive: true });
      const down = await measure(s, () => s.downloadMany!("small", names, join(out, "small")));
      await verifyAll(dir, join(out, "small"), names);
      const rss = await peakRss(s.serverPid);
      sample(`${label}, upload`, up.seconds, names.length, "files/s", rss);
      sample(`${label}, download`, down.seconds, names.length, "files/s", rss);
    }, options);
  if (runs("b")) {
    await manyFiles(
      `(b) ${sizes.smallCount} small files`,
      join(base, "small"),
      smallNames(sizes.smallCount),
      {},
    );
  }

  // (c) several clients at once, each uploading its own file.
  if (runs("c")) {
    await session(["upload"], async (s, root) => {
      const names = Array.from({ length: sizes.clients }, (_, i) => `client-${i}.bin`);
      const measured = await measure(s, async () => {
        await Promise.all(names.map((n) => s.upload!(join(base, "clients", n), n)));
        await sync(names.map((n) => join(root, n)));
      }, "totals");
      await verifyAll(join(base, "clients"), root, names);
      await concurrentSample(
        `(c) ${sizes.clients} clients, upload`,
        s,
        measured,
        sizes.clients * sizes.clientBytes,
      );
    });
  }
  if (storage === "glusterfs") return samples;

  // (d) many connections at once, each uploading a small file (fts only: see README).
  await session(["manyConnections"], async (s, root) => {
    const locals = Array.from({ length: sizes.connections }, () => join(base, "connection.bin"));
    await Deno.mkdir(join(root, "conns"));
    const measured = await measure(s, () => s.manyConnections!(locals, "conns"), "totals");
    const expected = await sha256(join(base, "connection.bin"));
    for (let i = 0; i < sizes.connections; i++) {
      if (await sha256(join(root, "conns", `${i}.bin`)) !== expected) {
        throw new Error(`(d) file ${i} differs`);
      }
    }
    await concurrentSample(
      `(d) ${sizes.connections} connections, upload`,
      s,
      measured,
      sizes.connections * sizes.connectionBytes,
    );
  });

  // (e) listing a large directory.
  await session(["list"], async (s, root) => {
    await Deno.mkdir(join(root, "many"));
    for (let i = 0; i < sizes.listed; i++) {
      await Deno.writeFile(join(root, "many", `f${i}`), new Uint8Array(0));
    }
    let listed = 0;
    const { seconds } = await measure(s, async () => listed = await s.list!("many"));
    if (listed < sizes.listed) {
      throw new Error(`${system.name} listed ${listed} of ${sizes.listed}`);
    }
    sample(
      `(e) list ${sizes.listed} files`,
      seconds,
      sizes.listed,
      "files/s",
      await peakRss(s.serverPid),
    );
  });
  // (g) a one-shot listing, start to exit: what a script pays per command.
  await session(["list"], async (s, root) => {
    await Deno.writeFile(join(root, "one.txt"), new Uint8Array(1));
    const { seconds } = await measure(s, () => s.list!(""));
    sample("(g) one-shot list, start to exit", seconds, 1, "ms", await peakRss(s.serverPid));
  });

  // (h) many small files when every request and reply waits a round trip.
  await manyFiles(
    `(h) ${sizes.rttCount} x 4 KiB, ${RTT_LINK_DELAY_MS} ms each way`,
    join(base, "rtt"),
    smallNames(sizes.rttCount),
    { linkDelayMs: RTT_LINK_DELAY_MS },
  );
  return samples;
}

function smallNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `s${String(i).padStart(5, "0")}.bin`);
}

async function verify(expected: string, actual: string): Promise<void> {
  if (await sha256(expected) !== await sha256(actual)) {
    throw new Error(`${actual} differs from ${expected}`);
  }
}

async function verifyAll(expectedDir: string, actualDir: string, names: string[]): Promise<void> {
  for (const name of names) await verify(join(expectedDir, name), join(actualDir, name));
}

/** (f): the fts server's peak memory while one huge file streams in and out. */
async function measureHuge(base: string, sizes: Sizes, storage: string): Promise<Sample> {
  const root = join(base, "root-huge");
  const work = join(base, "work-huge");
  await Deno.mkdir(root, { recursive: true });
  await Deno.mkdir(work, { recursive: true });
  const source = join(base, "huge.bin");
  await writeRandom(source, sizes.huge);
  const s = await FTS.start(root, work);
  try {
    await run("sync", []);
    const seconds = await timed(() => s.upload!(source, "huge.bin"));
    await verify(source, join(root, "huge.bin"));
    await Deno.remove(source);
    await s.download!("huge.bin", source);
    await verify(join(root, "huge.bin"), source);
    return {
      system: FTS.name,
      isFts: true,
      workload: "f",
      row: `(f) ${sizes.huge / 2 ** 20} MiB file, upload+download`,
      storage,
      round: 1,
      seconds,
      amount: sizes.huge,
      unit: "MB/s",
      rssBytes: await peakRss(s.serverPid),
      cpu: {},
    };
  } finally {
    await s.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.remove(source).catch(() => {});
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      quick: { type: "boolean" },
      rounds: { type: "string" },
      storage: { type: "string", default: "both" },
      systems: { type: "string" },
    },
  });
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const storages = values.storage === "both" ? ["tmpfs", "disk"] : [values.storage!];
  const available: BenchSystem[] = [];
  const unavailable: string[] = [];
  const wanted = values.systems?.split(",");
  const anyWanted = (s: BenchSystem) =>
    wanted?.includes(s.name) ??
      (storages.includes("glusterfs") && GLUSTERFS_SYSTEMS.includes(s.name) ||
        storages.some((storage) => storage !== "glusterfs") && s !== FTS_TWO && s !== CP);
  for (const system of SYSTEMS.filter(anyWanted)) {
    const reason = await system.unavailable();
    if (reason) {
      unavailable.push(`${system.name}: ${reason}`);
      console.error(`bench: skipping ${system.name}: ${reason}`);
    } else available.push(system);
  }
  const samples: Sample[] = [];
  const failures: string[] = [];
  for (const storage of storages) {
    // Unless --systems names them, fts-two and cp run on GlusterFS only, and there only the
    // systems of GLUSTERFS_SYSTEMS.
    const systems = available.filter((s) =>
      wanted !== undefined ||
      (storage === "glusterfs" ? GLUSTERFS_SYSTEMS.includes(s.name) : s !== FTS_TWO && s !== CP)
    );
    const sizes: Sizes = {
      ...(values.quick ? SIZES.quick : SIZES.full),
      ...(storage === "glusterfs" && !values.quick ? GLUSTERFS_SIZES : {}),
    };
    let prepared: PreparedStorage;
    try {
      prepared = await prepareStorage(storage);
    } catch (err) {
      console.error(`bench: skipping the ${storage} storage: ${(err as Error).message}`);
      continue;
    }
    const base = join(prepared.dir, `run-${Deno.pid}`);
    const roots: RootPlace = prepared.volume
      ? {
        first: join(prepared.volume.mountA, `run-${Deno.pid}`),
        second: join(prepared.volume.mountB, `run-${Deno.pid}`),
      }
      : { first: base, second: base };
    try {
      for (const dir of ["small", "rtt", "clients"]) {
        await Deno.mkdir(join(base, dir), { recursive: true });
      }
      console.error(`bench: preparing ${storage} files`);
      await writeRandom(join(base, "big.bin"), sizes.big);
      for (const name of smallNames(sizes.smallCount)) {
        await writeRandom(join(base, "small", name), sizes.small);
      }
      for (const name of smallNames(sizes.rttCount)) {
        await writeRandom(join(base, "rtt", name), sizes.small);
      }
      for (let i = 0; i < sizes.clients; i++) {
        await writeRandom(join(base, "clients", `client-${i}.bin`), sizes.clientBytes);
      }
      await writeRandom(join(base, "connection.bin"), sizes.connectionBytes);
      for (let round = 1; round <= rounds; round++) {
        // Each round starts with a different system, so no system always runs on a cold cache.
        const order = systems.map((_, i) => systems[(i + round - 1) % systems.length]!);
        for (const system of order) {
          console.error(`bench: ${storage} round ${round}/${rounds}: ${system.name}`);
          try {
            const measured = await measureSystem(system, storage, base, roots, sizes, round);
            samples.push(...measured);
            for (const s of measured) console.error(`bench: ${JSON.stringify(s)}`);
          } catch (err) {
            // One peer's failure in one round costs that round's numbers, not the whole run.
            failures.push(`${system.name} (${storage}, round ${round}): ${(err as Error).message}`);
            console.error(`bench: FAILED ${failures.at(-1)}`);
          }
        }
      }
      if (
        (storage === "disk" || values.quick && storage !== "glusterfs") && systems.includes(FTS)
      ) {
        samples.push(await measureHuge(base, sizes, storage));
      }
    } finally {
      await Deno.remove(base, { recursive: true }).catch(() => {});
      // The volume goes with the run, its mounts and processes too (the roots on it with it).
      await prepared.volume?.[Symbol.asyncDispose]();
      // The tmpfs this run mounted goes with it: 12 GiB of memory is not to be left holding.
      if (prepared.mounted) await run("umount", [TMPFS_DIR]).catch(() => {});
      // So does the storage's directory, unless another run is using it (not empty, or mounted).
      await Deno.remove(prepared.dir).catch(() => {});
    }
  }
  const cores = navigator.hardwareConcurrency;
  console.log(
    `fts bench ${values.quick ? "(quick) " : ""}${
      new Date().toISOString().slice(0, 10)
    }, ${cores} cores, ${rounds} round(s); every file verified by SHA-256`,
  );
  console.log(table(samples));
  for (const line of targetLines(samples, values.quick === true)) console.log(line);
  for (const reason of unavailable) console.log(`unavailable: ${reason}`);
  for (const failure of failures) console.log(`failed: ${failure}`);
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
