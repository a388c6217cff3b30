import assert from "node:assert/strict";
import { join } from "node:path";
import { FtsConnection, RemoteError } from "../client/connection.ts";
import { startServer } from "./_helpers.ts";

const VERSION_BYTES = 8 << 20;
const ROUNDS = 6;

Deno.test("downloads racing uploads and deletes of the same name get a whole version, never a mixture", async () => {
  const server = await startServer();
  try {
    const versions = ["A", "B"].map((letter) => join(server.dir, `${letter}.bin`));
    for (const [i, path] of versions.entries()) {
      await Deno.writeFile(path, new Uint8Array(VERSION_BYTES).fill(0x41 + i));
    }
    const writer = await FtsConnection.open("127.0.0.1", server.port);
    await writer.upload(versions[0]!, "shared.bin");
    const readers = await Promise.all(
      [0, 1, 2].map(() => FtsConnection.open("127.0.0.1", server.port)),
    );
    let wholeDownloads = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const writes = (async () => {
        await writer.upload(versions[(round + 1) % 2]!, "shared.bin", { overwrite: true });
        if (round % 3 === 2) {
          await writer.delete("shared.bin");
          await writer.upload(versions[round % 2]!, "shared.bin");
        }
      })();
      const reads = readers.map(async (reader, r) => {
        const target = join(server.dir, `read-${round}-${r}.bin`);
        try {
          await reader.download("shared.bin", target);
        } catch (err) {
          // Between a delete and the next upload the name may briefly not exist.
          if (err instanceof RemoteError && err.code === "NOT_FOUND") return;
          throw err;
        }
        const bytes = await Deno.readFile(target);
        assert.equal(bytes.length, VERSION_BYTES);
        const first = bytes[0]!;
        assert.ok(first === 0x41 || first === 0x42);
        assert.ok(bytes.every((b) => b === first), `download ${round}/${r} mixes versions`);
        wholeDownloads += 1;
        await Deno.remove(target);
      });
      await Promise.all([writes, ...reads]);
    }
    assert.ok(wholeDownloads > 0);
    await Promise.all([writer, ...readers].map((c) => c.logout()));
  } finally {
    await server.stop();
  }
});
