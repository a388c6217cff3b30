/**
 * rename's errors name what is wrong: a missing source, or a missing
 * directory for the new name; EXISTS carries no client advice from the
 * server (the client adds `--force` for its own flag).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { RawClient, startServer } from "./_helpers.ts";

Deno.test("rename into a missing directory is NOT_FOUND naming that directory, not the source", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, "a.txt"), "a");
    await Deno.writeTextFile(join(server.root, "b.txt"), "b");
    const raw = await RawClient.open(server.port);
    try {
      const intoMissing = await raw.request({
        op: "rename",
        name: "a.txt",
        to: "nowhere/a.txt",
        overwrite: false,
      });
      const error = intoMissing?.error as { code: string; message: string };
      assert.equal(error.code, "NOT_FOUND");
      assert.match(error.message, /the directory "nowhere" of the new name "nowhere\/a\.txt"/);
      const missingSource = await raw.request({
        op: "rename",
        name: "gone.txt",
        to: "c.txt",
        overwrite: false,
      });
      const missing = missingSource?.error as { code: string; message: string };
      assert.equal(missing.code, "NOT_FOUND");
      assert.match(missing.message, /"gone\.txt"/);
      const taken = await raw.request({
        op: "rename",
        name: "a.txt",
        to: "b.txt",
        overwrite: false,
      });
      const exists = taken?.error as { code: string; message: string };
      assert.equal(exists.code, "EXISTS");
      assert.equal(exists.message, `"b.txt" already exists`);
    } finally {
      raw.close();
    }
  } finally {
    await server.stop();
  }
});
