import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CONNECTION } from "../cli/exit_codes.ts";
import { parseServeArgs } from "../server/config.ts";
import { connectLines } from "../server/connect_lines.ts";
import { writePortFiles } from "../server/port_file.ts";
import { exposureWarning } from "../server/serve.ts";
import { parseTokensFile, TokenVerifier } from "../server/tokens.ts";
import { FTS_RUN_FLAGS, listTree, PROJECT_DIR, runClient, startServer } from "./_helpers.ts";

const TOKENS = {
  reader: "read-token-0123456789abcdef",
  writer: "write-token-0123456789abcdef",
  boss: "admin-token-0123456789abcdef",
};

Deno.test("by default the server requires a token and local clients find it beside the port file", async () => {
  const server = await startServer([], { auth: true });
  try {
    const info = await Deno.stat(`${server.portFile}.json`);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.ok(server.token && server.token.length >= 32);

    // Through the port file: no flags at all.
    const local = await runClient(["ls"], { cwd: server.dir });
    assert.equal(local.code, 0, local.stderr);

    // An explicit address never reads the port file's secrets.
    const anonymous = await runClient([`127.0.0.1:${server.port}`, "ls"]);
    assert.equal(anonymous.code, 3);
    assert.match(anonymous.stderr, /needs a token/);
    const wrong = await runClient([`127.0.0.1:${server.port}`, "--token", "x".repeat(30), "ls"]);
    assert.equal(wrong.code, 3);
    assert.match(wrong.stderr, /token was not accepted/);
    const right = await runClient([`127.0.0.1:${server.port}`, "--token", server.token!, "ls"]);
    assert.equal(right.code, 0, right.stderr);
    const fromEnv = await runClient([`127.0.0.1:${server.port}`, "ls"], {
      env: { FTS_TOKEN: server.token! },
    });
    assert.equal(fromEnv.code, 0, fromEnv.stderr);

    assert.ok(!server.log().includes(server.token!), "the token must never be logged");
    assert.match(server.log(), /\[local\] list "" .*ok/);
  } finally {
    await server.stop();
  }
});

Deno.test("writePortFiles() writes port.json owner-only to a new file, never through a planted name", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-port-" });
  try {
    const portFile = join(dir, "port");
    const victim = join(dir, "victim");
    await Deno.writeTextFile(victim, "untouched");
    // The temporary name a writer using its pid would pick, planted in advance.
    await Deno.symlink(victim, `${portFile}.json.${Deno.pid}.tmp`);
    const token = "t".repeat(32);
    await writePortFiles(portFile, 4321, { token, tls: null });
    assert.equal(await Deno.readTextFile(victim), "untouched");
    const info = await Deno.lstat(`${portFile}.json`);
    assert.ok(info.isFile);
    assert.equal(info.mode! & 0o777, 0o600);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${portFile}.json`)), { token, tls: null });
    assert.equal(await Deno.readTextFile(portFile), "4321\n");
    const names = await listTree(dir);
    assert.deepEqual(names, ["port", "port.json", `port.json.${Deno.pid}.tmp`, "victim"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the generated token is printed in a ready-to-paste connect line that works", async () => {
  const server = await startServer([], { auth: true });
  try {
    const line = server.stdout().match(/fts: connect with: (FTS_TOKEN=(\S+) fts connect (\S+))\n/);
    assert.ok(line, server.stdout());
    assert.equal(line[3], `127.0.0.1:${server.port}`);
    assert.equal(line[2], server.token);
    // Pasted into a shell, the token reaches the client through its environment, not its arguments.
    assert.ok(!line[1]!.includes("--token"));
    const shim = join(server.dir, "fts");
    await Deno.writeTextFile(
      shim,
      `#!/bin/sh\nexec '${Deno.execPath()}' run ${FTS_RUN_FLAGS.join(" ")} '${
        join(PROJECT_DIR, "main.ts")
      }' "$@"\n`,
    );
    await Deno.chmod(shim, 0o755);
    const run = await new Deno.Command("sh", {
      args: ["-c", `PATH="${server.dir}:$PATH"; ${line[1]} ls`],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(run.code, 0, new TextDecoder().decode(run.stderr));
  } finally {
    await server.stop();
  }
});

Deno.test("roles: read lists and downloads, write also uploads and deletes, admin also terminates", async () => {
  const dir = await Deno.makeTempDir();
  const tokensFile = join(dir, "tokens");
  await Deno.writeTextFile(
    tokensFile,
    `# role name token\nread  reader ${TOKENS.reader}\nwrite writer ${TOKENS.writer}\n` +
      `admin boss   ${TOKENS.boss}  # the owner\n`,
  );
  const server = await startServer(["--tokens", tokensFile], { auth: true });
  const as = (token: string, ...args: string[]) =>
    runClient([`127.0.0.1:${server.port}`, "--token", token, ...args], { cwd: server.dir });
  try {
    await Deno.writeTextFile(join(server.dir, "f.txt"), "content");
    const readerPut = await as(TOKENS.reader, "put", "f.txt");
    assert.equal(readerPut.code, 1);
    assert.match(readerPut.stderr, /DENIED: upload needs the write role; this token has read/);
    assert.equal((await as(TOKENS.writer, "put", "f.txt")).code, 0);
    assert.equal((await as(TOKENS.reader, "ls")).code, 0);
    assert.equal((await as(TOKENS.reader, "get", "f.txt", "copy.txt")).code, 0);
    assert.match((await as(TOKENS.reader, "rm", "f.txt")).stderr, /DENIED/);
    const readerMkdir = await as(TOKENS.reader, "mkdir", "d");
    assert.equal(readerMkdir.code, 1);
    assert.match(readerMkdir.stderr, /DENIED: mkdir needs the write role; this token has read/);
    const readerRename = await as(TOKENS.reader, "mv", "f.txt", "g.txt");
    assert.equal(readerRename.code, 1);
    assert.match(readerRename.stderr, /DENIED: rename needs the write role; this token has read/);
    assert.deepEqual((await listTree(server.root)).filter((p) => !p.startsWith(".fts/")), [
      "f.txt",
    ]);
    const writerStop = await as(TOKENS.writer, "terminate");
    assert.equal(writerStop.code, 1);
    assert.match(writerStop.stderr, /DENIED: terminate needs the admin role/);
    assert.equal((await as(TOKENS.writer, "rm", "f.txt")).code, 0);
    assert.equal((await as(TOKENS.boss, "terminate")).code, 0);
    assert.equal(await server.exited, 0);

    const log = server.log();
    for (const token of Object.values(TOKENS)) assert.ok(!log.includes(token), "token in log");
    assert.match(log, /\[reader\] upload "f\.txt" .*DENIED/);
    assert.match(log, /\[reader\] mkdir "d" .*DENIED/);
    assert.match(log, /\[reader\] rename "f\.txt" .*DENIED/);
    assert.match(log, /\[writer\] upload "f\.txt" \d+B .*ok/);
    assert.match(log, /\[boss\] terminate .*ok/);
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("repeated authentication failures from one peer are slowed down, doubling", async () => {
  const server = await startServer(["--token", TOKENS.boss], { auth: true });
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const run = await runClient([`127.0.0.1:${server.port}`, "--token", "y".repeat(20), "ls"]);
      assert.equal(run.code, 3);
    }
    const delays = [...server.log().matchAll(/auth DENIED \(delayed (\d+)ms\)/g)].map((m) =>
      Number(m[1])
    );
    assert.deepEqual(delays, [250, 500, 1000]);
    // Success resets the count.
    assert.equal(
      (await runClient([`127.0.0.1:${server.port}`, "--token", TOKENS.boss, "ls"])).code,
      0,
    );
    await runClient([`127.0.0.1:${server.port}`, "--token", "y".repeat(20), "ls"]);
    assert.match(server.log(), /auth DENIED \(delayed 250ms\)\n(?![\s\S]*delayed)/);
  } finally {
    await server.stop();
  }
});

Deno.test("--log-format json writes one audit record per line with the token's name", async () => {
  const server = await startServer(["--token", TOKENS.boss, "--log-format", "json"], {
    auth: true,
  });
  try {
    await Deno.writeTextFile(join(server.dir, "a.txt"), "abc");
    const run = await runClient([
      `127.0.0.1:${server.port}`,
      "--token",
      TOKENS.boss,
      "put",
      "a.txt",
    ], {
      cwd: server.dir,
    });
    assert.equal(run.code, 0, run.stderr);
    const records = server.log().trim().split("\n").map((line) => JSON.parse(line));
    const upload = records.find((r) => r.op === "upload");
    assert.deepEqual(Object.keys(upload).sort(), [
      "bytes",
      "checksum",
      "detail",
      "digest",
      "durationMs",
      "name",
      "op",
      "peer",
      "result",
      "time",
      "token",
      "worker",
    ]);
    assert.equal(upload.token, "admin");
    assert.equal(upload.name, "a.txt");
    assert.equal(upload.bytes, 3);
    assert.equal(upload.checksum, "xxh3-128");
    assert.equal(upload.digest, "06b05ab6733a618578af5f94892f3950", "XXH3-128 of 'abc'");
    assert.equal(upload.result, "ok");
    const auth = records.find((r) => r.op === "auth");
    assert.equal(auth.checksum, "xxh3-128");
    assert.equal(auth.digest, null);
    assert.match(upload.peer, /^127\.0\.0\.1:\d+$/);
    assert.ok(!Number.isNaN(Date.parse(upload.time)));
    assert.ok(!server.log().includes(TOKENS.boss));
  } finally {
    await server.stop();
  }
});

Deno.test("parseServeArgs() listens everywhere with authentication, on loopback without", async () => {
  const env = { get: (_: string) => undefined };
  const secure = await parseServeArgs([], env);
  assert.ok(secure !== "help");
  assert.equal(secure.config.hostname, "::");
  assert.equal(secure.showToken, true);
  assert.equal(secure.config.tokens?.length, 1);
  const open = await parseServeArgs(["--no-auth"], env);
  assert.ok(open !== "help");
  assert.equal(open.config.hostname, "127.0.0.1");
  assert.equal(open.config.tokens, null);
  const fromEnv = await parseServeArgs([], {
    get: (n) => n === "FTS_TOKEN" ? TOKENS.boss : undefined,
  });
  assert.ok(fromEnv !== "help");
  assert.equal(fromEnv.showToken, false);
  assert.ok(fromEnv.config.tokens?.some((t) => t.token === TOKENS.boss && t.role === "admin"));
  await assert.rejects(parseServeArgs(["--token", "short"], env), /at least 16 characters/);
  await assert.rejects(
    parseServeArgs(["--no-auth", "--token", TOKENS.boss], env),
    /cannot be combined/,
  );
});

Deno.test("tokens files are parsed strictly and tokens are checked without early exit", () => {
  const tokens = parseTokensFile(`admin a ${TOKENS.boss}\n\n# c\nread b ${TOKENS.reader}\n`, "f");
  assert.deepEqual(tokens.map((t) => [t.role, t.name]), [["admin", "a"], ["read", "b"]]);
  assert.throws(() => parseTokensFile(`owner a ${TOKENS.boss}`, "f"), /f:1: role must be one of/);
  assert.throws(() => parseTokensFile(`admin a`, "f"), /f:1: expected 'ROLE NAME TOKEN'/);
  assert.throws(() => parseTokensFile(`read a shorttoken`, "f"), /at least 16/);
  assert.throws(
    () => parseTokensFile(`read a ${TOKENS.reader}\nread a ${TOKENS.boss}`, "f"),
    /repeats/,
  );
  assert.throws(() => parseTokensFile("# nothing\n", "f"), /no tokens/);
  const verifier = new TokenVerifier(tokens);
  assert.deepEqual(verifier.verify(TOKENS.boss), { name: "a", role: "admin" });
  assert.deepEqual(verifier.verify(TOKENS.reader), { name: "b", role: "read" });
  assert.equal(verifier.verify(TOKENS.boss.slice(0, -1)), null);
  assert.equal(verifier.verify(TOKENS.boss + "x"), null);
  assert.equal(verifier.verify(""), null);
  assert.equal(verifier.verify(undefined), null);
});

Deno.test("exposureWarning() warns when --no-auth meets an address other machines can reach", async () => {
  const env = { get: (_: string) => undefined };
  const config = async (args: string[]) => {
    const setup = await parseServeArgs(args, env);
    assert.ok(setup !== "help");
    return setup.config;
  };
  assert.match(
    exposureWarning(await config(["--no-auth", "--host", "0.0.0.0"]))!,
    /authentication is off .* 0\.0\.0\.0 is reachable/,
  );
  assert.ok(exposureWarning(await config(["--no-auth", "--host", "192.168.1.5"])));
  assert.equal(exposureWarning(await config(["--no-auth"])), null);
  assert.equal(exposureWarning(await config(["--no-auth", "--host", "::1"])), null);
  assert.equal(exposureWarning(await config([])), null); // Authentication on.
});

Deno.test("connectLines() names this host's reachable addresses for a server on every interface", () => {
  const interfaces = [
    { family: "IPv4" as const, address: "127.0.0.1" },
    { family: "IPv6" as const, address: "::1" },
    { family: "IPv4" as const, address: "10.0.0.5" },
    { family: "IPv6" as const, address: "fe80::1" },
    { family: "IPv6" as const, address: "2001:db8::5" },
  ];
  const base = { port: 4321, token: "T0k", fingerprint: null, interfaces };
  assert.deepEqual(connectLines({ ...base, hostname: "0.0.0.0" }), [
    "FTS_TOKEN=T0k fts connect 10.0.0.5:4321",
  ]);
  assert.deepEqual(connectLines({ ...base, hostname: "::", fingerprint: "ab:cd" }), [
    "FTS_TOKEN=T0k fts connect 10.0.0.5:4321 --fingerprint ab:cd",
    "FTS_TOKEN=T0k fts connect [2001:db8::5]:4321 --fingerprint ab:cd",
  ]);
  assert.deepEqual(connectLines({ ...base, hostname: "10.0.0.5" }), [
    "FTS_TOKEN=T0k fts connect 10.0.0.5:4321",
  ]);
  // A host with loopback only still gets a line that works here.
  assert.deepEqual(connectLines({ ...base, hostname: "0.0.0.0", interfaces: [interfaces[0]!] }), [
    "FTS_TOKEN=T0k fts connect 127.0.0.1:4321",
  ]);
});

Deno.test("the generated token is kept across restarts, one per root, and --new-token replaces it", async () => {
  const stateDir = await Deno.makeTempDir({ prefix: "fts-state-" });
  const roots = await Deno.makeTempDir({ prefix: "fts-roots-" });
  const start = (...extra: string[]) =>
    startServer(["--state-dir", stateDir, "--root", join(roots, "one"), ...extra], { auth: true });
  try {
    const first = await start();
    await first.stop();
    const again = await start();
    let kept: string;
    try {
      kept = again.token!;
      assert.equal(kept, first.token, "a restart serves the token it printed before");
      assert.ok(again.stdout().includes(`FTS_TOKEN=${kept} fts connect`), again.stdout());
      const [file] = [...Deno.readDirSync(join(stateDir, "tokens"))];
      const info = await Deno.stat(join(stateDir, "tokens", file!.name));
      assert.equal(info.mode! & 0o777, 0o600);
    } finally {
      await again.stop();
    }
    // Another root of the same user has a token of its own: one connect line opens one root.
    const other = await startServer(["--state-dir", stateDir, "--root", join(roots, "two")], {
      auth: true,
    });
    try {
      assert.notEqual(other.token, kept);
      const refused = await runClient([`127.0.0.1:${other.port}`, "--token", kept, "ls"]);
      assert.equal(refused.code, EXIT_CONNECTION, refused.stderr);
    } finally {
      await other.stop();
    }
    const renewed = await start("--new-token");
    try {
      assert.notEqual(renewed.token, kept);
      const old = await runClient([`127.0.0.1:${renewed.port}`, "--token", kept, "ls"]);
      assert.equal(old.code, EXIT_CONNECTION, old.stderr);
      assert.match(old.stderr, /the token was not accepted/);
      const fresh = await runClient([`127.0.0.1:${renewed.port}`, "--token", renewed.token!, "ls"]);
      assert.equal(fresh.code, 0, fresh.stderr);
    } finally {
      await renewed.stop();
    }
  } finally {
    await Deno.remove(stateDir, { recursive: true });
    await Deno.remove(roots, { recursive: true });
  }
});

Deno.test("--token-file gives the client its token from a file, out of its arguments", async () => {
  const server = await startServer([], { auth: true });
  try {
    const tokenFile = join(server.dir, "my-token");
    await Deno.writeTextFile(tokenFile, `${server.token}\n`, { mode: 0o600 });
    const run = await runClient([`127.0.0.1:${server.port}`, "--token-file", tokenFile, "ls"]);
    assert.equal(run.code, 0, run.stderr);
    await Deno.writeTextFile(tokenFile, "wrong-token-of-enough-length-0123456789\n");
    const wrong = await runClient([`127.0.0.1:${server.port}`, "--token-file", tokenFile, "ls"]);
    assert.equal(wrong.code, EXIT_CONNECTION);
    assert.match(wrong.stderr, /the token was not accepted/);
    const missing = await runClient([
      `127.0.0.1:${server.port}`,
      "--token-file",
      join(server.dir, "absent"),
      "ls",
    ]);
    assert.equal(missing.code, 2, missing.stderr);
    assert.match(missing.stderr, /--token-file .*absent/);
  } finally {
    await server.stop();
  }
});
