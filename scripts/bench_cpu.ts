/**
 * CPU time an operation costs, per process and per thread, read from /proc
 * (Linux): the server's process tree and the processes the bench starts for
 * it (its clients).
 *
 * Totals are exact, from counters the kernel keeps even for processes and
 * threads that are gone: a process's /proc/PID/stat utime and stime (fields
 * 14 and 15) sum all its threads, the ones that have exited included, and
 * cutime and cstime (fields 16 and 17) are those of its children it has
 * waited for (and theirs in turn). So the server's share is the change in its
 * root's four fields plus what its descendants still alive at the end spent
 * meanwhile (an rsync daemon or sshd forks per connection and reaps the
 * child), and the clients' share is the change in this process's own cutime
 * and cstime: every client is a child of the bench, waited for before the
 * operation returns.
 *
 * Threads are sampled, every {@link CPU_SAMPLE_INTERVAL_MS} ms while the
 * operation runs, keeping each thread's last value (/proc/PID/task/TID/stat
 * fields 14 and 15), because a client's threads vanish with it. What that can
 * miss: a thread's CPU after its last sample, up to one interval (20 ms of
 * one core) per thread, and threads that live less than an interval. For a
 * server thread alive at the end nothing is missed (it is read once more).
 * Counters move in clock ticks (`getconf CLK_TCK`, 100 a second here), so
 * any one figure is good to about 10 ms. Sampling costs the bench about 3 %
 * of one core (measured here: 0.13 s of CPU in 4 s beside an idle client),
 * half of it the 20 ms timer's wake-ups; the files stay open between samples
 * and new processes are looked for only every {@link CPU_DISCOVER_EVERY}
 * samples, which keeps the reads themselves cheap.
 *
 * @module
 */

/** How often the threads of the measured processes are read while an operation runs. */
export const CPU_SAMPLE_INTERVAL_MS = 20;

/**
 * Every this many samples (and while no client is known) the sampler looks
 * for new processes; in between it reads only the threads of those it knows.
 */
const CPU_DISCOVER_EVERY = 5;

/** How long, at most, to wait after an operation for a server's per-connection children to end. */
const SETTLE_TIMEOUT_MS = 2000;

/** One thread's CPU during the operation. */
export interface ThreadCpu {
  /** The thread's id. */
  tid: number;
  /** The thread's name (comm), such as `tokio-runtime-w`. */
  name: string;
  /** User plus system CPU seconds. */
  seconds: number;
}

/** One process's CPU during the operation, with its threads as sampled. */
export interface ProcessCpu {
  /** The process's id. */
  pid: number;
  /** The process's name (comm), such as `deno` or `rsync`. */
  command: string;
  /** User plus system CPU seconds of all its threads, as last seen. */
  seconds: number;
  /** Its threads, the busiest first. */
  threads: ThreadCpu[];
}

/** What an operation cost in CPU. */
export interface CpuUse {
  /** Wall-clock seconds the operation took. */
  wallSeconds: number;
  /** CPU seconds of the server's process tree (exact); 0 without a server process. */
  serverSeconds: number;
  /** CPU seconds of the processes the bench started and waited for meanwhile (exact). */
  clientSeconds: number;
  /** The server's processes, per thread. */
  server: ProcessCpu[];
  /** The client processes as sampled (each thread's last value). */
  clients: ProcessCpu[];
}

/** Options of {@link measureCpu}. */
export interface MeasureCpuOptions {
  /** The server's process, whose tree is measured; null when there is none. */
  serverPid: number | null;
  /**
   * Sample threads while the operation runs (needed for per-thread figures of
   * clients); without it only the totals and the server's threads are taken.
   * @default true
   */
  sampleThreads?: boolean;
}

/** A process's cumulative counters, in clock ticks. */
interface ProcessStat {
  /** utime + stime: its own threads, living and exited. */
  ownTicks: number;
  /** cutime + cstime: its waited-for children. */
  childTicks: number;
}

let ticksPerSecond: number | undefined;

/** Clock ticks a second (`getconf CLK_TCK`), read once. */
async function clockTicks(): Promise<number> {
  if (ticksPerSecond === undefined) {
    const output = await new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" })
      .output();
    const ticks = Number(new TextDecoder().decode(output.stdout).trim());
    ticksPerSecond = output.success && ticks > 0 ? ticks : 100;
  }
  return ticksPerSecond;
}

/**
 * /proc files kept open and read again from the start: a read from offset 0
 * of an open /proc file gives its contents as they are now, at a fifth of the
 * cost of opening it again (8 against 40 µs, measured here).
 */
class ProcFiles {
  #open = new Map<string, Deno.FsFile>();
  #buffer = new Uint8Array(16 << 10);
  #decoder = new TextDecoder();

  /** The file's contents now, or null once its process or thread has ended. */
  read(path: string): string | null {
    let file = this.#open.get(path);
    try {
      if (file === undefined) {
        file = Deno.openSync(path);
        this.#open.set(path, file);
      } else file.seekSync(0, Deno.SeekMode.Start);
      const count = file.readSync(this.#buffer) ?? 0;
      return this.#decoder.decode(this.#buffer.subarray(0, count));
    } catch {
      this.#forget(path);
      return null;
    }
  }

  /** Closes every file kept open. */
  close(): void {
    for (const path of [...this.#open.keys()]) this.#forget(path);
  }

  #forget(path: string): void {
    try {
      this.#open.get(path)?.close();
    } catch {
      // Already closed.
    }
    this.#open.delete(path);
  }
}

/** The fields after the command name of a stat line (the name may hold spaces and parentheses). */
function statFields(text: string): { name: string; fields: string[] } {
  const open = text.indexOf("(");
  const close = text.lastIndexOf(")");
  return {
    name: text.slice(open + 1, close),
    fields: text.slice(close + 2).trim().split(" "),
  };
}

// Indexes into statFields' fields: field N of proc(5) is fields[N - 3].
const UTIME = 14 - 3;
const STIME = 15 - 3;
const CUTIME = 16 - 3;
const CSTIME = 17 - 3;

function processStat(files: ProcFiles, pid: number): ProcessStat | null {
  const text = files.read(`/proc/${pid}/stat`);
  if (text === null) return null;
  const { fields } = statFields(text);
  return {
    ownTicks: Number(fields[UTIME]) + Number(fields[STIME]),
    childTicks: Number(fields[CUTIME]) + Number(fields[CSTIME]),
  };
}

function taskIds(pid: number): number[] {
  try {
    return [...Deno.readDirSync(`/proc/${pid}/task`)].map((entry) => Number(entry.name));
  } catch {
    return [];
  }
}

/** A process's threads (`tids`, or all it has now): tid → [name, utime + stime ticks]. */
function threadTicks(
  files: ProcFiles,
  pid: number,
  tids: number[] = taskIds(pid),
): Map<number, [string, number]> {
  const threads = new Map<number, [string, number]>();
  for (const tid of tids) {
    const text = files.read(`/proc/${pid}/task/${tid}/stat`);
    if (text === null) continue;
    const { name, fields } = statFields(text);
    threads.set(tid, [name, Number(fields[UTIME]) + Number(fields[STIME])]);
  }
  return threads;
}

/** The children of a process, from every one of its threads' children lists. */
function childrenOf(files: ProcFiles, pid: number): number[] {
  const children: number[] = [];
  for (const tid of taskIds(pid)) {
    const text = files.read(`/proc/${pid}/task/${tid}/children`) ?? "";
    for (const word of text.trim().split(/\s+/)) if (word) children.push(Number(word));
  }
  return children;
}

/** A process and all its descendants (bounded by the number of processes there can be). */
function tree(files: ProcFiles, root: number): number[] {
  const found = [root];
  for (let i = 0; i < found.length && found.length < 100_000; i++) {
    for (const child of childrenOf(files, found[i]!)) if (!found.includes(child)) found.push(child);
  }
  return found;
}

/** Each thread's last value seen, per process: pid → { command, tid → [name, ticks] }. */
type ThreadRecord = Map<number, { command: string; threads: Map<number, [string, number]> }>;

/**
 * Records the threads of `pids` as they are now (only those in `known`
 * for a process listed there); false if none of the processes is alive.
 */
function record(
  files: ProcFiles,
  into: ThreadRecord,
  pids: number[],
  known?: Map<number, number[]>,
): boolean {
  let alive = false;
  for (const pid of pids) {
    const threads = threadTicks(files, pid, known?.get(pid));
    if (threads.size === 0) continue;
    alive = true;
    const entry = into.get(pid) ??
      { command: files.read(`/proc/${pid}/comm`)?.trim() ?? "?", threads: new Map() };
    for (const [tid, value] of threads) entry.threads.set(tid, value);
    into.set(pid, entry);
  }
  return alive;
}

/** Per-process, per-thread seconds: the record's values less the baseline's. */
function perProcess(seen: ThreadRecord, baseline: ThreadRecord, ticks: number): ProcessCpu[] {
  return [...seen].map(([pid, { command, threads }]) => {
    const before = baseline.get(pid)?.threads;
    const list = [...threads].map(([tid, [name, value]]) => ({
      tid,
      name,
      seconds: (value - (before?.get(tid)?.[1] ?? 0)) / ticks,
    }));
    return {
      pid,
      command,
      seconds: list.reduce((sum, t) => sum + t.seconds, 0),
      threads: list.sort((a, b) => b.seconds - a.seconds),
    };
  });
}

/** The server tree's cumulative ticks: the root's own and reaped children's, and every living descendant's. */
function treeTicks(files: ProcFiles, pids: number[]): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const pid of pids) {
    const stat = processStat(files, pid);
    if (stat) ticks.set(pid, stat.ownTicks + stat.childTicks);
  }
  return ticks;
}

/**
 * Runs `operation` and returns its result with the CPU it cost: the server
 * tree's and the clients' totals (exact) and their threads (sampled; see the
 * module's notes for what sampling can miss).
 *
 * @example
 * ```ts ignore
 * const { cpu } = await measureCpu(() => client.upload(file), { serverPid: server.pid });
 * console.log(cpu.serverSeconds + cpu.clientSeconds);
 * ```
 */
export async function measureCpu<T>(
  operation: () => Promise<T>,
  options: MeasureCpuOptions,
): Promise<{ result: T; cpu: CpuUse }> {
  const ticks = await clockTicks();
  const { serverPid } = options;
  const files = new ProcFiles();
  try {
    const serverBefore = serverPid === null ? [] : tree(files, serverPid);
    const serverTicksBefore = treeTicks(files, serverBefore);
    const serverThreadsBefore: ThreadRecord = new Map();
    record(files, serverThreadsBefore, serverBefore);
    const clientTicksBefore = processStat(files, Deno.pid)!.childTicks;

    const serverSeen: ThreadRecord = new Map();
    const clientsSeen: ThreadRecord = new Map();
    const clients = () =>
      childrenOf(files, Deno.pid).filter((pid) => pid !== serverPid)
        .flatMap((pid) => tree(files, pid));
    let running = true;
    const sampling = (async () => {
      let known = new Map<number, number[]>();
      for (let sample = 0; running && options.sampleThreads !== false; sample++) {
        // Finding processes and threads costs more reads than sampling them: look for new
        // ones only now and then, and while no client is known.
        if (sample % CPU_DISCOVER_EVERY === 0 || known.size === 0) {
          known = new Map(clients().map((pid) => [pid, taskIds(pid)]));
          if (serverPid !== null) record(files, serverSeen, tree(files, serverPid));
        }
        if (!record(files, clientsSeen, [...known.keys()], known)) known.clear();
        await new Promise((resolve) => setTimeout(resolve, CPU_SAMPLE_INTERVAL_MS));
      }
    })();

    const started = performance.now();
    let result: T;
    try {
      result = await operation();
    } finally {
      running = false;
      await sampling;
    }
    const wallSeconds = (performance.now() - started) / 1000;

    let serverSeconds = 0;
    if (serverPid !== null) {
      // A forking server's per-connection children end just after their client:
      // wait (bounded) until they are reaped, so that their CPU is in the root's cutime.
      const deadline = Date.now() + SETTLE_TIMEOUT_MS;
      while (
        tree(files, serverPid).some((pid) => !serverBefore.includes(pid)) && Date.now() < deadline
      ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const serverAfter = tree(files, serverPid);
      record(files, serverSeen, serverAfter);
      for (const [pid, after] of treeTicks(files, serverAfter)) {
        serverSeconds += (after - (serverTicksBefore.get(pid) ?? 0)) / ticks;
      }
    }
    const clientSeconds = (processStat(files, Deno.pid)!.childTicks - clientTicksBefore) / ticks;
    return {
      result: result!,
      cpu: {
        wallSeconds,
        serverSeconds,
        clientSeconds,
        server: perProcess(serverSeen, serverThreadsBefore, ticks),
        clients: perProcess(clientsSeen, new Map(), ticks),
      },
    };
  } finally {
    files.close();
  }
}

/** The busiest single thread among `processes` (with its process's name), or null if none ran. */
export function busiestThread(processes: ProcessCpu[]): (ThreadCpu & { command: string }) | null {
  let busiest: (ThreadCpu & { command: string }) | null = null;
  for (const process of processes) {
    for (const thread of process.threads) {
      if (busiest === null || thread.seconds > busiest.seconds) {
        busiest = { ...thread, command: process.command };
      }
    }
  }
  return busiest;
}
