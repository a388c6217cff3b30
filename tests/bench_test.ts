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
    ]
  ) {
    const line = stdout.split("\n").find((l) => l.startsWith("| fts |") && l.includes(row));
    assert.ok(line, `no fts row for ${row}:\n${stdout}`);
    assert.match(line!, /\| yes \|$/);
  }
  // Peers that are not installed are named, not silently dropped.
  for (const peer of ["socat", "rsync", "scp", "sftp"]) {
    assert.ok(stdout.includes(`| ${peer} |`) || stderr.includes(`skipping ${peer}`), peer);
  }
});
