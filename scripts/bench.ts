/**
 * `deno task bench`: fts side by side with raw TCP (socat), OpenSSH scp and
 * sftp, and an rsync daemon, on loopback, on a tmpfs and on the disk. The
 * systems take turns round after round (A B C A B C …) and the table reports
 * medians and the median of per-round ratios, because this machine's disk is
 * shared and noisy. Every transferred file is verified by SHA-256.
 *
 * Usage: deno task bench [--quick] [--rounds N] [--storage tmpfs|disk|both]
 *        [--systems fts,socat,rsync,scp,sftp]
 *
 * @module
 */

import { createHash } from "node:crypto";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type BenchSystem, FTS, run, type RunningSystem, SYSTEMS } from "./bench_systems.ts";

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
  },
};
type Sizes = typeof SIZES.full;

/** Where the tmpfs storage is mounted: Deno refuses /dev paths to sandboxed code, so not /dev/shm. */
const TMPFS_DIR = "/tmp/fts-bench-tmpfs";
const DISK_DIR = "/var/tmp/fts-bench-disk";

/** One measurement. */
interface Sample {
  system: string;
  row: string;
  storage: string;
  round: number;
  seconds: number;
  /** Bytes or files moved, for the rate. */
  amount: number;
  /** A rate, or "ms" for a latency (lower is better). */
  unit: "MB/s" | "files/s" | "ms";
  rssBytes: number | null;
}

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

/** Peak resident memory of a process (VmHWM), or null. */
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

/**
 * Makes the storage's directory, mounting a tmpfs when asked; `mounted` says
 * whether this run mounted it (and so unmounts it when done).
 */
async function prepareStorage(storage: string): Promise<{ dir: string; mounted: boolean }> {
  const dir = storage === "tmpfs" ? TMPFS_DIR : DISK_DIR;
  await Deno.mkdir(dir, { recursive: true });
  if (storage !== "tmpfs") return { dir, mounted: false };
  if ((await Deno.readTextFile("/proc/mounts")).includes(` ${dir} tmpfs `)) {
    return { dir, mounted: false };
  }
  await run("mount", ["-t", "tmpfs", "-o", "size=12g", "tmpfs", dir]);
  return { dir, mounted: true };
}

/** Everything one system does in one round of one storage; returns its samples. */
async function measureSystem(
  system: BenchSystem,
  storage: string,
  base: string,
  sizes: Sizes,
  round: number,
): Promise<Sample[]> {
  const samples: Sample[] = [];
  const sample = (
    row: string,
    seconds: number,
    amount: number,
    unit: Sample["unit"],
    rss: number | null,
  ) =>
    samples.push({
      system: system.name,
      row,
      storage,
      round,
      seconds,
      amount,
      unit,
      rssBytes: rss,
    });
  const sync = storage === "disk" && system !== FTS
    ? (paths: string[]) => run("sync", paths) // fts acknowledges only after fsync; time peers to durability too.
    : () => Promise.resolve("");
  // On the disk every measurement starts with nothing left to write back from
  // the one before (an untimed sync), so that no system pays for another's data.
  const measure = async (operation: () => Promise<unknown>) => {
    if (storage === "disk") await run("sync", []);
    return await timed(operation);
  };

  const session = async (body: (s: RunningSystem, root: string) => Promise<void>) => {
    const root = join(base, `root-${system.name}`);
    const work = join(base, `work-${system.name}`);
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.mkdir(root, { recursive: true });
    await Deno.mkdir(work, { recursive: true });
    const running = await system.start(root, work);
    try {
      await body(running, root);
    } finally {
      await running.stop();
      await Deno.remove(root, { recursive: true }).catch(() => {});
      await Deno.remove(join(base, "out"), { recursive: true }).catch(() => {});
    }
  };
  const out = join(base, "out");

  // (a) one big file, upload then download.
  await session(async (s, root) => {
    const source = join(base, "big.bin");
    const up = await measure(async () => {
      await s.upload(source, "big.bin");
      await sync([join(root, "big.bin")]);
    });
    await verify(source, join(root, "big.bin"));
    await Deno.mkdir(out, { recursive: true });
    const down = await measure(() => s.download("big.bin", join(out, "big.bin")));
    await verify(source, join(out, "big.bin"));
    const rss = await peakRss(s.serverPid);
    sample("(a) 1 file, upload", up, sizes.big, "MB/s", rss);
    sample("(a) 1 file, download", down, sizes.big, "MB/s", rss);
  });

  // (b) many small files in one session.
  await session(async (s, root) => {
    const names = smallNames(sizes);
    const up = await measure(async () => {
      await s.uploadMany(join(base, "small"), names, "small");
      await sync(names.map((n) => join(root, "small", n)));
    });
    await verifyAll(join(base, "small"), join(root, "small"), names);
    await Deno.mkdir(out, { recursive: true });
    const down = await measure(() => s.downloadMany("small", names, join(out, "small")));
    await verifyAll(join(base, "small"), join(out, "small"), names);
    const rss = await peakRss(s.serverPid);
    sample(`(b) ${names.length} small files, upload`, up, names.length, "files/s", rss);
    sample(`(b) ${names.length} small files, download`, down, names.length, "files/s", rss);
  });

  // (c) several clients at once, each uploading its own file.
  await session(async (s, root) => {
    const names = Array.from({ length: sizes.clients }, (_, i) => `client-${i}.bin`);
    const seconds = await measure(async () => {
      await Promise.all(names.map((n) => s.upload(join(base, "clients", n), n)));
      await sync(names.map((n) => join(root, n)));
    });
    await verifyAll(join(base, "clients"), root, names);
    sample(
      `(c) ${sizes.clients} clients, upload`,
      seconds,
      sizes.clients * sizes.clientBytes,
      "MB/s",
      await peakRss(s.serverPid),
    );
  });

  // (d) many connections at once, each uploading a small file (fts only: see README).
  if (system === FTS) {
    await session(async (s, root) => {
      const locals = Array.from({ length: sizes.connections }, () => join(base, "connection.bin"));
      await Deno.mkdir(join(root, "conns"));
      const seconds = await measure(() => s.manyConnections!(locals, "conns"));
      const expected = await sha256(join(base, "connection.bin"));
      for (let i = 0; i < sizes.connections; i++) {
        if (await sha256(join(root, "conns", `${i}.bin`)) !== expected) {
          throw new Error(`(d) file ${i} differs`);
        }
      }
      sample(
        `(d) ${sizes.connections} connections, upload`,
        seconds,
        sizes.connections * sizes.connectionBytes,
        "MB/s",
        await peakRss(s.serverPid),
      );
    });
  }

  // (e) listing a large directory.
  if (system.name !== "socat" && system.name !== "scp") {
    await session(async (s, root) => {
      await Deno.mkdir(join(root, "many"));
      for (let i = 0; i < sizes.listed; i++) {
        await Deno.writeFile(join(root, "many", `f${i}`), new Uint8Array(0));
      }
      let listed = 0;
      const seconds = await measure(async () => listed = await s.list("many"));
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
  }
  // (g) a one-shot listing, start to exit: what a script pays per command.
  if (system.name !== "socat" && system.name !== "scp") {
    await session(async (s, root) => {
      await Deno.writeFile(join(root, "one.txt"), new Uint8Array(1));
      const seconds = await measure(() => s.list(""));
      sample("(g) one-shot list, start to exit", seconds, 1, "ms", await peakRss(s.serverPid));
    });
  }
  return samples;
}

function smallNames(sizes: Sizes): string[] {
  return Array.from({ length: sizes.smallCount }, (_, i) => `s${String(i).padStart(5, "0")}.bin`);
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
    const seconds = await timed(() => s.upload(source, "huge.bin"));
    await verify(source, join(root, "huge.bin"));
    await Deno.remove(source);
    await s.download("huge.bin", source);
    await verify(join(root, "huge.bin"), source);
    return {
      system: "fts",
      row: `(f) ${sizes.huge / 2 ** 20} MiB file, upload+download`,
      storage,
      round: 1,
      seconds,
      amount: sizes.huge,
      unit: "MB/s",
      rssBytes: await peakRss(s.serverPid),
    };
  } finally {
    await s.stop();
    await Deno.remove(root, { recursive: true }).catch(() => {});
    await Deno.remove(source).catch(() => {});
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** The table: one row per system, workload and storage. */
function table(samples: Sample[]): string {
  const keys = [...new Set(samples.map((s) => `${s.storage}\u0000${s.row}`))];
  const lines = [
    "| system | workload | storage | median s | rate | ratio to fastest | peak server RSS | verified |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const key of keys) {
    const [storage, row] = key.split("\u0000") as [string, string];
    const rowSamples = samples.filter((s) => s.storage === storage && s.row === row);
    const rounds = [...new Set(rowSamples.map((s) => s.round))];
    // Ratios compare speeds: for a latency row, the inverse of the time.
    const speed = (s: Sample) =>
      s.unit === "MB/s" ? s.amount / 1e6 / s.seconds : s.amount / s.seconds;
    const rate = (s: Sample) => s.unit === "ms" ? s.seconds * 1000 : speed(s);
    for (const system of [...new Set(rowSamples.map((s) => s.system))]) {
      const mine = rowSamples.filter((s) => s.system === system);
      const ratios = rounds.flatMap((round) => {
        const inRound = rowSamples.filter((s) => s.round === round);
        const own = inRound.find((s) => s.system === system);
        return own ? [speed(own) / Math.max(...inRound.map(speed))] : [];
      });
      const rss = mine.map((s) => s.rssBytes).filter((b): b is number => b !== null);
      lines.push(
        `| ${system} | ${row} | ${storage} | ${median(mine.map((s) => s.seconds)).toFixed(3)} | ` +
          `${median(mine.map(rate)).toFixed(1)} ${mine[0]!.unit} | ${
            median(ratios).toFixed(2)
          }x | ` +
          `${rss.length ? `${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB` : "-"} | yes |`,
      );
    }
  }
  return lines.join("\n");
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
  const sizes = values.quick ? SIZES.quick : SIZES.full;
  const rounds = Number(values.rounds ?? (values.quick ? 1 : 3));
  const storages = values.storage === "both" ? ["tmpfs", "disk"] : [values.storage!];
  const systems: BenchSystem[] = [];
  const wanted = values.systems?.split(",");
  for (const system of SYSTEMS.filter((s) => wanted === undefined || wanted.includes(s.name))) {
    const reason = await system.unavailable();
    if (reason) console.error(`bench: skipping ${system.name}: ${reason}`);
    else systems.push(system);
  }
  const samples: Sample[] = [];
  const failures: string[] = [];
  for (const storage of storages) {
    let base: string;
    let mounted = false;
    try {
      const prepared = await prepareStorage(storage);
      mounted = prepared.mounted;
      base = join(prepared.dir, `run-${Deno.pid}`);
    } catch (err) {
      console.error(`bench: skipping the ${storage} storage: ${(err as Error).message}`);
      continue;
    }
    await Deno.mkdir(join(base, "small"), { recursive: true });
    await Deno.mkdir(join(base, "clients"), { recursive: true });
    try {
      console.error(`bench: preparing ${storage} files`);
      await writeRandom(join(base, "big.bin"), sizes.big);
      for (const name of smallNames(sizes)) {
        await writeRandom(join(base, "small", name), sizes.small);
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
            const measured = await measureSystem(system, storage, base, sizes, round);
            samples.push(...measured);
            for (const s of measured) console.error(`bench: ${JSON.stringify(s)}`);
          } catch (err) {
            // One peer's failure in one round costs that round's numbers, not the whole run.
            failures.push(`${system.name} (${storage}, round ${round}): ${(err as Error).message}`);
            console.error(`bench: FAILED ${failures.at(-1)}`);
          }
        }
      }
      if (storage === "disk" || values.quick) samples.push(await measureHuge(base, sizes, storage));
    } finally {
      await Deno.remove(base, { recursive: true }).catch(() => {});
      // The tmpfs this run mounted goes with it: 12 GiB of memory is not to be left holding.
      if (mounted) await run("umount", [TMPFS_DIR]).catch(() => {});
    }
  }
  const cores = navigator.hardwareConcurrency;
  console.log(
    `fts bench ${values.quick ? "(quick) " : ""}${
      new Date().toISOString().slice(0, 10)
    }, ${cores} cores, ${rounds} round(s); every file verified by SHA-256`,
  );
  console.log(table(samples));
  for (const failure of failures) console.log(`failed: ${failure}`);
  return failures.length === 0 ? 0 : 1;
}

if (import.meta.main) Deno.exit(await main());
