/**
 * Several servers on one root, on one host: two real server processes
 * serving one local directory keep every promise one server keeps
 * (tests/_shared_root.ts), each in its own temporary directory under its
 * own lease; a starting server takes over the temporaries of servers whose
 * lease has expired and of no others; a server from before shared roots and
 * one of these never serve a root together.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { LEASE_EXPIRY_MS } from "../server/server_lease.ts";
import { FTS_RUN_FLAGS, listTree, PROJECT_DIR, startServer, STOPPED_ROOT } from "./_helpers.ts";
import {
  downloadThroughOther,
  killOneMidUpload,
  resumeThroughOther,
  sameNameInterleaved,
  sameNameWithoutOverwrite,
  type SharedRoot,
  terminateStopsOne,
  twoResumersOfOnePartial,
  uploadsToDifferentNames,
  withTwoServers,
} from "./_shared_root.ts";

/** Runs `body` on a fresh local root both servers serve by one path; removes it after. */
async function onLocalRoot(body: (root: SharedRoot) => Promise<void>): Promise<void> {
  const dir = await Deno.realPath(await Deno.makeTempDir({ prefix: "fts-shared-" }));
  try {
    const root = join(dir, "root");
    await Deno.mkdir(root);
    await body({ a: root, b: root });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("two servers on one root both serve, each under a lease of its own and in a temporary directory of its own", async () => {
  await onLocalRoot(async (root) => {
    await withTwoServers(root, async (a, b) => {
      const tree = await listTree(root.a);
      assert.deepEqual(tree.filter((path) => /^\.fts\/(servers|tmp)\/./.test(path)), [
        ".fts/servers/SERVER",
        ".fts/servers/SERVER",
        ".fts/servers/SERVER.lock",
        ".fts/servers/SERVER.lock",
        ".fts/tmp/SERVER/",
        ".fts/tmp/SERVER/",
      ]);
      for (const server of [a, b]) {
        const [lease] = [...Deno.readDirSync(join(root.a, ".fts", "servers"))]
          .filter((entry) => !entry.name.endsWith(".lock"))
          .map((entry) =>
            JSON.parse(Deno.readTextFileSync(join(root.a, ".fts/servers", entry.name)))
          )
          .filter((lease) => lease.pid === server.process.pid);
        assert.ok(lease, `no lease names process ${server.process.pid}`);
        assert.equal(typeof lease.host, "string");
        assert.ok(lease.startedAt <= lease.refreshedAt && lease.refreshedAt <= Date.now());
      }
    });
    // Stopped, each took its lease and its directory away.
    assert.deepEqual(await listTree(root.a), STOPPED_ROOT);
  });
});

Deno.test("a file published through one server downloads whole through the other", async () => {
  await onLocalRoot(downloadThroughOther);
});

Deno.test("uploads through two servers at once to different names all land whole", async () => {
  await onLocalRoot(uploadsToDifferentNames);
});

Deno.test("two uploads of one name without overwrite through two servers: one is published, the other gets EXISTS", async () => {
  await onLocalRoot(sameNameWithoutOverwrite);
});

Deno.test("two uploads of one name with overwrite through two servers, interleaved: one of them whole, never a mixture", async () => {
  await onLocalRoot(sameNameInterleaved);
});

Deno.test("kill -9 of one server mid-upload: the other's upload completes, a restart takes over the dead one's only", async () => {
  await onLocalRoot(killOneMidUpload);
});

Deno.test("an upload broken off on one server resumes through the other from what it held", async () => {
  await onLocalRoot(resumeThroughOther);
});

Deno.test("two sessions resume one partial through two servers at once: one continues from what was held, the other starts over", async () => {
  await onLocalRoot((root) => twoResumersOfOnePartial(root, { overwrite: true }));
});

Deno.test("two sessions resume one partial through two servers at once without overwrite: one is published, the other gets EXISTS, nothing is left held", async () => {
  await onLocalRoot((root) => twoResumersOfOnePartial(root, { overwrite: false }));
});

Deno.test("terminate stops the server it is sent to; the other goes on serving", async () => {
  await onLocalRoot(terminateStopsOne);
});

Deno.test("a server elsewhere whose lease is fresh keeps its temporaries; once the lease has expired, a starting server takes them over", async () => {
  await onLocalRoot(async (root) => {
    const id = "e".repeat(32);
    const lease = join(root.a, ".fts", "servers", id);
    const tmp = join(root.a, ".fts", "tmp", id);
    await Deno.mkdir(join(root.a, ".fts", "servers"), { recursive: true });
    await Deno.mkdir(tmp, { recursive: true });
    await Deno.writeTextFile(join(tmp, crypto.randomUUID()), "an upload in flight elsewhere");
    const writeLease = (refreshedAt: number) =>
      Deno.writeTextFile(
        lease,
        JSON.stringify({
          id,
          host: "elsewhere",
          pid: 1,
          startedAt: refreshedAt,
          refreshedAt,
        }),
      );
    await writeLease(Date.now());
    const fresh = await startServer([], { root: root.a });
    try {
      assert.equal([...Deno.readDirSync(tmp)].length, 1);
      assert.ok(Deno.statSync(lease).isFile);
    } finally {
      await fresh.stop();
    }
    assert.equal([...Deno.readDirSync(tmp)].length, 1, "a stopping server took it");
    await writeLease(Date.now() - LEASE_EXPIRY_MS - 1000);
    const taking = await startServer([], { root: root.a });
    try {
      await assert.rejects(Deno.stat(tmp), Deno.errors.NotFound);
      await assert.rejects(Deno.stat(lease), Deno.errors.NotFound);
    } finally {
      await taking.stop();
    }
  });
});

Deno.test("a lease file that is not a lease is left alone while new, and taken for expired once old", async () => {
  await onLocalRoot(async (root) => {
    const id = "f".repeat(32);
    const lease = join(root.a, ".fts", "servers", id);
    const tmp = join(root.a, ".fts", "tmp", id);
    await Deno.mkdir(join(root.a, ".fts", "servers"), { recursive: true });
    await Deno.mkdir(tmp, { recursive: true });
    await Deno.writeTextFile(lease, '{"id":"torn');
    const first = await startServer([], { root: root.a });
    await first.stop();
    assert.ok(Deno.statSync(tmp).isDirectory);
    const old = new Date(Date.now() - LEASE_EXPIRY_MS - 1000);
    await Deno.utime(lease, old, old);
    const second = await startServer([], { root: root.a });
    await second.stop();
    await assert.rejects(Deno.stat(tmp), Deno.errors.NotFound);
  });
});

Deno.test("a server from before shared roots (the lock held exclusively) and a server of these never serve one root together", async () => {
  await onLocalRoot(async (root) => {
    await Deno.mkdir(join(root.a, ".fts"));
    const lockPath = join(root.a, ".fts", "lock");
    {
      using old = await Deno.open(lockPath, { write: true, create: true });
      await old.lock(true);
      const state = await Deno.makeTempDir({ prefix: "fts-test-state-" });
      const run = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts"), "serve", "--no-auth"]
          .concat(["--root", root.a, "--port-file", join(root.a, "..", "port")]),
        env: { XDG_STATE_HOME: state },
        stdin: "null",
      }).output();
      await Deno.remove(state, { recursive: true });
      assert.equal(run.code, 1);
      assert.match(
        new TextDecoder().decode(run.stderr),
        /cannot share its root \(an earlier version\) is serving/,
      );
    }
    const server = await startServer([], { root: root.a });
    try {
      using old = await Deno.open(lockPath, { write: true });
      assert.equal(await old.tryLock(true), false);
    } finally {
      await server.stop();
    }
  });
});
