import assert from "node:assert/strict";
import { join } from "node:path";
import { FtsConnection } from "../client/connection.ts";
import { RawClient, sha256File, startServer, writeRandomFile } from "./_helpers.ts";

const CLIENTS = 200;
const FILE_BYTES = 64 * 1024;

Deno.test(`${CLIENTS} concurrent clients each upload and download their own file`, async () => {
  const server = await startServer();
  try {
    const sums: string[] = [];
    for (let i = 0; i < CLIENTS; i++) {
      sums.push(await writeRandomFile(join(server.dir, `in-${i}.bin`), FILE_BYTES + i));
    }
    const connections = await Promise.all(
      sums.map(() => FtsConnection.open("127.0.0.1", server.port)),
    );
    const results = await Promise.all(connections.map(async (connection, i) => {
      const up = await connection.upload(join(server.dir, `in-${i}.bin`), `clients/${i}.bin`);
      const down = await connection.download(`clients/${i}.bin`, join(server.dir, `out-${i}.bin`));
      await connection.logout();
      return { up, down };
    }));
    for (const [i, { up, down }] of results.entries()) {
      assert.equal(up.digest.algorithm, "xxh3-128");
      assert.deepEqual(down.digest, up.digest);
      assert.equal(await sha256File(join(server.root, "clients", `${i}.bin`)), sums[i]);
      assert.equal(await sha256File(join(server.dir, `out-${i}.bin`)), sums[i]);
    }
    assert.equal(server.log().match(/ upload "clients\/\d+\.bin" \d+B .*ok/g)?.length, CLIENTS);
  } finally {
    await server.stop();
  }
});

Deno.test("a stuck client mid-upload does not delay another client", async () => {
  const server = await startServer();
  try {
    const stuck = await RawClient.open(server.port);
    const reply = await stuck.request({
      op: "upload",
      name: "stuck.bin",
      size: 1 << 20,
      overwrite: false,
    });
    assert.equal(reply?.type, "continue");
    await stuck.sendBytes(new Uint8Array(1000)); // ...and then nothing more.

    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port }); // Never says hello.

    await Deno.writeTextFile(join(server.dir, "x.txt"), "hello");
    const other = await FtsConnection.open("127.0.0.1", server.port);
    const result = await other.upload(join(server.dir, "x.txt"), "x.txt");
    assert.equal(result.size, 5);
    const entries = await other.list("");
    assert.deepEqual(entries.map((e) => e.name), ["x.txt"]);
    await other.logout();
    stuck.close();
    silent.close();
  } finally {
    await server.stop();
  }
});
