/**
 * The root's space ledger (`.fts/space`, server/space_ledger.ts) is data from
 * disk: a ledger someone else wrote, with fields of its own or server ids
 * that are paths, neither stops a server nor grows until it breaks; every
 * step of every worker counts in it, from two processes at once too.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SPACE_LEDGER_FILE } from "../server/space_ledger.ts";
import { eagerUpload, PROJECT_DIR, RawClient, readWithin, startServer } from "./_helpers.ts";
import { inFreshRoot, QUOTA_FLAGS } from "./_shared_root.ts";

/** Uploads each test sends through a server given a crafted ledger. */
const UPLOADS = 12;

/** Sends {@link UPLOADS} small uploads through `port`, `pauseMs` apart; each must be saved. */
async function uploadsSaved(port: number, pauseMs = 0, after?: () => void): Promise<void> {
  const raw = await RawClient.open(port);
  try {
    for (let i = 0; i < UPLOADS; i++) {
      await raw.sendBytes(eagerUpload(i + 1, `f${i}`, new TextEncoder().encode(`${i}\n`)));
      const reply = await readWithin(raw);
      assert.equal(reply?.ok, true, `upload ${i}: ${JSON.stringify(reply)}`);
      after?.();
      if (pauseMs > 0) await new Promise((resolve) => setTimeout(resolve, pauseMs));
    }
  } finally {
    raw.close();
  }
}

Deno.test("a ledger carrying a field of its own (not ASCII) is rewritten without it: it never grows", async () => {
  await inFreshRoot(async (root) => {
    const server = await startServer(QUOTA_FLAGS, { root });
    try {
      const path = join(root, SPACE_LEDGER_FILE);
      const counts = JSON.parse(Deno.readTextFileSync(path));
      Deno.writeTextFileSync(path, JSON.stringify({ ...counts, note: "é".repeat(6000) }));
      const written = Deno.statSync(path).size;
      const sizes: number[] = [];
      await uploadsSaved(server.port, 0, () => sizes.push(Deno.statSync(path).size));
      assert.ok(sizes.every((size) => size === written), `sizes ${sizes} from ${written}`);
      assert.equal(JSON.parse(Deno.readTextFileSync(path)).note, undefined);
    } finally {
      await server.stop();
    }
  });
});

Deno.test("a ledger naming a server by a path, not an id, does not stop a server starting or serving", async () => {
  await inFreshRoot(async (root) => {
    Deno.mkdirSync(join(root, ".fts"));
    const crafted = { "../lock/x": { reserved: 0, disk: 0 } };
    const path = join(root, SPACE_LEDGER_FILE);
    Deno.writeTextFileSync(
      path,
      JSON.stringify({ used: 0, measured: true, written: 0, servers: crafted }),
    );
    const server = await startServer(QUOTA_FLAGS, { root });
    try {
      const counts = JSON.parse(Deno.readTextFileSync(path));
      counts.servers = { ...counts.servers, ...crafted };
      Deno.writeTextFileSync(path, JSON.stringify(counts));
      // The servers gone are looked for at most every LEASE_REFRESH_MS (10 s) as room is claimed.
      await uploadsSaved(server.port, 1000);
    } finally {
      await server.stop();
    }
  });
});

Deno.test("the ledger counts every step of two processes counting into it at once", async () => {
  await inFreshRoot(async (root) => {
    const stateDir = join(root, ".fts");
    Deno.mkdirSync(stateDir);
    const steps = 300;
    const counters = [0, 1].map(() =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-all",
          join(PROJECT_DIR, "tests", "_ledger_counter.ts"),
          stateDir,
          String(steps),
        ],
      }).output()
    );
    for (const output of await Promise.all(counters)) {
      assert.ok(output.success, new TextDecoder().decode(output.stderr));
    }
    assert.equal(JSON.parse(Deno.readTextFileSync(join(root, SPACE_LEDGER_FILE))).used, 2 * steps);
  });
});
