/**
 * Text from a server (names, types, error messages, its software string)
 * and names on the local disk never reach the terminal raw: control
 * characters, C1 controls, line separators and bidirectional overrides are
 * shown escaped, in text and in --json output. Driven against the real
 * `fts connect` process and a hostile fake server.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_OK } from "../cli/exit_codes.ts";
import { Progress } from "../client/progress.ts";
import type { Message } from "../protocol/frames.ts";
import { PROTOCOL_VERSION } from "../protocol/limits.ts";
import {
  errorReply,
  type FakeServerScript,
  RAW_TERMINAL_CONTROL,
  runAgainstFake,
  sendFile,
} from "./_fake_server.ts";

/** Names that would retitle the window, clear the screen, overwrite a line, or reverse text. */
const HOSTILE_NAMES = [
  "\u001b]0;owned\u0007",
  "\u001b[2J",
  "fake\rreal.txt",
  "csi\u009b31m",
  "\u202etxt.exe",
  "line\u2028sep",
  "two\nlines",
  "del\u007f",
];

/** JSON output may carry no raw C1 control, separator or bidi control either. */
// deno-lint-ignore no-control-regex
const RAW_IN_JSON = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

function entry(name: string): Message {
  return { name, type: "file", size: 1, mtime: 0 };
}

function listingServer(names: string[]): FakeServerScript {
  return {
    async answer(request, peer) {
      if (request.op === "list") {
        const entries = names.map(entry);
        await peer.send({ type: "entries", id: request.id, entries });
        await peer.send({ type: "reply", id: request.id, ok: true, count: entries.length });
      } else if (request.op === "stat") {
        await peer.send({ type: "reply", id: request.id, ok: true, entry: entry(names[0]!) });
      } else if (request.op === "download") {
        await sendFile(request, peer, new Uint8Array([1]));
      } else {
        await peer.send(errorReply(request, "UNSUPPORTED", "not here"));
      }
    },
  };
}

Deno.test("ls shows each hostile name escaped, one line per entry", async () => {
  const run = await runAgainstFake(listingServer(HOSTILE_NAMES), ["ls"]);
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.doesNotMatch(run.stdout, RAW_TERMINAL_CONTROL);
    assert.equal(run.stdout.trimEnd().split("\n").length, HOSTILE_NAMES.length, run.stdout);
    assert.ok(run.stdout.includes("\\x1b]0;owned\\x07"), run.stdout);
    assert.ok(run.stdout.includes("\\u202etxt.exe"), run.stdout);
    assert.ok(run.stdout.includes("csi\\x9b31m"), run.stdout);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("ls --json escapes C1 controls, separators and bidi controls, and keeps the names", async () => {
  const run = await runAgainstFake(listingServer(HOSTILE_NAMES), ["--json", "ls"]);
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.doesNotMatch(run.stdout.trimEnd(), RAW_IN_JSON);
    const names = JSON.parse(run.stdout).entries.map((e: { name: string }) => e.name);
    assert.deepEqual(names, HOSTILE_NAMES);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("stat shows a hostile name escaped", async () => {
  const run = await runAgainstFake(listingServer(["\u001b[2Jx\ry"]), ["stat", "x"]);
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.doesNotMatch(run.stdout, RAW_TERMINAL_CONTROL);
    assert.ok(run.stdout.includes("\\x1b[2Jx\\x0dy"), run.stdout);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("an error reply's message is shown escaped, in text and in --json", async () => {
  const script: FakeServerScript = {
    async answer(request, peer) {
      await peer.send(errorReply(request, "NOT_FOUND", "gone\u001b]0;owned\u0007\r\u202e"));
    },
  };
  const run = await runAgainstFake(script, ["stat", "x"]);
  const json = await runAgainstFake(script, ["--json", "stat", "x"]);
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.doesNotMatch(run.stderr, RAW_TERMINAL_CONTROL);
    assert.match(run.stderr, /gone\\x1b\]0;owned\\x07\\x0d\\u202e/);
    assert.doesNotMatch(json.stdout.trimEnd(), RAW_IN_JSON);
    assert.doesNotMatch(json.stderr, RAW_TERMINAL_CONTROL);
  } finally {
    await Deno.remove(run.base, { recursive: true });
    await Deno.remove(json.base, { recursive: true });
  }
});

Deno.test("a fatal message is shown escaped", async () => {
  const run = await runAgainstFake({
    async answer(_request, peer) {
      await peer.send({ type: "fatal", code: "BAD_REQUEST", message: "\u001b[2Jbye\u009b" });
      return "stop";
    },
  }, ["ls"]);
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.doesNotMatch(run.stderr, RAW_TERMINAL_CONTROL);
    assert.match(run.stderr, /\\x1b\[2Jbye\\x9b/);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("the server's software string is shown escaped", async () => {
  const run = await runAgainstFake({
    protocol: PROTOCOL_VERSION + 1,
    software: "evil\u001b]0;owned\u0007",
    answer: () => Promise.resolve(),
  }, ["ls"]);
  try {
    assert.notEqual(run.code, EXIT_OK);
    assert.doesNotMatch(run.stderr, RAW_TERMINAL_CONTROL);
    assert.match(run.stderr, /evil\\x1b\]0;owned\\x07/);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("lls shows a local name with an escape and a newline escaped, forging no entry", async () => {
  const run = await runAgainstFake(listingServer([]), ["lls", "here"], {
    async prepare(cwd) {
      await Deno.mkdir(join(cwd, "here"));
      await Deno.writeTextFile(join(cwd, "here", "a\n\u001b[32mfile  0  forged"), "");
      await Deno.writeTextFile(join(cwd, "here", "b"), "");
    },
  });
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.doesNotMatch(run.stdout, RAW_TERMINAL_CONTROL);
    assert.equal(run.stdout.trimEnd().split("\n").length, 2, run.stdout);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r shows a downloaded name with a bidi override escaped in its transfer lines", async () => {
  const run = await runAgainstFake({
    async answer(request, peer) {
      if (request.op === "list") {
        await peer.send({ type: "entries", id: request.id, entries: [entry("\u202etxt.exe")] });
        await peer.send({ type: "reply", id: request.id, ok: true, count: 1 });
      } else {
        await sendFile(request, peer, new Uint8Array([1]));
      }
    },
  }, ["get", "-r", "d", "dest"]);
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.doesNotMatch(run.stdout, RAW_TERMINAL_CONTROL);
    assert.ok(run.stdout.includes("\\u202etxt.exe"), run.stdout);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("Progress.line() shows a hostile label escaped", () => {
  const line = new Progress("\u001b[2J\rname\u202e", 10, false).line();
  assert.doesNotMatch(line, RAW_TERMINAL_CONTROL);
  assert.ok(line.startsWith("\\x1b[2J\\x0dname\\u202e"), line);
});
