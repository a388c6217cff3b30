/**
 * A lying server's names must never lead a download outside its
 * destination: every name a server lists is checked by the rules the server
 * applies to the client's names, and every local target is checked to lie
 * inside the destination. Driven against the real `fts connect` process.
 */

import assert from "node:assert/strict";
import { EXIT_OK, EXIT_OPERATION_FAILED } from "../cli/exit_codes.ts";
import type { Message } from "../protocol/frames.ts";
import { runAgainstFake, treeServer } from "./_fake_server.ts";

const PAYLOAD = new TextEncoder().encode("echo pwned\n");

/** A file entry as a server lists it. */
function file(name: string): Message {
  return { name, type: "file", size: PAYLOAD.length, mtime: 0 };
}

/** Names no honest server lists, or that no client may write: each must be refused. */
const HOSTILE_FILE_NAMES = [
  "../../ESCAPED.txt",
  "a/../../ESCAPED.txt",
  "..",
  ".",
  "",
  "a/b",
  "..\\..\\ESCAPED.txt",
  "x\u0000y",
  "\u001b]0;title\u0007",
  "x\ry",
  "line\nbreak",
  "nul.txt",
];

for (const name of HOSTILE_FILE_NAMES) {
  Deno.test(`get -r refuses a listed file named ${JSON.stringify(name)} and writes nothing`, async () => {
    const run = await runAgainstFake(
      treeServer({ d: [file("ok.txt"), file(name)] }, PAYLOAD),
      ["get", "-r", "d", "dest"],
    );
    try {
      assert.equal(run.code === EXIT_OK, false, run.stdout);
      assert.match(run.stderr, /bad name|impossible name/, run.stderr);
      // Not even the destination, nor the good file: the whole plan is refused first.
      assert.deepEqual(run.tree, ["cwd/"]);
      assert.deepEqual(run.messages.filter((m) => m.op === "download"), []);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  });
}

Deno.test("get -r refuses a listed directory named '../X' and creates nothing outside", async () => {
  const run = await runAgainstFake(
    treeServer({
      d: [{ name: "../X", type: "dir", size: 0, mtime: 0 }],
      X: [file("ESCAPED.txt")],
      "d/../X": [file("ESCAPED.txt")],
    }, PAYLOAD),
    ["get", "-r", "d", "dest"],
  );
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.match(run.stderr, /"\.\.\/X"/);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r with the default destination refuses a name that climbs out of it", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("../.bashrc")] }, PAYLOAD),
    ["get", "-r", "d"],
  );
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.match(run.stderr, /impossible name "\.\.\/\.bashrc"/);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get with a pattern refuses a matching name with control characters", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("good.txt"), file("\u001b[2J.txt")] }, PAYLOAD),
    ["get", "d/*.txt", "dest"],
  );
  try {
    assert.equal(run.code, EXIT_OPERATION_FAILED, run.stderr);
    assert.match(run.stderr, /bad name/);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get with a pattern refuses '..' listed as a file, even with -f", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("..")] }, PAYLOAD),
    ["get", "-f", "d/.*", "dest"],
  );
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r still downloads an honest tree into its destination", async () => {
  const run = await runAgainstFake(
    treeServer({
      d: [file("a.txt"), { name: "sub", type: "dir", size: 0, mtime: 0 }, file("..dots")],
      "d/sub": [file("b.txt"), file("\u202etxt.exe")],
    }, PAYLOAD),
    ["get", "-r", "d", "dest"],
  );
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.deepEqual(run.tree, [
      "cwd/",
      "cwd/dest/",
      "cwd/dest/..dots",
      "cwd/dest/a.txt",
      "cwd/dest/sub/",
      "cwd/dest/sub/b.txt",
      "cwd/dest/sub/\u202etxt.exe",
    ]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});
