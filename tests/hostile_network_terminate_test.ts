import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frames.ts";
import { RawClient, readWithin, startServer } from "./_helpers.ts";

Deno.test("requests pipelined behind terminate get an error reply each, then the server exits", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    const frames = [
      { type: "request", id: 1, op: "terminate" },
      { type: "request", id: 2, op: "list", name: "" },
      { type: "request", id: 3, op: "stat", name: "a.txt" },
    ].map((frame) => encodeFrame(frame));
    await client.sendBytes(new Uint8Array(frames.flatMap((frame) => [...frame])));
    const replies = [];
    for (let i = 0; i < 3; i++) replies.push(await readWithin(client));
    assert.deepEqual(replies[0], { type: "reply", id: 1, ok: true });
    for (const id of [2, 3]) {
      const reply = replies[id - 1] as { id: number; ok: boolean; error: { code: string } };
      assert.equal(reply.id, id);
      assert.equal(reply.ok, false);
      assert.equal(reply.error.code, "BUSY");
    }
    client.close();
    assert.equal(await server.exited, 0);
  } finally {
    await server.stop();
  }
});
