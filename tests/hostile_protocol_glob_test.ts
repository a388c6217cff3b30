/**
 * Glob patterns against hostile names: a pattern with several stars against a
 * long name must not take exponential time (a backtracking RegExp did: the
 * client spent minutes of CPU on `a*a*a*a*a*b` against a name of 250 `a`s,
 * whether the name came from a server's listing or a local directory).
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { compileGlob, globToRegExp } from "../client/glob.ts";
import { FTS_RUN_FLAGS, PROJECT_DIR, type RunningServer, startServer } from "./_helpers.ts";

/** A process still running after this long is killed and the test fails: the matcher hung. */
const HARD_KILL_MS = 30_000;

/** The pattern and name from the audit: exponential for a backtracking matcher. */
const PATHOLOGICAL_PATTERN = "a*a*a*a*a*b";
const LONG_NAME = "a".repeat(250);

/** Runs a command to completion, killing it after {@link HARD_KILL_MS}; `killed` says whether it was. */
async function runKilledAfter(
  args: string[],
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string; killed: boolean }> {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
  }, HARD_KILL_MS);
  try {
    const output = await child.output();
    const decoder = new TextDecoder();
    return {
      code: output.code,
      stdout: decoder.decode(output.stdout),
      stderr: decoder.decode(output.stderr),
      killed,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `fts connect` against `server` with a hard kill. */
function connectKilledAfter(server: RunningServer, args: string[], cwd: string) {
  const main = join(PROJECT_DIR, "main.ts");
  return runKilledAfter(
    ["run", ...FTS_RUN_FLAGS, main, "connect", `127.0.0.1:${server.port}`, ...args],
    cwd,
  );
}

Deno.test("compileGlob() matches *, ?, sets, ranges and negation within one segment", () => {
  const cases: [pattern: string, name: string, expected: boolean][] = [
    ["*", "anything", true],
    ["*", "", true],
    ["*.csv", "q1.csv", true],
    ["*.csv", "q1.csv.bak", false],
    ["*.csv", ".csv", false],
    ["q*", "q", true],
    ["*a*b*", "xxaxxbxx", true],
    ["*a*b*", "xxbxxaxx", false],
    ["a*b*c", "abcabc", true],
    ["a*b*c", "abcab", false],
    ["??", "ab", true],
    ["??", "a", false],
    ["??", "abc", false],
    ["?", "ü", true],
    ["?", "😀", true],
    ["[abc]", "b", true],
    ["[abc]", "d", false],
    ["[a-c]x", "bx", true],
    ["[a-c]x", "dx", false],
    ["[!a-c]x", "dx", true],
    ["[!a-c]x", "ax", false],
    ["[^a-c]x", "dx", true],
    ["[]a]", "]", true],
    ["[!]a]", "b", true],
    ["[!]a]", "]", false],
    ["[a-]", "-", true],
    ["[-a]", "-", true],
    ["x[", "x[", true],
    ["[ab", "[ab", true],
    ["a.b", "axb", false],
    ["a+b(1)$^.txt", "a+b(1)$^.txt", true],
    ["back\\slash", "back\\slash", true],
    ["exact", "exact", true],
    ["exact", "exactly", false],
    ["", "", true],
    ["", "x", false],
  ];
  for (const [pattern, name, expected] of cases) {
    assert.equal(compileGlob(pattern)(name), expected, `${pattern} ~ ${name}`);
    assert.equal(globToRegExp(pattern).test(name), expected, `globToRegExp ${pattern} ~ ${name}`);
  }
});

Deno.test("compileGlob() does not match hidden names unless the pattern starts with '.'", () => {
  assert.equal(compileGlob("*")(".hidden"), false);
  assert.equal(compileGlob("?hidden")(".hidden"), false);
  assert.equal(compileGlob("[.]hidden")(".hidden"), false);
  assert.equal(compileGlob(".*")(".hidden"), true);
  assert.equal(compileGlob(".h*")(".hidden"), true);
  assert.equal(compileGlob("*.")("x."), true);
});

Deno.test("compileGlob() never matches across '/'", () => {
  assert.equal(compileGlob("*")("dir/file"), false);
  assert.equal(compileGlob("dir?file")("dir/file"), false);
  assert.equal(compileGlob("dir[!x]file")("dir/file"), false);
  assert.equal(compileGlob("d*/f*")("dir/file"), true);
  assert.equal(compileGlob("d*/*")("dir/.file"), false);
});

Deno.test("compileGlob() finishes on patterns that make a backtracking matcher exponential", async () => {
  // In a child process with a hard kill, so that the old matcher fails the
  // test instead of hanging it.
  const script = `
    import { compileGlob, globToRegExp } from ${
    JSON.stringify(join(PROJECT_DIR, "client/glob.ts"))
  };
    const cases = [
      ["a*a*a*a*a*b", "a".repeat(250)],
      ["*a*a*a*a*a*a*a*b", "a".repeat(255)],
      ["?*?*?*?*?*?*?*?*[!a]", "a".repeat(255)],
      ["*".repeat(100) + "b", "a".repeat(255)],
    ];
    let matched = 0;
    for (const [pattern, name] of cases) {
      if (compileGlob(pattern)(name)) matched++;
      if (globToRegExp(pattern).test(name)) matched++;
    }
    console.log("matched " + matched);
  `;
  const run = await runKilledAfter(["eval", script], PROJECT_DIR);
  assert.equal(run.killed, false, `the matcher was still running after ${HARD_KILL_MS} ms`);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout.trim(), "matched 0");
});

Deno.test("download of a pathological pattern against a long remote name answers NOT_FOUND", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, LONG_NAME), "x");
    const run = await connectKilledAfter(server, ["get", PATHOLOGICAL_PATTERN], server.dir);
    assert.equal(run.killed, false, `the client was still matching after ${HARD_KILL_MS} ms`);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /no remote files match/);
  } finally {
    await server.stop();
  }
});

Deno.test("upload of a pathological pattern against a long local name answers NOT_FOUND", async () => {
  const server = await startServer();
  const local = await Deno.makeTempDir({ prefix: "fts-glob-" });
  try {
    await Deno.writeTextFile(join(local, LONG_NAME), "x");
    const run = await connectKilledAfter(server, ["put", PATHOLOGICAL_PATTERN], local);
    assert.equal(run.killed, false, `the client was still matching after ${HARD_KILL_MS} ms`);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /no local files match/);
  } finally {
    await server.stop();
    await Deno.remove(local, { recursive: true });
  }
});
