import assert from "node:assert/strict";
import { join } from "node:path";
import { runCommand, sha256File, startServer, writeRandomFile, xxh3File } from "./_helpers.ts";

const SIZES = [
  { label: "empty", bytes: 0 },
  { label: "1-byte", bytes: 1 },
  { label: "1 MiB", bytes: 1 << 20 },
  { label: "100 MiB", bytes: 100 << 20 },
];

for (const { label, bytes } of SIZES) {
  Deno.test(`upload and download round-trip a ${label} binary file, verified by XXH3-128`, async () => {
    const server = await startServer();
    try {
      const source = join(server.dir, "source.bin");
      const sum = await writeRandomFile(source, bytes);
      const put = await runCommand(server, ["upload", source, "stored.bin"]);
      assert.equal(put.code, 0, put.stderr);
      const xxh3 = await xxh3File(source);
      assert.ok(put.stdout.includes(`xxh3-128 ${xxh3.slice(0, 16)}`), put.stdout);
      assert.equal((await Deno.stat(join(server.root, "stored.bin"))).size, bytes);
      assert.equal(await sha256File(join(server.root, "stored.bin")), sum);

      const get = await runCommand(server, ["download", "stored.bin", "back.bin"]);
      assert.equal(get.code, 0, get.stderr);
      assert.equal(await sha256File(join(server.dir, "back.bin")), sum);
      assert.match(
        server.log(),
        new RegExp(`upload "stored.bin" ${bytes}B .* xxh3-128:${xxh3} ok`),
      );
      assert.match(
        server.log(),
        new RegExp(`download "stored.bin" ${bytes}B .* xxh3-128:${xxh3} ok`),
      );
    } finally {
      await server.stop();
    }
  });
}

Deno.test("a file of NUL bytes and a file with CR/LF survive unchanged", async () => {
  const server = await startServer();
  try {
    const nul = new Uint8Array(1000); // All zeros.
    const crlf = new TextEncoder().encode("line\r\nline\n\r\x00end");
    for (const [name, bytes] of [["zeros.bin", nul], ["crlf.txt", crlf]] as const) {
      await Deno.writeFile(join(server.dir, name), bytes);
      assert.equal((await runCommand(server, ["put", name])).code, 0);
      assert.deepEqual(await Deno.readFile(join(server.root, name)), bytes);
      assert.equal((await runCommand(server, ["get", name, `${name}.back`])).code, 0);
      assert.deepEqual(await Deno.readFile(join(server.dir, `${name}.back`)), bytes);
    }
  } finally {
    await server.stop();
  }
});
