import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand, spawnCommand, startServer, waitFor, writeRandomFile } from "./_helpers.ts";

/** Large enough that the download is still running when the test notices it. */
const BIG_FILE_BYTES = 512 << 20;

/** Downloads killed one after another: each a new chance for the server to trip on a dead peer. */
const KILLS = 5;

Deno.test("clients killed mid-download leave the server serving, and no file under the real name", async () => {
  const server = await startServer();
  try {
    await writeRandomFile(join(server.root, "big.bin"), BIG_FILE_BYTES);
    const target = join(server.dir, "big.bin");
    const partial = join(server.dir, ".big.bin.fts-partial");
    for (let kill = 1; kill <= KILLS; kill++) {
      await Deno.remove(partial).catch(() => {});
      const client = spawnCommand(server, ["get", "big.bin", target]);
      // Killed at a different point each time: once some data, and more each round, arrived.
      const started = await waitFor(
        async () => (await Deno.stat(partial).catch(() => null))?.size! > kill * (8 << 20),
        30_000,
      );
      client.kill("SIGKILL");
      const status = await client.status;
      assert.ok(started, "the download never started");
      assert.notEqual(status.code, 0, "the download finished before it could be interrupted");
      await assert.rejects(Deno.stat(target), Deno.errors.NotFound);
      const ls = await runCommand(server, ["ls"]);
      assert.equal(ls.code, 0, `after kill ${kill}: ${ls.stderr}\n${server.log()}`);
    }
    assert.doesNotMatch(server.log(), /server failed|Uncaught|INTERNAL/);
  } finally {
    await server.stop();
  }
});
