import assert from "node:assert/strict";
import { type Sample, table, targetLines } from "../scripts/bench_report.ts";

function sample(fields: Partial<Sample> & Pick<Sample, "system" | "row" | "seconds">): Sample {
  return {
    isFts: fields.system.startsWith("fts"),
    workload: fields.row.slice(1, 2),
    storage: "tmpfs",
    round: 1,
    amount: 1e9,
    unit: "MB/s",
    rssBytes: null,
    cpu: {},
    ...fields,
  };
}

function line(report: string, system: string, row: string): string[] {
  const found = report.split("\n").find((l) => l.startsWith(`| ${system} | ${row} |`));
  assert.ok(found, `no row for ${system} ${row}:\n${report}`);
  return found.split("|").map((cell) => cell.trim()).slice(1, -1);
}

Deno.test("table() gives each round's ratio to the fastest peer, not to fts", () => {
  const row = "(a) 1 file, upload";
  const report = table([
    // fts is the fastest in round 1 and compared with socat there; round 2 is slower for all.
    sample({ system: "fts", row, seconds: 1, round: 1 }),
    sample({ system: "socat", row, seconds: 2, round: 1 }),
    sample({ system: "rsync", row, seconds: 4, round: 1 }),
    sample({ system: "fts", row, seconds: 3, round: 2 }),
    sample({ system: "socat", row, seconds: 2, round: 2 }),
    sample({ system: "rsync", row, seconds: 8, round: 2 }),
    sample({ system: "fts", row, seconds: 2, round: 3 }),
    sample({ system: "socat", row, seconds: 2, round: 3 }),
    sample({ system: "rsync", row, seconds: 4, round: 3 }),
  ]);
  // fts: 2/1, 2/3, 2/2 → median 1.00; socat always the fastest peer; rsync 0.5, 0.25, 0.5.
  assert.equal(line(report, "fts", row)[5], "1.00x");
  assert.equal(line(report, "socat", row)[5], "1.00x");
  assert.equal(line(report, "rsync", row)[5], "0.50x");
  assert.equal(line(report, "fts", row)[3], "2.000");
});

Deno.test("table() shows the CPU figures where measured and '-' elsewhere, verified last", () => {
  const report = table([
    sample({
      system: "fts",
      row: "(a) 1 file, upload",
      seconds: 1,
      cpu: { perGiB: 3.04, busiestServerThreadPerGiB: 1.1, busiestClientThreadPerGiB: 0.9 },
    }),
    sample({ system: "socat", row: "(a) 1 file, upload", seconds: 1, cpu: { perGiB: 0.9 } }),
    sample({ system: "fts", row: "(c) 16 clients, upload", seconds: 1, cpu: { serverCores: 1.4 } }),
  ]);
  const fts = line(report, "fts", "(a) 1 file, upload");
  assert.deepEqual(fts.slice(6), ["3.04", "1.10, 0.90", "-", "-", "yes"]);
  assert.deepEqual(line(report, "socat", "(a) 1 file, upload").slice(6, 9), ["0.90", "-", "-"]);
  assert.deepEqual(line(report, "fts", "(c) 16 clients, upload").slice(6, 9), ["-", "-", "1.40"]);
});

Deno.test("table() orders rows by workload within a storage, whoever ran them first", () => {
  const report = table([
    sample({ system: "scp", row: "(h) rtt, upload", seconds: 1 }),
    sample({ system: "sftp", row: "(e) list", seconds: 1, unit: "files/s" }),
    sample({ system: "sftp", row: "(h) rtt, upload", seconds: 1 }),
  ]);
  const rows = report.split("\n").slice(2).map((l) => l.split("|")[2]!.trim());
  assert.deepEqual(rows, ["(e) list", "(h) rtt, upload", "(h) rtt, upload"]);
});

Deno.test("targetLines() weighs (d) against fts's own (c) and the peak RSS against the targets", () => {
  const mib = 2 ** 20;
  const lines = targetLines([
    sample({ system: "fts", row: "(c) 16 clients, upload", seconds: 2, rssBytes: 100 * mib }),
    sample({
      system: "fts",
      row: "(d) 1000 connections, upload",
      seconds: 2.4,
      rssBytes: 151 * mib,
    }),
    sample({ system: "fts-sha256", row: "(d) 1000 connections, upload", seconds: 99 }),
    sample({ system: "fts", row: "(f) 4096 MiB file", seconds: 9, rssBytes: 77 * mib }),
  ], false);
  assert.deepEqual(lines, [
    "(d) tmpfs: aggregate 0.83x of fts's own (c) (target >= 0.8x): met",
    "(d) tmpfs: server peak RSS 151 MiB (target <= 150 MiB): NOT met",
    "(f) tmpfs: server peak RSS 77 MiB (target <= 100 MiB): met",
  ]);
});

Deno.test("table() keeps a system named with a pipe (tar|socat) in one cell", () => {
  const row = "(b) 1000 small files, upload";
  const report = table([
    sample({ system: "tar|socat", row, seconds: 1, unit: "files/s" }),
    sample({ system: "fts", row, seconds: 2, unit: "files/s" }),
  ]);
  const found = report.split("\n").find((l) => l.startsWith("| tar\\|socat |"));
  assert.ok(found, report);
  // Markdown ends a cell at every "|" not escaped.
  const cells = found.split(/(?<!\\)\|/).map((cell) => cell.trim()).slice(1, -1);
  assert.deepEqual(cells.slice(0, 3), ["tar\\|socat", row, "tmpfs"]);
  assert.equal(cells.length, 11, report);
});
