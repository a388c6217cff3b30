import assert from "node:assert/strict";
import { join } from "node:path";
import { runClient, type RunningServer, startServer } from "./_helpers.ts";

function fingerprintOf(server: RunningServer): string {
  const match = server.stdout().match(
    /TLS certificate SHA-256 fingerprint ((?:[0-9A-F]{2}:){31}[0-9A-F]{2})/,
  );
  assert.ok(match, server.stdout());
  return match[1]!;
}

Deno.test("--tls generates a certificate once, keeps it across restarts, and local clients pin it", async () => {
  const home = await Deno.makeTempDir({ prefix: "fts-tls-" });
  const env = { XDG_STATE_HOME: join(home, "state"), XDG_CONFIG_HOME: join(home, "config") };
  const first = await startServer(["--tls"], { auth: true, env });
  let port = 0;
  let fingerprint = "";
  try {
    fingerprint = fingerprintOf(first);
    port = first.port;
    const keyInfo = await Deno.stat(join(home, "state", "fts", "tls-key.pem"));
    assert.equal(keyInfo.mode! & 0o777, 0o600);
    // Through the port file: token and fingerprint come from port.json.
    const local = await runClient(["ls"], { cwd: first.dir, env });
    assert.equal(local.code, 0, local.stderr);
    // A pinned fingerprint, typed in any case and without colons.
    const pinned = await runClient([
      `127.0.0.1:${port}`,
      "--token",
      first.token!,
      "--fingerprint",
      fingerprint.replaceAll(":", "").toLowerCase(),
      "ls",
    ], { env });
    assert.equal(pinned.code, 0, pinned.stderr);
    const wrongPin = await runClient([
      `127.0.0.1:${port}`,
      "--token",
      first.token!,
      "--fingerprint",
      "AB".repeat(32),
      "ls",
    ], { env });
    assert.equal(wrongPin.code, 3);
    assert.match(
      wrongPin.stderr,
      /REFUSING 127\.0\.0\.1:\d+: its TLS certificate is not the one trusted/,
    );
    // Trust on first use, then quiet.
    const tofu = [`127.0.0.1:${port}`, "--token", first.token!, "--tls", "ls"];
    const firstUse = await runClient(tofu, { env });
    assert.equal(firstUse.code, 0, firstUse.stderr);
    assert.match(
      firstUse.stderr,
      new RegExp(`trusting 127\\.0\\.0\\.1:${port} on first use; .*${fingerprint}`),
    );
    const known = await Deno.readTextFile(join(home, "config", "fts", "known_hosts"));
    assert.equal(known, `127.0.0.1:${port} ${fingerprint}\n`);
    const secondUse = await runClient(tofu, { env });
    assert.equal(secondUse.code, 0, secondUse.stderr);
    assert.equal(secondUse.stderr, "");
    // A CA file: the generated certificate names 127.0.0.1, so it verifies as its own anchor.
    const viaCa = await runClient([
      `127.0.0.1:${port}`,
      "--token",
      first.token!,
      "--ca",
      join(home, "state", "fts", "tls-cert.pem"),
      "ls",
    ], { env });
    assert.equal(viaCa.code, 0, viaCa.stderr);
    // A plain client gets a clear hint rather than a hang.
    const plain = await runClient([`127.0.0.1:${port}`, "--token", first.token!, "ls"], { env });
    assert.equal(plain.code, 3);
    assert.match(plain.stderr, /connect with --tls/);
  } finally {
    await first.stop();
  }

  // Restart with the same state directory, on the same port: same identity, still trusted.
  const again = await startServer(["--tls", "--port", String(port)], { auth: true, env });
  try {
    assert.equal(fingerprintOf(again), fingerprint);
    const run = await runClient([`127.0.0.1:${port}`, "--token", again.token!, "--tls", "ls"], {
      env,
    });
    assert.equal(run.code, 0, run.stderr);
  } finally {
    await again.stop();
  }

  // Restart on a port of the system's choosing: the same server, not a new first use.
  const moved = await startServer(["--tls", "--port", "0"], { auth: true, env });
  try {
    assert.notEqual(moved.port, port);
    const run = await runClient(
      [`127.0.0.1:${moved.port}`, "--token", moved.token!, "--tls", "ls"],
      {
        env,
      },
    );
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, "", "a known certificate on a new port is trusted quietly");
    const known = await Deno.readTextFile(join(home, "config", "fts", "known_hosts"));
    assert.equal(known, `127.0.0.1:${port} ${fingerprint}\n`);
  } finally {
    await moved.stop();
  }

  // A different certificate on the same host:port: a loud refusal.
  const impostorEnv = { ...env, XDG_STATE_HOME: join(home, "other-state") };
  const impostor = await startServer(["--tls", "--port", String(port)], {
    auth: true,
    env: impostorEnv,
  });
  try {
    assert.notEqual(fingerprintOf(impostor), fingerprint);
    const run = await runClient([`127.0.0.1:${port}`, "--token", impostor.token!, "--tls", "ls"], {
      env,
    });
    assert.equal(run.code, 3);
    assert.match(
      run.stderr,
      /REFUSING 127\.0\.0\.1:\d+: .*remove the line for .* from .*known_hosts/,
    );
    assert.ok(!impostor.log().includes(" list "), "no request may reach an untrusted server");
  } finally {
    await impostor.stop();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("--tls-cert and --tls-key serve a given certificate; a TLS client to a plain server fails clearly", async () => {
  const home = await Deno.makeTempDir({ prefix: "fts-tls-" });
  const env = { XDG_STATE_HOME: join(home, "state"), XDG_CONFIG_HOME: join(home, "config") };
  // Let one server generate a certificate, then hand its files to another.
  const generator = await startServer(["--tls"], { env });
  const fingerprint = fingerprintOf(generator);
  await generator.stop();
  const cert = join(home, "state", "fts", "tls-cert.pem");
  const key = join(home, "state", "fts", "tls-key.pem");
  const server = await startServer(["--tls-cert", cert, "--tls-key", key], { env });
  const plain = await startServer([], { env });
  try {
    assert.equal(fingerprintOf(server), fingerprint);
    const run = await runClient([`127.0.0.1:${server.port}`, "--fingerprint", fingerprint, "ls"], {
      env,
    });
    assert.equal(run.code, 0, run.stderr);
    const mismatch = await runClient([`127.0.0.1:${plain.port}`, "--tls", "ls"], { env });
    assert.equal(mismatch.code, 3);
    assert.match(mismatch.stderr, /cannot connect to 127\.0\.0\.1:\d+: /);
  } finally {
    await server.stop();
    await plain.stop();
    await Deno.remove(home, { recursive: true });
  }
});

Deno.test("a plain client is told to use --tls when a TLS server closes on it at its handshake timeout", async () => {
  const home = await Deno.makeTempDir({ prefix: "fts-tls-" });
  const env = { XDG_STATE_HOME: join(home, "state"), XDG_CONFIG_HOME: join(home, "config") };
  // The server gives up on the handshake long before the client gives up waiting for a greeting.
  const server = await startServer(["--tls", "--handshake-timeout", "1"], { auth: true, env });
  try {
    const plain = await runClient([`127.0.0.1:${server.port}`, "--token", server.token!, "ls"], {
      env,
    });
    assert.equal(plain.code, 3, plain.stderr);
    assert.match(plain.stderr, /closed the connection without a greeting; .*connect with --tls/);
  } finally {
    await server.stop();
    await Deno.remove(home, { recursive: true });
  }
});
