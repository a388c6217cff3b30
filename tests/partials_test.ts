/**
 * HeldPartials on its own: where a partial is kept, taking it over for a
 * resume, keeping one when an upload breaks off, and what each step counts
 * against the space budget.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import { ENTRY_BYTES } from "../server/entry_cost.ts";
import {
  HeldPartials,
  NAME_CLEANUP_AGE_MS,
  PARTIAL_SWEEP_INTERVAL_MS,
} from "../server/partials.ts";
import { SpaceBudget } from "../server/space.ts";

/** A partial directory and a temporary directory beside it, with a budget counting (no quota). */
async function withPartials(
  test: (
    dirs: { partials: HeldPartials; tmp: string; budget: SpaceBudget },
  ) => Promise<void> | void,
): Promise<void> {
  const base = await Deno.makeTempDir({ prefix: "fts-partials-" });
  try {
    const partialDir = join(base, "partial");
    const tmp = join(base, "tmp");
    Deno.mkdirSync(partialDir);
    Deno.mkdirSync(tmp);
    const partials = new HeldPartials(partialDir);
    const budget = await SpaceBudget.open(base, { quotaBytes: null, reserveBytes: 0 }, {
      stateDir: base,
      partialDir,
    });
    partials.budget = budget;
    await test({ partials, tmp, budget });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

Deno.test("HeldPartials.keepInterrupted() keeps the bytes as held, and take() hands them back", async () => {
  await withPartials(({ partials, tmp, budget }) => {
    const partialPath = partials.pathFor(["a.bin"], 10_000);
    const tmpPath = join(tmp, "upload");
    Deno.writeFileSync(tmpPath, new Uint8Array(6_000));
    partials.keepInterrupted(tmpPath, partialPath);
    assert.equal(partials.heldBytes(["a.bin"], 10_000), 6_000);
    assert.equal(budget.usedBytes, 6_000);
    assert.equal(partials.take(partialPath, join(tmp, "resumed"), 10_000), 6_000);
    assert.equal(partials.heldBytes(["a.bin"], 10_000), 0);
    // Still counted: a resume's reservation takes them over (SpaceBudget.reserve's heldBytes).
    assert.equal(budget.usedBytes, 6_000);
  });
});

Deno.test("HeldPartials.keepInterrupted() of an empty upload keeps nothing and costs nothing", async () => {
  await withPartials(({ partials, tmp, budget }) => {
    const tmpPath = join(tmp, "upload");
    Deno.writeFileSync(tmpPath, new Uint8Array(0));
    partials.keepInterrupted(tmpPath, partials.pathFor(["a.bin"], 10));
    assert.deepEqual([...Deno.readDirSync(partials.dir)], []);
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
    assert.equal(budget.usedBytes, 0);
  });
});

Deno.test("HeldPartials.keep() over an older partial of the same name and size counts it once", async () => {
  await withPartials(({ partials, tmp, budget }) => {
    const partialPath = partials.pathFor(["a.bin"], 100_000);
    for (const bytes of [50_000, 30_000]) {
      const tmpPath = join(tmp, "upload");
      Deno.writeFileSync(tmpPath, new Uint8Array(bytes));
      partials.keep(tmpPath, partialPath, bytes);
    }
    assert.equal(partials.heldBytes(["a.bin"], 100_000), 30_000);
    assert.equal(budget.usedBytes, 30_000);
  });
});

Deno.test("HeldPartials.take() of a partial larger than the upload removes it and frees its cost", async () => {
  await withPartials(({ partials, tmp, budget }) => {
    const partialPath = partials.pathFor(["a.bin"], 2_000);
    const tmpPath = join(tmp, "upload");
    Deno.writeFileSync(tmpPath, new Uint8Array(3_000));
    partials.keep(tmpPath, partialPath, 3_000);
    assert.equal(budget.usedBytes, ENTRY_BYTES);
    assert.equal(partials.take(partialPath, join(tmp, "resumed"), 2_000), 0);
    assert.deepEqual([...Deno.readDirSync(tmp)], []);
    assert.equal(budget.usedBytes, 0);
    assert.equal(partials.take(partialPath, join(tmp, "again"), 2_000), 0); // None left.
  });
});

Deno.test("HeldPartials.removeExpired() removes partials past PARTIAL_EXPIRY_MS only", async () => {
  await withPartials(async ({ partials, tmp, budget }) => {
    const tmpPath = join(tmp, "upload");
    Deno.writeFileSync(tmpPath, new Uint8Array(5_000));
    partials.keep(tmpPath, partials.pathFor(["a.bin"], 9_000), 5_000);
    await partials.removeExpired(Date.now());
    assert.equal(budget.usedBytes, 5_000);
    await partials.removeExpired(Date.now() + PARTIAL_EXPIRY_MS + 60_000);
    assert.deepEqual([...Deno.readDirSync(partials.dir)], []);
    assert.equal(budget.usedBytes, 0);
  });
});

Deno.test("HeldPartials.beginSweep() is due once per PARTIAL_SWEEP_INTERVAL_MS", () => {
  const partials = new HeldPartials("/nonexistent");
  assert.equal(partials.beginSweep(1_000), true);
  assert.equal(partials.beginSweep(1_000 + PARTIAL_SWEEP_INTERVAL_MS - 1), false);
  assert.equal(partials.beginSweep(1_000 + PARTIAL_SWEEP_INTERVAL_MS), true);
});

Deno.test("HeldPartials.recoverInFlight() keeps only temporaries with a recorded name, bytes, and no more than declared", async () => {
  await withPartials(async ({ partials, tmp }) => {
    const name = (file: string) => ({ segments: [file], size: 1_000 });
    const write = (file: string, bytes: number, recorded: boolean) => {
      if (recorded) partials.recordInFlight(name(file));
      const path = join(tmp, partials.temporaryName(name(file), true));
      Deno.writeFileSync(path, new Uint8Array(bytes));
    };
    write("kept.bin", 600, true);
    write("unnamed.bin", 600, false);
    write("empty.bin", 0, true);
    write("over.bin", 1_001, true);
    Deno.writeFileSync(join(tmp, crypto.randomUUID()), new Uint8Array(600)); // A small upload's.
    // One kept, costing what a file of 600 bytes does against the quota.
    assert.deepEqual(await partials.recoverInFlight(tmp), { count: 1, bytes: ENTRY_BYTES });
    assert.equal(partials.heldBytes(["kept.bin"], 1_000), 600);
    for (const file of ["unnamed.bin", "empty.bin", "over.bin"]) {
      assert.equal(partials.heldBytes([file], 1_000), 0, file);
    }
    // Names recorded within NAME_CLEANUP_AGE_MS stay: another server may be about to use them.
    await partials.removeStaleNames();
    assert.equal([...Deno.readDirSync(partials.names.dir)].length, 3);
    await partials.removeStaleNames(new Set(), Date.now() + NAME_CLEANUP_AGE_MS + 1000);
    assert.deepEqual((await partials.list(Date.now())).map((p) => [p.segments, p.held]), [
      [["kept.bin"], 600],
    ]);
    assert.deepEqual([...Deno.readDirSync(partials.names.dir)].map((e) => e.name), [
      partials.pathFor(["kept.bin"], 1_000).split("/").at(-1),
    ]);
  });
});
