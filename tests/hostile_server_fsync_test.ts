/**
 * A download is durable once the client reports it: the file is fsynced
 * before it takes its name, and its directory after. Seen from outside,
 * with strace, on the real `fts connect` process (CI installs strace, see
 * .ci/run; elsewhere the test is skipped without it).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_OK } from "../cli/exit_codes.ts";
import { isInMemoryFileSystem } from "../io/in_memory_fs.ts";
import { runAgainstFake, sendFile } from "./_fake_server.ts";

const STRACE_PRESENT = await new Deno.Command("strace", { args: ["-V"], stdout: "null" })
  .output().then((output) => output.success, () => false);

/** Temporary directories on a disk, where fsync is not skipped. */
const TEMP_ON_DISK = !await isInMemoryFileSystem(Deno.env.get("TMPDIR") ?? "/tmp");

Deno.test({
  name: "get fsyncs the destination directory after renaming the download into it",
  ignore: (!STRACE_PRESENT && Deno.env.get("CI") !== "true") || !TEMP_ON_DISK,
  async fn() {
    const bytes = new Uint8Array(1000).fill(3);
    const run = await runAgainstFake(
      { answer: (request, peer) => sendFile(request, peer, bytes) },
      ["get", "report.bin", "dest/"],
      {
        prepare: (cwd) => Deno.mkdir(join(cwd, "dest")),
        straceSyscalls: "openat,fsync,rename,renameat,renameat2,fcntl,dup,dup2,dup3",
      },
    );
    try {
      assert.equal(run.code, EXIT_OK, run.stderr);
      const lines = run.strace.split("\n");
      const renamed = lines.findIndex((line) =>
        /rename/.test(line) && line.includes(".report.bin.fts-partial") &&
        line.includes('/dest/report.bin"')
      );
      assert.ok(renamed >= 0, `no rename of the partial in:\n${run.strace.slice(-3000)}`);
      // After the rename: the directory opened, and that descriptor fsynced.
      const after = lines.slice(renamed + 1);
      const directory = [`"dest"`, `"${run.cwd}/dest"`, `"${run.cwd}/dest/"`];
      // Descriptors of the directory: opened, or duplicated from one (Deno's async ops dup).
      const opened = new Set<string>();
      let synced = false;
      for (const line of after) {
        const result = /\) += (\d+)$/.exec(line.trim())?.[1];
        if (directory.some((path) => line.includes(`openat(AT_FDCWD, ${path},`)) && result) {
          opened.add(result);
        }
        const dup = /(?:fcntl|dup\d?)\((\d+)/.exec(line)?.[1];
        if (dup !== undefined && opened.has(dup) && result) opened.add(result);
        const fsynced = /fsync\((\d+)\)/.exec(line)?.[1];
        if (fsynced !== undefined && opened.has(fsynced)) synced = true;
      }
      assert.ok(opened.size > 0, `the directory was not opened after the rename`);
      assert.ok(synced, `the directory was not fsynced:\n${after.join("\n").slice(-3000)}`);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  },
});
