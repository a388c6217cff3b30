import assert from "node:assert/strict";
import { FtsError } from "../protocol/errors.ts";
import { parseDirectoryName, parseName } from "../protocol/names.ts";

Deno.test("parseName() accepts relative names, spaces and non-ASCII", () => {
  assert.deepEqual(parseName("a.txt"), ["a.txt"]);
  assert.deepEqual(parseName("reports/2026/q1 final.csv"), ["reports", "2026", "q1 final.csv"]);
  assert.deepEqual(parseName("日本/ü ñ.txt"), ["日本", "ü ñ.txt"]);
  assert.deepEqual(parseName("..hidden/...x"), ["..hidden", "...x"]);
  assert.deepEqual(parseName("x".repeat(255)), ["x".repeat(255)]);
  assert.deepEqual(parseName(".fts-not-reserved"), [".fts-not-reserved"]);
  assert.deepEqual(parseName("sub/.fts"), ["sub", ".fts"]);
  // Look-alikes and encodings are ordinary names: stored literally, inside root.
  assert.deepEqual(parseName("%2e%2e/x"), ["%2e%2e", "x"]);
  assert.deepEqual(parseName("\uff0e\uff0e/x"), ["\uff0e\uff0e", "x"]);
  assert.deepEqual(parseName("console.txt"), ["console.txt"]);
  assert.deepEqual(parseName("com10"), ["com10"]);
  assert.deepEqual(parseName("a\ufffdb/\ud83d\ude00"), ["a\ufffdb", "😀"]);
});

Deno.test("parseName() refuses every unsafe form with BAD_NAME", () => {
  const bad = [
    "",
    "/etc/passwd",
    "//x",
    "..",
    "../x",
    "a/../../x",
    "a/./b",
    ".",
    "a//b",
    "a/",
    "a\u0000b",
    "a\u0001b",
    "a\nb",
    "a\u007fb",
    "a\u009bb",
    "a\\b",
    "..\\..\\windows",
    "x".repeat(256),
    "é".repeat(128), // 256 bytes in UTF-8
    `${"d/".repeat(2048)}x`, // over 4096 bytes
    ".fts",
    ".fts/tmp/x",
    "CON",
    "dir/nul.txt",
    "Aux",
    "com1.log",
    "LPT9",
    ".FTS", // the state directory on a file system that ignores case
    ".Fts/tmp/x",
    ".fts.", // Windows drops trailing dots and spaces
    ".fts ",
    ".ft\u017f", // ſ upper-cases to S
    ".FT\u017f",
    ".f\u200bts", // a zero-width space, which some file systems ignore
    ".fts\u00ad",
    "CON ", // Windows ignores trailing spaces and dots: still the device
    "nul.",
    "CONIN$",
    "conout$.txt",
    "COM\u00b9",
    "lpt\u00b3.log",
    "a\ud800b", // lone surrogates: the disk would store U+FFFD, a second name for one file
    "a\udc00b",
    "a\udc00\ud800b",
    "dir/a\ud83d",
  ];
  for (const name of bad) {
    assert.throws(
      () => parseName(name),
      (err: unknown) => err instanceof FtsError && err.code === "BAD_NAME",
      JSON.stringify(name.slice(0, 40)),
    );
  }
});

Deno.test("parseDirectoryName() takes the empty name as the root", () => {
  assert.deepEqual(parseDirectoryName(""), []);
  assert.deepEqual(parseDirectoryName("a/b"), ["a", "b"]);
  assert.throws(() => parseDirectoryName("/"), FtsError);
});
