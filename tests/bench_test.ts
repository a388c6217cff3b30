import assert from "node:assert/strict";
import { join } from "node:path";
import { PROJECT_DIR } from "./_helpers.ts";
import { glusterMissing } from "./_glusterfs.ts";

/** Runs `deno task bench --quick --storage STORAGE`; its table, once it has exited 0. */
async function quickBench(storage: string): Promise<string> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-all",
      join(PROJECT_DIR, "scripts", "bench.ts"),
      "--quick",
      "--storage",
      storage,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout);
}

Deno.test("the benchmark's quick mode runs every fts workload and verifies every file", async () => {
  const stdout = await quickBench("disk");
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
  // fts has --checksum. A row's system is a table cell, its `|` escaped (tar\|socat).
  for (const peer of ["fts-sha256", "socat", "tar|socat", "rsync", "scp", "sftp"]) {
    assert.ok(
      stdout.includes(`| ${peer.replaceAll("|", "\\|")} |`) ||
        stdout.includes(`unavailable: ${peer}: `),
      `${peer}:\n${stdout}`,
    );
  }
});

const glusterReason = glusterMissing();

Deno.test({
  name: "the benchmark's quick mode on GlusterFS runs (a), (b), (c) with one and two fts servers",
  ignore: glusterReason !== null && Deno.env.get("CI") !== "true",
  fn: async () => {
    assert.equal(glusterReason, null, `GlusterFS is needed in CI: ${glusterReason}`);
    const stdout = await quickBench("glusterfs");
    const rows = stdout.split("\n").filter((l) => l.includes("| glusterfs |"));
    for (const system of ["fts", "fts-two", "cp"]) {
      for (const row of ["(a) 1 file, upload", "(a) 1 file, download", "small files, upload"]) {
        const line = rows.find((l) => l.startsWith(`| ${system} |`) && l.includes(row));
        assert.ok(line, `no ${system} row for ${row}:\n${stdout}`);
        assert.match(line!, /\| yes \|$/);
      }
    }
    assert.ok(rows.some((l) => l.startsWith("| fts-two |") && l.includes("clients, upload")));
    // The disk's other workloads are not run there.
    assert.ok(!rows.some((l) => /\((d|e|f|g|h)\) /.test(l)), stdout);
    // Nothing of the volume is left: no mount of it, no namespace.
    assert.ok(!(await Deno.readTextFile("/proc/mounts")).includes("fts-gluster-"));
  },
});
