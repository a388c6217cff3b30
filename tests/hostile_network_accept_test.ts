import assert from "node:assert/strict";
import { assertFreshClientLists, openDescriptors, startServer, waitFor } from "./_helpers.ts";

/** Descriptors the server may open beyond those it has when idle. */
const SPARE_DESCRIPTORS = 16;

/** Silent sockets opened: more than the spare descriptors, so that accept runs out. */
const SILENT_SOCKETS = 60;

/** How long the server is left out of descriptors. */
const STARVED_MS = 4_000;

/** Accept-failure lines allowed in that time: a spinning loop writes thousands. */
const MAX_ACCEPT_FAILED_LINES = 50;

Deno.test("accept backs off and logs little when descriptors run out, then serves again", async () => {
  const server = await startServer(["--handshake-timeout", "60", "--idle-timeout", "60"]);
  const sockets: Deno.Conn[] = [];
  try {
    const pid = server.process.pid;
    await assertFreshClientLists(server);
    const limit = openDescriptors(pid) + SPARE_DESCRIPTORS;
    const prlimit = await new Deno.Command("prlimit", {
      args: ["--pid", String(pid), `--nofile=${limit}:${limit}`],
    }).output();
    assert.equal(prlimit.code, 0, new TextDecoder().decode(prlimit.stderr));
    for (let i = 0; i < SILENT_SOCKETS; i++) {
      sockets.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
    }
    assert.ok(await waitFor(() => /accept failed/.test(server.log())), server.log());
    await new Promise((resolve) => setTimeout(resolve, STARVED_MS));
    const failedLines = server.log().split("\n").filter((line) => / accept failed/.test(line));
    assert.ok(
      failedLines.length < MAX_ACCEPT_FAILED_LINES,
      `${failedLines.length} accept-failure lines: ${failedLines.slice(0, 3).join("\n")}`,
    );
    for (const socket of sockets.splice(0)) socket.close();
    assert.ok(
      await waitFor(async () => {
        try {
          await assertFreshClientLists(server);
          return true;
        } catch {
          return false;
        }
      }, 20_000),
      "no fresh client was served after the sockets closed",
    );
  } finally {
    for (const socket of sockets) socket.close();
    await server.stop();
  }
});
