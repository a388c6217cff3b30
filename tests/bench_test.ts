import assert from "node:assert/strict";
import { join } from "node:path";
import { PROJECT_DIR } from "./_helpers.ts";

Deno.test("the benchmark's quick mode runs every fts workload and verifies every file", async () => {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      join(PROJECT_DIR, "scripts", "bench.ts"),
      "--quick",
      "--storage",
      "disk",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  const stderr = new TextDecoder().decode(output.stderr);
  assert.equal(output.code, 0, stderr);
  assert.match(stdout, /^fts bench \(quick\) \d{4}-\d\d-\d\d, \d+ cores/m);
  for (
    const row of [
      "(a) 1 file, upload",
      "(a) 1 file, download",
      "small files, upload",
      "small files, download",
      "clients, upload",
      "connections, upload",
      "(e) list",
      "(f) ",
      "(g) one-shot list",
      "(h) ",
    ]
  ) {
    const line = stdout.split("\n").find((l) => l.startsWith("| fts |") && l.includes(row));
    assert.ok(line, `no fts row for ${row}:\n${stdout}`);
    assert.match(line!, /\| yes \|$/);
  }
  // The CPU figures: per GiB and the busiest thread on each side for (a), server cores for (c), (d).
  const cells = (row: string) =>
    stdout.split("\n").find((l) => l.startsWith("| fts |") && l.includes(row))!.split("|")
      .map((cell) => cell.trim());
  for (const row of ["(a) 1 file, upload", "(a) 1 file, download"]) {
    assert.match(cells(row)[7]!, /^\d+\.\d\d$/, row);
    assert.match(cells(row)[8]!, /^\d+\.\d\d, \d+\.\d\d$/, row);
  }
  for (const row of ["clients, upload", "connections, upload"]) {
    assert.match(cells(row)[9]!, /^\d+\.\d\d$/, row);
  }
  assert.match(stdout, /^\(d\) disk: aggregate \d+\.\d\dx of fts's own \(c\)/m);
  assert.match(stdout, /^\(d\) disk: server peak RSS \d+ MiB/m);
  assert.match(stdout, /^\(f\) disk: server peak RSS \d+ MiB/m);
  // Peers that are not installed are named, not silently dropped; so is fts-sha256 until
  // fts has --checksum.
  for (const peer of ["fts-sha256", "socat", "tar|socat", "rsync", "scp", "sftp"]) {
    assert.ok(
      stdout.includes(`| ${peer} |`) || stdout.includes(`unavailable: ${peer}: `),
      `${peer}:\n${stdout}`,
    );
  }
});
