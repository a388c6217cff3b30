/**
 * Several servers on one root, on one host: two real server processes
 * serving one local directory keep every promise one server keeps
 * (tests/_shared_root.ts), each in its own temporary directory under its
 * own lease; a starting server takes over the temporaries of servers whose
 * lease has expired and of no others; a server from before shared roots and
 * one of these never serve a root together.
 */

import assert from "node:assert/strict";
import { statfs } from "node:fs/promises";
import { join } from "node:path";
import { LEASE_EXPIRY_MS } from "../server/server_lease.ts";
import { type LedgerCounts, SPACE_LEDGER_FILE } from "../server/space_ledger.ts";
import {
  FTS_RUN_FLAGS,
  listTree,
  mountTmpfs,
  PROJECT_DIR,
  runCommand,
  startServer,
  STOPPED_ROOT,
} from "./_helpers.ts";
import {
  askUpload,
  assertRoomFor,
  downloadThroughOther,
  finishUpload,
  inFreshRoot,
  killOneMidUpload,
  moveRacesUpload,
  QUOTA_BYTES,
  QUOTA_FLAGS,
  quotaAcrossServers,
  quotaAfterKill,
  randomBytes,
  resumeThroughOther,
  sameNameInterleaved,
  sameNameWithoutOverwrite,
  type SharedRoot,
  terminateStopsOne,
  twoResumersOfOnePartial,
  uploadsToDifferentNames,
  withTwoServers,
} from "./_shared_root.ts";

/** The root's space ledger (server/space_ledger.ts), as the servers left it. */
function ledgerOf(root: string): LedgerCounts {
  return JSON.parse(Deno.readTextFileSync(join(root, SPACE_LEDGER_FILE)));
}

/** Runs `body` on a fresh local root both servers serve by one path; removes it after. */
function onLocalRoot(body: (root: SharedRoot) => Promise<void>): Promise<void> {
  return inFreshRoot((root) => body({ a: root, b: root }));
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
      // Both count in the root's one space ledger.
      assert.equal(Object.keys(ledgerOf(root.a).servers).length, 2);
    });
    // Stopped, each took its lease, its directory and its place in the ledger away.
    assert.deepEqual(await listTree(root.a), STOPPED_ROOT);
    assert.deepEqual(ledgerOf(root.a).servers, {});
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

Deno.test("the quota holds for the root across two servers: as many uploads as fit it, whichever server they came to", async () => {
  await onLocalRoot(quotaAcrossServers);
});

Deno.test("kill -9 of a server: its claims on the quota hold until a server takes over what it left, then only what it kept counts", async () => {
  await onLocalRoot(quotaAfterKill);
});

Deno.test("mv without -f through one server and an upload without -f through the other onto one name at once: exactly one wins, the other gets EXISTS", async () => {
  await onLocalRoot(moveRacesUpload);
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

Deno.test("a server elsewhere holds its claims on the quota while its lease is fresh; a server starting after it expired drops them", async () => {
  await onLocalRoot(async (root) => {
    const id = "d".repeat(32);
    const claimed = 8 << 20;
    await Deno.mkdir(join(root.a, ".fts", "servers"), { recursive: true });
    const writeLease = (refreshedAt: number) =>
      Deno.writeTextFile(
        join(root.a, ".fts", "servers", id),
        JSON.stringify({ id, host: "elsewhere", pid: 1, startedAt: refreshedAt, refreshedAt }),
      );
    const writeLedger = () =>
      Deno.writeTextFile(
        join(root.a, SPACE_LEDGER_FILE),
        JSON.stringify({
          used: 0,
          measured: true,
          written: 0,
          servers: { [id]: { reserved: claimed, disk: claimed } },
        }),
      );
    // The quota leaves room for 10 MiB: 8 are the other server's in flight.
    const fitsBeside = QUOTA_BYTES - claimed;
    await writeLease(Date.now());
    await writeLedger();
    const beside = await startServer(QUOTA_FLAGS, { root: root.a });
    try {
      await assertRoomFor(beside, "fits.bin", fitsBeside);
    } finally {
      await beside.stop();
    }
    assert.deepEqual(Object.keys(ledgerOf(root.a).servers), [id]);
    await Deno.remove(join(root.a, "fits.bin"));
    await writeLease(Date.now() - LEASE_EXPIRY_MS - 1000);
    await writeLedger();
    const after = await startServer(QUOTA_FLAGS, { root: root.a });
    try {
      assert.deepEqual(Object.keys(ledgerOf(root.a).servers).length, 1);
      const all = await askUpload(after, "all.bin", QUOTA_BYTES);
      all.raw.close();
      assert.equal(all.reply?.type, "continue", JSON.stringify(all.reply));
    } finally {
      await after.stop();
    }
  });
});

Deno.test("a space ledger that cannot be read (torn, not fts's) is measured afresh, not trusted", async () => {
  await onLocalRoot(async (root) => {
    await Deno.writeFile(join(root.a, "kept.bin"), new Uint8Array(3 << 20));
    await Deno.mkdir(join(root.a, ".fts"), { recursive: true });
    for (const text of ['{"used": 0, "measured": tr', '{"used": -5, "measured": true}', "[]"]) {
      await Deno.writeTextFile(join(root.a, SPACE_LEDGER_FILE), text);
      const server = await startServer(QUOTA_FLAGS, { root: root.a });
      try {
        const df = JSON.parse((await runCommand(server, ["--json", "df"])).stdout);
        assert.equal(df.usedBytes, 3 << 20, text);
      } finally {
        await server.stop();
      }
    }
  });
});

Deno.test("a space ledger torn while the server runs: the counts go on from what the server last read, not from nothing", async () => {
  await onLocalRoot(async (root) => {
    const server = await startServer(QUOTA_FLAGS, { root: root.a });
    try {
      const kept = 6 << 20;
      await Deno.writeFile(join(server.dir, "kept.bin"), new Uint8Array(kept));
      assert.equal((await runCommand(server, ["put", "kept.bin"])).code, 0);
      await Deno.writeTextFile(join(root.a, SPACE_LEDGER_FILE), '{"used": 0, "meas');
      await assertRoomFor(server, "more.bin", QUOTA_BYTES - kept);
    } finally {
      await server.stop();
    }
  });
});

Deno.test("the free-space reserve holds for the root across two servers: uploads claiming room through both never fill the disk", async () => {
  await using tmpfs = await mountTmpfs("64m");
  if (tmpfs === null) return;
  const root = join(tmpfs.path, "root");
  await Deno.mkdir(root);
  const reserve = 8 << 20;
  const size = 10 << 20;
  await withTwoServers({ a: root, b: root }, async (a, b) => {
    const { bavail, bsize } = await statfs(root);
    const fit = Math.floor((Number(bavail) * Number(bsize) - reserve) / size);
    assert.ok(fit >= 2 && fit < 8, `room for ${fit}`);
    const asked: Awaited<ReturnType<typeof askUpload>>[] = [];
    try {
      for (let i = 0; i < 8; i++) asked.push(await askUpload(i % 2 ? b : a, `r${i}.bin`, size));
      const admitted = asked.filter(({ reply }) => reply?.type === "continue");
      assert.deepEqual(admitted.map((upload) => asked.indexOf(upload)), [...Array(fit).keys()]);
      for (const { reply } of asked.slice(fit)) {
        const error = reply?.error as { code: string; message: string };
        assert.equal(error?.code, "NO_SPACE", JSON.stringify(reply));
        assert.match(error.message, /reserve/);
      }
      for (const { raw } of admitted) {
        assert.equal((await finishUpload(raw, randomBytes(size)))?.ok, true);
      }
    } finally {
      for (const { raw } of asked) raw.close();
    }
  }, ["--reserve", String(reserve)]);
});
