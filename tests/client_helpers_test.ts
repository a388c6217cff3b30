import assert from "node:assert/strict";
import { UsageError } from "../cli/usage_error.ts";
import { globToRegExp, isGlob, splitPattern } from "../client/glob.ts";
import { formatDuration, Progress } from "../client/progress.ts";
import { resolveRemote } from "../client/remote_path.ts";

Deno.test("globToRegExp() matches *, ? and [sets] within one segment, not hidden names", () => {
  const cases: [string, string, boolean][] = [
    ["*.csv", "q1.csv", true],
    ["*.csv", "q1.csv.bak", false],
    ["*.csv", ".hidden.csv", false],
    [".*", ".hidden", true],
    ["report-?.txt", "report-7.txt", true],
    ["report-?.txt", "report-10.txt", false],
    ["[ab].log", "b.log", true],
    ["[!ab].log", "c.log", true],
    ["[!ab].log", "a.log", false],
    ["a+b(1).txt", "a+b(1).txt", true],
    ["*", "dir/file", false],
  ];
  for (const [pattern, name, expected] of cases) {
    assert.equal(globToRegExp(pattern).test(name), expected, `${pattern} ~ ${name}`);
  }
  assert.equal(isGlob("plain.txt"), false);
  assert.deepEqual(splitPattern("reports/2026/*.csv"), { dir: "reports/2026", last: "*.csv" });
  assert.throws(() => splitPattern("*/x.csv"), /only the last part/);
});

Deno.test("resolveRemote() joins the remote directory and never climbs above the top", () => {
  assert.equal(resolveRemote("", "a/b"), "a/b");
  assert.equal(resolveRemote("x/y", "../z"), "x/z");
  assert.equal(resolveRemote("x", "/top.txt"), "top.txt");
  assert.equal(resolveRemote("x", ".."), "");
  assert.equal(resolveRemote("", "./a/./b/"), "a/b");
  assert.throws(() => resolveRemote("", "../etc"), UsageError);
  assert.throws(() => resolveRemote("x", "../../etc"), UsageError);
});

Deno.test("Progress.line() shows name, bytes, percent, rate and ETA", () => {
  const progress = new Progress("big.bin", 100 * 1024 * 1024, false);
  progress.update(25 * 1024 * 1024);
  const line = progress.line(performance.now() + 1000);
  assert.match(
    line,
    /^big\.bin {2}25\.0 MiB \/ 100\.0 MiB {2}25% {2}[\d.]+ MiB\/s {2}ETA \d+:\d\d$/,
  );
  // Within the terminal's width, the name gives way and the figures stay.
  const long = new Progress(`${"very-long-name-".repeat(10)}.bin`, 100, false);
  long.update(50);
  const fitted = long.line(performance.now() + 1000, 60);
  assert.ok(fitted.length <= 59, `${fitted.length}: ${fitted}`);
  assert.match(fitted, /^very-lon.*… {2}50 B \/ 100 B {2}50%/);
  assert.equal(formatDuration(75), "1:15");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(Infinity), "--:--");
});
