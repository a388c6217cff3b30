import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { sandboxPermissions, startSandboxedWorker } from "../server/sandbox.ts";

const SANDBOX_URL = new URL("../server/sandbox.ts", import.meta.url).href;

/**
 * A worker module, as a blob: it tries to connect to `otherPort` on 127.0.0.1
 * and runs the sandbox's self-check, and reports both.
 */
const PROBE_SOURCE = `
import { assertSandboxed } from ${JSON.stringify(SANDBOX_URL)};
self.onmessage = async (event) => {
  const { root, listen, otherPort } = event.data;
  const report = {};
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: otherPort });
    conn.close();
    report.connectOtherPort = "allowed";
  } catch (err) {
    report.connectOtherPort = err.name;
  }
  try {
    await assertSandboxed(root, listen);
    report.selfCheck = "allowed";
  } catch (err) {
    report.selfCheck = err.message;
  }
  self.postMessage(report);
};
`;

interface ProbeReport {
  connectOtherPort: string;
  selfCheck: string;
}

/** Runs the probe in `worker` and returns what it reports; the worker is terminated after. */
async function probe(
  worker: Worker,
  message: { root: string; listen: { hostname: string; port: number }; otherPort: number },
): Promise<ProbeReport> {
  try {
    return await new Promise<ProbeReport>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("the probe did not answer")), 10_000);
      worker.onmessage = (event) => {
        clearTimeout(timer);
        resolve(event.data);
      };
      worker.onerror = (event) => {
        event.preventDefault();
        clearTimeout(timer);
        reject(new Error(event.message));
      };
      worker.postMessage(message);
    });
  } finally {
    worker.terminate();
  }
}

/** A temporary root, a service on another port of 127.0.0.1, and the probe's URL; all removed after. */
async function withFixture(
  test: (root: string, otherPort: number, probeUrl: URL) => Promise<void>,
): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "fts-sandbox-" }));
  const root = join(dir, "root");
  await Deno.mkdir(root);
  const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepting = (async () => {
    for await (const conn of other) conn.close();
  })();
  const blobUrl = URL.createObjectURL(
    new Blob([PROBE_SOURCE], { type: "application/javascript" }),
  );
  try {
    await test(root, (other.addr as Deno.NetAddr).port, new URL(blobUrl));
  } finally {
    URL.revokeObjectURL(blobUrl);
    other.close();
    await accepting;
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("the server's sandbox cannot connect to another port of its listen host", async () => {
  await withFixture(async (root, otherPort, probeUrl) => {
    for (const port of [0, otherPort === 65535 ? 65534 : otherPort + 1]) {
      const listen = { hostname: "127.0.0.1", port };
      const report = await probe(startSandboxedWorker(probeUrl, root, "127.0.0.1", port), {
        root,
        listen,
        otherPort,
      });
      assert.deepEqual(report, { connectOtherPort: "NotCapable", selfCheck: "allowed" });
    }
  });
});

Deno.test("assertSandboxed() refuses grants wider than root and the listen address", async () => {
  await withFixture(async (root, otherPort, probeUrl) => {
    const listen = { hostname: "127.0.0.1", port: 0 };
    const exact = sandboxPermissions(root, listen.hostname, listen.port);
    const wider: [string, Deno.PermissionOptionsObject][] = [
      ["read /etc", { ...exact, read: [root, "/etc"] }],
      ["write /", { ...exact, write: ["/"] }],
      ["read the root's parent", { ...exact, read: [dirname(root)] }],
      ["write a sibling of the root", { ...exact, write: [root, `${root}-sibling`] }],
      ["net of the whole host", { ...exact, net: ["127.0.0.1"] }],
      ["net of another host", { ...exact, net: ["127.0.0.1:0", "localhost"] }],
      ["net of another port", { ...exact, net: ["127.0.0.1:0", "127.0.0.1:1"] }],
    ];
    for (const [what, permissions] of wider) {
      const worker = new Worker(probeUrl, { type: "module", deno: { permissions } });
      const report = await probe(worker, { root, listen, otherPort });
      assert.match(report.selfCheck, /sandbox permissions are wrong/, what);
    }
  });
});
