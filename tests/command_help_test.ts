import assert from "node:assert/strict";
import { join } from "node:path";
import { COMMANDS } from "../client/commands.ts";
import { PROJECT_DIR, runClient, runCommand, startServer } from "./_helpers.ts";

/** Words a user must never see: node:util parseArgs's own advice. */
const PARSER_TEXT = /To specify a positional argument|ERR_PARSE_ARGS|Unknown option/;

Deno.test("help fits 80 columns, and COMMAND --help, help COMMAND show one command", async () => {
  const server = await startServer();
  try {
    const help = await runCommand(server, ["help"]);
    assert.equal(help.code, 0, help.stderr);
    for (const line of help.stdout.split("\n")) assert.ok(line.length <= 80, line);
    for (const command of COMMANDS) assert.ok(help.stdout.includes(command.usage), command.usage);
    for (
      const words of [["put", "--help"], ["ls", "--help"], ["help", "put"], ["rm", "x", "--help"]]
    ) {
      const run = await runCommand(server, words);
      assert.equal(run.code, 0, `${words.join(" ")}: ${run.stderr}`);
      assert.match(run.stdout, /^usage: (upload|list|delete) /, words.join(" "));
      for (const line of run.stdout.split("\n")) assert.ok(line.length <= 80, line);
    }
    const connectHelp = await runClient(["--help"]);
    assert.equal(connectHelp.code, 0, connectHelp.stderr);
    for (const line of connectHelp.stdout.split("\n")) assert.ok(line.length <= 80, line);
    const json = await runCommand(server, ["--json", "help"]);
    assert.equal(JSON.parse(json.stdout).commands.length, COMMANDS.length);
    const logout = await runCommand(server, ["--json", "logout"]);
    assert.deepEqual(JSON.parse(logout.stdout), { op: "logout" });
  } finally {
    await server.stop();
  }
});

Deno.test("mistakes get messages that say what to type, never the option parser's text", async () => {
  const server = await startServer();
  try {
    const lsit = await runClient(["lsit"], { cwd: server.dir });
    assert.equal(lsit.code, 2, lsit.stderr);
    assert.match(lsit.stderr, /unknown command 'lsit' \(did you mean 'list'\?\)/);
    const lsitDocs = await runClient(["lsit", "docs"], { cwd: server.dir });
    assert.equal(lsitDocs.code, 2, lsitDocs.stderr);
    assert.match(lsitDocs.stderr, /unknown command 'lsit' \(did you mean 'list'\?\)/);
    const nowhere = await runClient(["no-such-host-or-command.invalid", "ls"], { cwd: server.dir });
    assert.equal(nowhere.code, 2, nowhere.stderr);
    assert.match(nowhere.stderr, /neither a command .* nor a host that resolves/);
    const shell = await runCommand(server, [], { stdin: "dowload a\n" });
    assert.equal(shell.code, 2);
    assert.match(shell.stderr, /line 1: unknown command 'dowload' \(did you mean 'download'\?\)/);

    await Deno.writeTextFile(join(server.root, "README.md"), "r");
    const after = await runCommand(server, ["stat", "README.md", "--json"]);
    assert.equal(after.code, 2);
    assert.match(
      after.stderr,
      /options go before the command \(fts connect --json stat README\.md\)/,
    );
    // An option with a value moves with its value.
    const valued = await runCommand(server, ["ls", "--port-file", "other-port", "docs"]);
    assert.equal(valued.code, 2);
    assert.match(
      valued.stderr,
      /options go before the command \(fts connect --port-file other-port ls docs\)/,
    );
    for (const words of [["put", "--bogus", "a"], ["get", "-z", "a"], ["mv", "-x", "a", "b"]]) {
      const run = await runCommand(server, words);
      assert.equal(run.code, 2, words.join(" "));
      assert.match(run.stderr, /has no option/);
      assert.doesNotMatch(run.stderr + run.stdout, PARSER_TEXT);
    }
    const rename = await runCommand(server, ["mv", "README.md", "no/such/dir/x"]);
    assert.equal(rename.code, 1);
    assert.match(rename.stderr, /no\/such/);
  } finally {
    await server.stop();
  }
});

Deno.test("-b - reads the batch from standard input; batch failures name their line", async () => {
  const server = await startServer();
  try {
    const stdin = await runCommand(server, ["-b", "-"], { stdin: "mkdir a\npwd\n" });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.match(stdin.stdout, /created a\/\n\//);
    const file = join(server.dir, "batch.txt");
    await Deno.writeTextFile(file, "# first\nmkdir b\nstat missing\nmkdir c\n");
    const batch = await runCommand(server, ["-b", file]);
    assert.equal(batch.code, 1);
    assert.match(batch.stderr, /batch line 3: NOT_FOUND/);
    assert.ok((await Deno.stat(join(server.root, "b"))).isDirectory);
    await assert.rejects(Deno.stat(join(server.root, "c")), Deno.errors.NotFound);
  } finally {
    await server.stop();
  }
});

Deno.test("README's command table lists every command with its usage and aliases", async () => {
  const readme = await Deno.readTextFile(join(PROJECT_DIR, "README.md"));
  const start = readme.indexOf("| command ");
  const table = readme.slice(start, readme.indexOf("\n\n", start)).split("\n").slice(2);
  const rows = table.map((row) => row.split("|").map((cell) => cell.trim()));
  const documented = rows.map((cells) => ({
    usage: cells[1]!.replace(/^`|`$/g, ""),
    aliases: [...cells[2]!.matchAll(/`([^`]+)`/g)].map((m) => m[1]!),
  }));
  const expected = COMMANDS.map((command) => ({
    usage: command.usage,
    aliases: command.names.slice(1),
  }));
  assert.deepEqual(documented, expected);
});

Deno.test("help and COMMAND --help need no server: no port file, nothing listening", async () => {
  const empty = await Deno.makeTempDir({ prefix: "fts-no-server-" });
  try {
    for (
      const args of [["ls", "--help"], ["127.0.0.1:1", "put", "--help"], ["help", "get"], ["help"]]
    ) {
      const run = await runClient(args, { cwd: empty });
      assert.equal(run.code, 0, `${args.join(" ")}: ${run.stderr}`);
      assert.match(run.stdout, /usage: (list|upload|download) |^Commands/m, args.join(" "));
    }
    const unknown = await runClient(["help", "lsit"], { cwd: empty });
    assert.equal(unknown.code, 2, unknown.stderr);
    assert.match(unknown.stderr, /unknown command 'lsit'/);
  } finally {
    await Deno.remove(empty, { recursive: true });
  }
});
