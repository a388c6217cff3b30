import assert from "node:assert/strict";
import { join } from "node:path";
import { assertSandboxed, startSandboxedWorker } from "../server/sandbox.ts";
import { RawClient, startServer } from "./_helpers.ts";

/** Posts `message` to a sandbox probe (tests/fixtures/) and resolves with its report. */
function probeReport(worker: Worker, message: unknown): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => {
      event.preventDefault();
      reject(new Error(event.message));
    };
    worker.postMessage(message);
  });
}

Deno.test("the server's sandbox refuses files outside root with NotCapable", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  const root = join(dir, "root");
  const outside = join(dir, "secret.txt");
  await Deno.mkdir(root);
  await Deno.writeTextFile(outside, "secret");
  await Deno.writeTextFile(join(root, "inside.txt"), "inside");
  const worker = startSandboxedWorker(
    new URL("./fixtures/sandbox_probe.ts", import.meta.url),
    root,
    "127.0.0.1",
  );
  try {
    const report = await probeReport(worker, { root, outside });
    assert.deepEqual(report, {
      readOutside: "NotCapable",
      writeOutside: "NotCapable",
      listOutside: "NotCapable",
      readEnv: "NotCapable",
      runCommand: "NotCapable",
      readInside: "allowed",
      writeInside: "allowed",
      selfCheck: "allowed",
    });
    assert.equal(await Deno.readTextFile(outside), "secret");
    await assert.rejects(Deno.stat(`${outside}.new`), Deno.errors.NotFound);
  } finally {
    worker.terminate();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a bucket-backed server's sandbox allows no file and no host but the endpoint", async () => {
  const dir = await Deno.realPath(await Deno.makeTempDir());
  const file = join(dir, "secret.txt");
  await Deno.writeTextFile(file, "secret");
  // Two real HTTP listeners on loopback: the endpoint the worker may reach, and one it may not.
  const endpoint = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("ok"),
  );
  const other = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("no"),
  );
  const url = (server: Deno.HttpServer<Deno.NetAddr>) => `http://127.0.0.1:${server.addr.port}`;
  const listen = { hostname: "127.0.0.1", port: 0 };
  const worker = startSandboxedWorker(
    new URL("./fixtures/bucket_sandbox_probe.ts", import.meta.url),
    "s3://bucket",
    listen.hostname,
    listen.port,
    url(endpoint),
  );
  try {
    const report = await probeReport(worker, {
      file,
      endpoint: url(endpoint),
      otherPort: url(other),
      listen,
    });
    assert.deepEqual(report, {
      readFile: "NotCapable",
      writeFile: "NotCapable",
      readEnv: "NotCapable",
      endpoint: "allowed",
      otherPort: "NotCapable",
      selfCheck: "allowed",
    });
    await assert.rejects(Deno.stat(`${file}.new`), Deno.errors.NotFound);
  } finally {
    worker.terminate();
    await endpoint.shutdown();
    await other.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("assertSandboxed() refuses to serve with unscoped permissions", async () => {
  // This test process runs with --allow-all: exactly what the server must refuse.
  await assert.rejects(assertSandboxed(Deno.cwd()), /sandbox permissions are wrong/);
  await assert.rejects(
    assertSandboxed("s3://bucket", { hostname: "127.0.0.1", port: 0 }, "http://127.0.0.1:7480"),
    /sandbox permissions are wrong/,
  );
});

Deno.test("a link inside root that leads outside is refused, and its target never sent", async () => {
  const server = await startServer();
  try {
    const secret = join(server.dir, "secret.txt");
    await Deno.writeTextFile(secret, "top secret");
    await Deno.symlink(secret, join(server.root, "escape.txt"));
    await Deno.symlink(server.dir, join(server.root, "escape-dir"));
    const client = await RawClient.open(server.port);
    const download = await client.request({ op: "download", name: "escape.txt" });
    assert.equal(download?.type, "reply");
    assert.deepEqual((download as { error: { code: string } }).error.code, "DENIED");
    const nested = await client.request({ op: "download", name: "escape-dir/secret.txt" });
    assert.equal((nested as { error: { code: string } }).error.code, "DENIED");
    client.close();
  } finally {
    await server.stop();
  }
});
