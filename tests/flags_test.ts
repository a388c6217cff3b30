import assert from "node:assert/strict";
import { CONNECT_FLAGS, CONNECT_HELP } from "../client/connect.ts";
import { formatFlags, parseFlags } from "../cli/flags.ts";
import { UsageError } from "../cli/usage_error.ts";
import { parseServeArgs, SERVE_FLAGS, SERVE_HELP } from "../server/config.ts";

const TABLE = {
  quiet: { kind: "boolean", short: "q", help: "no progress" },
  port: { kind: "integer", value: "N", help: "port", default: "0", max: 65535 },
  reserve: { kind: "size", value: "SIZE", help: "free space", default: "64M" },
  name: { kind: "string", value: "TEXT", help: "a name" },
} as const;

Deno.test("parseFlags() reads long, short, inline and boolean flags, with defaults", () => {
  const { values, rest } = parseFlags(TABLE, ["-q", "--port", "8080", "--name=a=b"]);
  assert.deepEqual(values, { quiet: true, port: 8080, reserve: 64 * 1024 * 1024, name: "a=b" });
  assert.deepEqual(rest, []);
  const none = parseFlags(TABLE, []).values;
  assert.deepEqual(none, { quiet: false, port: 0, reserve: 64 * 1024 * 1024, name: undefined });
});

Deno.test("parseFlags() stops at the first word stopAt takes, leaving it and the rest unread", () => {
  const { values, rest } = parseFlags(TABLE, ["-q", "put", "-f", "--port", "x"], {
    stopAt: (word) => word === "put",
  });
  assert.equal(values.quiet, true);
  assert.deepEqual(rest, ["put", "-f", "--port", "x"]);
});

Deno.test("parseFlags() refuses unknown flags, missing and malformed values, stray words", () => {
  const cases: [string[], RegExp][] = [
    [["--nope"], /unknown option '--nope'/],
    [["-x"], /unknown option '-x'/],
    [["--port"], /--port needs a value/],
    [["--name="], /--name needs a value/],
    [["--port", "70000"], /--port must be a whole number from 0 to 65535, not '70000'/],
    [["--port", "1.5"], /--port must be a whole number/],
    [["--reserve", "lots"], /--reserve must be a size such as/],
    [["--quiet=yes"], /--quiet takes no value/],
    [["stray"], /unexpected argument 'stray'/],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => parseFlags(TABLE, args), (err: unknown) => {
      return err instanceof UsageError && message.test(err.message);
    }, args.join(" "));
  }
});

Deno.test("formatFlags() aligns help and shows each default once", () => {
  const text = formatFlags(TABLE);
  assert.match(text, /^ {2}-q, --quiet {16}no progress$/m);
  assert.match(text, /^ {2}--port N {19}port \(default: 0\)$/m);
  assert.match(text, /^ {2}--reserve SIZE {13}free space \(default: 64M\)$/m);
});

Deno.test("serve and connect help name every flag their parsers take", () => {
  for (const [table, help] of [[SERVE_FLAGS, SERVE_HELP], [CONNECT_FLAGS, CONNECT_HELP]] as const) {
    for (const name of Object.keys(table)) {
      assert.match(help, new RegExp(`--${name}\\b`), `--${name} missing from the help`);
    }
  }
});

Deno.test("parseServeArgs() refuses an unknown flag as a usage error naming it", async () => {
  const env = { get: () => undefined };
  await assert.rejects(parseServeArgs(["--max-conections", "5"], env), /'--max-conections'/);
  const setup = await parseServeArgs(["--no-auth", "--port=9", "--quota", "1M"], env);
  assert.ok(setup !== "help");
  assert.equal(setup.config.port, 9);
  assert.equal(setup.config.limits.quotaBytes, 1024 * 1024);
});
