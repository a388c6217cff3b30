import assert from "node:assert/strict";
import { join } from "node:path";
import { openDescriptors, runClient, startServer, waitFor } from "./_helpers.ts";

/** Plain TCP sockets that never start the TLS handshake; more than one peer may hold. */
const SILENT_SOCKETS = 60;

/** Descriptors the server may hold above its idle count once those sockets were dropped. */
const DESCRIPTOR_SLACK = 10;

Deno.test("TLS server frees the descriptor of a connection that never starts its handshake", async () => {
  const home = await Deno.makeTempDir({ prefix: "fts-tls-" });
  const env = { XDG_STATE_HOME: join(home, "state"), XDG_CONFIG_HOME: join(home, "config") };
  const server = await startServer([
    "--tls",
    "--max-connections",
    "100",
    "--max-connections-per-peer",
    "50",
    "--handshake-timeout",
    "2",
  ], { auth: true, env });
  const sockets: Deno.Conn[] = [];
  try {
    const pid = server.process.pid;
    const first = await runClient(["ls"], { cwd: server.dir, env });
    assert.equal(first.code, 0, first.stderr);
    const baseline = openDescriptors(pid);
    for (let i = 0; i < SILENT_SOCKETS; i++) {
      sockets.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    // 50 sessions time out; 10 are refused with BUSY (which they never read).
    const dropped = () => (server.log().match(/ disconnect dropped/g) ?? []).length;
    const busy = () => (server.log().match(/ connect BUSY/g) ?? []).length;
    assert.ok(
      await waitFor(() => dropped() >= 50 && busy() >= 10, 20_000),
      `dropped ${dropped()}, busy ${busy()}:\n${server.log()}`,
    );
    const held = openDescriptors(pid);
    assert.ok(
      held <= baseline + DESCRIPTOR_SLACK,
      `${held} descriptors open with the silent sockets dropped, ${baseline} before`,
    );
    const after = await runClient(["ls"], { cwd: server.dir, env });
    assert.equal(after.code, 0, after.stderr);
  } finally {
    for (const socket of sockets) socket.close();
    await server.stop();
    await Deno.remove(home, { recursive: true });
  }
});
