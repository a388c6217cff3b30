/**
 * The benchmark's report: one table row per system, workload and storage
 * (medians over the rounds, and the median of each round's ratio to the
 * fastest peer), then how fts stands against the targets that have a number.
 *
 * @module
 */

/** (d)'s aggregate rate, as a share of fts's own (c), that the target asks for at least. */
export const CONNECTIONS_TO_CLIENTS_TARGET = 0.8;
/** The fts server's peak RSS in (d), 1000 connections at once, at most (MiB). */
export const CONNECTIONS_RSS_TARGET_MIB = 150;
/** The fts server's peak RSS in (f), one 4 GiB file streamed, at most (MiB). */
export const HUGE_RSS_TARGET_MIB = 100;

/** What an operation cost in CPU, as the table shows it; absent figures were not measured. */
export interface SampleCpu {
  /** CPU seconds of client and server together, per GiB moved. */
  perGiB?: number;
  /** The busiest single server thread's CPU seconds per GiB. */
  busiestServerThreadPerGiB?: number;
  /** The busiest single client thread's CPU seconds per GiB. */
  busiestClientThreadPerGiB?: number;
  /** Server CPU seconds over wall seconds. */
  serverCores?: number;
  /** Which threads were the busiest, for the log: "server: deno/tokio-runtime-w, client: …". */
  busiestThreads?: string;
}

/** One measurement. */
export interface Sample {
  /** The system's name, as in `--systems`. */
  system: string;
  /** Whether the system is fts itself; ratios compare with the fastest system that is not. */
  isFts: boolean;
  /** The workload's letter: "a" for (a) and so on. */
  workload: string;
  /** The row's label, such as "(a) 1 file, upload". */
  row: string;
  /** "tmpfs" or "disk". */
  storage: string;
  /** The round it was measured in, from 1. */
  round: number;
  /** Wall-clock seconds the operation took. */
  seconds: number;
  /** Bytes or files moved, for the rate. */
  amount: number;
  /** A rate, or "ms" for a latency (lower is better). */
  unit: "MB/s" | "files/s" | "ms";
  /** The server's peak resident memory (VmHWM: every thread of its process), or null. */
  rssBytes: number | null;
  /** The CPU figures measured for the row, if any. */
  cpu: SampleCpu;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Speed, for ratios: for a latency row, the inverse of the time. */
function speed(s: Sample): number {
  return s.unit === "MB/s" ? s.amount / 1e6 / s.seconds : s.amount / s.seconds;
}

/** The figure the rate column shows. */
function rate(s: Sample): number {
  return s.unit === "ms" ? s.seconds * 1000 : speed(s);
}

/** The median of one CPU figure over samples, formatted, or "-" where none was measured. */
function medianOf(
  samples: Sample[],
  figure: Exclude<keyof SampleCpu, "busiestThreads">,
): string {
  const values = samples.map((s) => s.cpu[figure]).filter((v): v is number => v !== undefined);
  return values.length ? median(values).toFixed(2) : "-";
}

/**
 * Each round's ratio of this system's speed to the fastest peer's in that
 * round (the fastest of all when no peer ran the row), and their median.
 */
function ratioToFastestPeer(rowSamples: Sample[], system: string): number {
  const rounds = [...new Set(rowSamples.map((s) => s.round))];
  const ratios = rounds.flatMap((round) => {
    const inRound = rowSamples.filter((s) => s.round === round);
    const own = inRound.find((s) => s.system === system);
    const peers = inRound.filter((s) => !s.isFts);
    const compared = peers.length ? peers : inRound;
    return own ? [speed(own) / Math.max(...compared.map(speed))] : [];
  });
  return median(ratios);
}

/** A Markdown table cell's text: a `|` in it (as in `tar|socat`) would end the cell. */
function tableCell(text: string): string {
  return text.replaceAll("|", "\\|");
}

/** The table: one row per system, workload and storage. */
export function table(samples: Sample[]): string {
  // Storages in the order measured; within one, workloads by letter, rows in the order measured.
  const storages = [...new Set(samples.map((s) => s.storage))];
  const ordered = samples.map((s, i) => ({ s, i })).sort((x, y) =>
    storages.indexOf(x.s.storage) - storages.indexOf(y.s.storage) ||
    x.s.workload.localeCompare(y.s.workload) || x.i - y.i
  );
  const keys = [...new Set(ordered.map(({ s }) => `${s.storage}\u0000${s.row}`))];
  const lines = [
    "| system | workload | storage | median s | rate | ratio to fastest peer | CPU s/GiB " +
    "| busiest thread s/GiB (server, client) | server cores | peak server RSS | verified |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const key of keys) {
    const [storage, row] = key.split("\u0000") as [string, string];
    const rowSamples = samples.filter((s) => s.storage === storage && s.row === row);
    for (const system of [...new Set(rowSamples.map((s) => s.system))]) {
      const mine = rowSamples.filter((s) => s.system === system);
      const rss = mine.map((s) => s.rssBytes).filter((b): b is number => b !== null);
      const server = medianOf(mine, "busiestServerThreadPerGiB");
      const client = medianOf(mine, "busiestClientThreadPerGiB");
      lines.push(
        `| ${tableCell(system)} | ${row} | ${storage} | ${
          median(mine.map((s) => s.seconds)).toFixed(3)
        } | ` +
          `${median(mine.map(rate)).toFixed(1)} ${mine[0]!.unit} | ` +
          `${ratioToFastestPeer(rowSamples, system).toFixed(2)}x | ${medianOf(mine, "perGiB")} | ` +
          `${server === "-" && client === "-" ? "-" : `${server}, ${client}`} | ` +
          `${medianOf(mine, "serverCores")} | ` +
          `${rss.length ? `${(Math.max(...rss) / 2 ** 20).toFixed(0)} MiB` : "-"} | yes |`,
      );
    }
  }
  return lines.join("\n");
}

function verdict(met: boolean): string {
  return met ? "met" : "NOT met";
}

/**
 * fts (at its defaults) against the targets with a number, per storage: (d)'s
 * aggregate against its own (c) (the median of per-round ratios) and (d)'s
 * peak server RSS; (f)'s peak server RSS. The targets are set for the full
 * sizes; a quick run's lines say so.
 */
export function targetLines(samples: Sample[], quick: boolean): string[] {
  const fts = samples.filter((s) => s.system === "fts");
  const lines: string[] = [];
  const mib = (bytes: number) => bytes / 2 ** 20;
  for (const storage of [...new Set(fts.map((s) => s.storage))]) {
    const of = (workload: string) =>
      fts.filter((s) => s.storage === storage && s.workload === workload);
    const connections = of("d");
    const clients = of("c");
    const ratios = connections.flatMap((d) => {
      const c = clients.find((s) => s.round === d.round);
      return c ? [speed(d) / speed(c)] : [];
    });
    if (ratios.length) {
      const ratio = median(ratios);
      lines.push(
        `(d) ${storage}: aggregate ${ratio.toFixed(2)}x of fts's own (c) (target >= ` +
          `${CONNECTIONS_TO_CLIENTS_TARGET}x): ${verdict(ratio >= CONNECTIONS_TO_CLIENTS_TARGET)}`,
      );
    }
    const peak = (rows: Sample[]) =>
      Math.max(...rows.map((s) => s.rssBytes).filter((b): b is number => b !== null));
    if (connections.some((s) => s.rssBytes !== null)) {
      const rss = mib(peak(connections));
      lines.push(
        `(d) ${storage}: server peak RSS ${rss.toFixed(0)} MiB (target <= ` +
          `${CONNECTIONS_RSS_TARGET_MIB} MiB): ${verdict(rss <= CONNECTIONS_RSS_TARGET_MIB)}`,
      );
    }
    const huge = of("f");
    if (huge.some((s) => s.rssBytes !== null)) {
      const rss = mib(peak(huge));
      lines.push(
        `(f) ${storage}: server peak RSS ${rss.toFixed(0)} MiB (target <= ` +
          `${HUGE_RSS_TARGET_MIB} MiB): ${verdict(rss <= HUGE_RSS_TARGET_MIB)}`,
      );
    }
  }
  if (quick && lines.length) lines.push("(targets are set for the full sizes, not --quick's)");
  return lines;
}
