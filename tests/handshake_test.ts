/**
 * The handshake's limits: each side announces the largest control frame it
 * reads, and the other keeps what it sends within it.
 */

import { strict as assert } from "node:assert";
import { join } from "node:path";
import { FrameReader } from "../protocol/frames.ts";
import { MIN_ANNOUNCED_CONTROL_BYTES, PROTOCOL_VERSION } from "../protocol/limits.ts";
import { RawClient, readWithin, runClient, startServer } from "./_helpers.ts";

Deno.test("server keeps entries frames within the control limit the client's hello announces", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.root, "many"));
    for (let i = 0; i < 1000; i++) {
      await Deno.writeFile(
        join(server.root, "many", `a-rather-long-file-name-${i}.txt`),
        new Uint8Array(0),
      );
    }
    const client = await RawClient.open(server.port, false);
    try {
      await client.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        software: "raw-test",
        limits: { maxControlBytes: MIN_ANNOUNCED_CONTROL_BYTES },
      });
      assert.equal((await readWithin(client))?.ok, true);
      await client.send({ type: "request", id: 1, op: "list", name: "many" });
      // A reader that refuses any frame over the announced limit.
      const strict = new FrameReader(client.conn, { maxControlBytes: MIN_ANNOUNCED_CONTROL_BYTES });
      let entries = 0;
      let frames = 0;
      for (let i = 0; i < 1000; i++) {
        const message = await strict.readMessage();
        assert.ok(message !== null);
        if (message.type === "reply") {
          assert.equal(message.count, 1000);
          break;
        }
        frames += 1;
        entries += (message.entries as unknown[]).length;
      }
      assert.equal(entries, 1000);
      assert.ok(frames > 1, "1000 long names do not fit one 32 KiB frame");
    } finally {
      client.close();
    }
    // The fts client announces its limits too, and lists through them.
    const run = await runClient(["ls", "many"], { cwd: server.dir });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim().split("\n").length, 1000);
  } finally {
    await server.stop();
  }
});
