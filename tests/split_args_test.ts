import assert from "node:assert/strict";
import { parseAddress } from "../client/address.ts";
import { escapeWord, splitArgs, wordsBeingTyped } from "../client/split_args.ts";
import { UsageError } from "../cli/usage_error.ts";

Deno.test("splitArgs() splits like a POSIX shell", () => {
  const cases: [string, string[]][] = [
    ["put a.txt", ["put", "a.txt"]],
    ["  put   a.txt  ", ["put", "a.txt"]],
    [`put "my file.txt" 'other file'`, ["put", "my file.txt", "other file"]],
    [`put my\\ file.txt`, ["put", "my file.txt"]],
    [`get 'it''s'`, ["get", "its"]],
    [`get "say \\"hi\\"" 'a\\b'`, ["get", `say "hi"`, "a\\b"]],
    [`rm ""`, ["rm", ""]],
    [`put a"b c"d`, ["put", "ab cd"]],
    ["get ü/日本.txt", ["get", "ü/日本.txt"]],
    ["", []],
  ];
  for (const [line, words] of cases) assert.deepEqual(splitArgs(line), words, line);
});

Deno.test("splitArgs() refuses unterminated quotes", () => {
  assert.throws(() => splitArgs(`put "a`), UsageError);
  assert.throws(() => splitArgs(`put 'a`), UsageError);
});

Deno.test("parseAddress() reads HOST[:PORT] with IPv6 forms", () => {
  assert.deepEqual(parseAddress("127.0.0.1:9000"), { hostname: "127.0.0.1", port: 9000 });
  assert.deepEqual(parseAddress("files.example"), { hostname: "files.example" });
  assert.deepEqual(parseAddress("[::1]:9000"), { hostname: "::1", port: 9000 });
  assert.deepEqual(parseAddress("[::1]"), { hostname: "::1" });
  assert.deepEqual(parseAddress("::1"), { hostname: "::1" });
  assert.deepEqual(parseAddress(":9000"), { hostname: "127.0.0.1", port: 9000 });
  for (const bad of ["host:0", "host:70000", "host:x", "[::1]:"]) {
    assert.throws(() => parseAddress(bad), UsageError, bad);
  }
});

Deno.test("wordsBeingTyped() splits a finished line as splitArgs() does, and forgives an open one", () => {
  for (const line of [`put "my file.txt" 'a b'`, `get a\\ b c`, `ls  `, `x "" ''`, `a"b"'c'`]) {
    const { words } = wordsBeingTyped(line);
    const expected = splitArgs(line);
    if (/\s$/.test(line)) expected.push("");
    assert.deepEqual(words, expected, line);
  }
  assert.deepEqual(wordsBeingTyped(`get 'open quo`), {
    words: ["get", "open quo"],
    raw: `'open quo`,
  });
  assert.deepEqual(wordsBeingTyped(`get two\\ wo`), { words: ["get", "two wo"], raw: `two\\ wo` });
  assert.deepEqual(wordsBeingTyped(`get `), { words: ["get", ""], raw: "" });
  assert.equal(splitArgs(escapeWord(`it's "a" \\ b`))[0], `it's "a" \\ b`);
});
