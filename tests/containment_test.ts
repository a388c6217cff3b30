/**
 * Containment on its own, against a temporary tree with links: isInside(), and
 * ServedRoot's walk (resolveExisting, checkedExisting, stepInto,
 * existingParent, makeDirectories), with the after-the-fact identity checks.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import {
  assertCreatedIn,
  assertUnchanged,
  identityOf,
  isInside,
  removeCreated,
  ServedRoot,
} from "../server/containment.ts";
import { ENTRY_BYTES } from "../server/entry_cost.ts";
import { SpaceBudget } from "../server/space.ts";

/**
 * A root (resolved) with a state directory `.fts` and, beside it, a directory
 * outside. In root: `docs/` (with `a.txt`), `file.txt`, and links `in` →
 * docs, `out` → outside, `state` → .fts, `dangling` → nowhere, `tofile` → file.txt.
 */
async function withTree(
  test: (tree: { root: string; outside: string; served: ServedRoot }) => Promise<void> | void,
): Promise<void> {
  const base = Deno.realPathSync(await Deno.makeTempDir({ prefix: "fts-containment-" }));
  const root = join(base, "root");
  const outside = join(base, "outside");
  try {
    for (const dir of [root, outside, join(root, ".fts"), join(root, "docs")]) Deno.mkdirSync(dir);
    Deno.mkdirSync(join(root, ".fts", "partial"));
    Deno.writeTextFileSync(join(root, "docs", "a.txt"), "a");
    Deno.writeTextFileSync(join(root, "file.txt"), "f");
    Deno.writeTextFileSync(join(outside, "secret.txt"), "s");
    Deno.symlinkSync(join(root, "docs"), join(root, "in"));
    Deno.symlinkSync(outside, join(root, "out"));
    Deno.symlinkSync(join(root, ".fts"), join(root, "state"));
    Deno.symlinkSync(join(root, "nowhere"), join(root, "dangling"));
    Deno.symlinkSync(join(root, "file.txt"), join(root, "tofile"));
    await test({ root, outside, served: ServedRoot.open(root, join(root, ".fts")) });
  } finally {
    await Deno.remove(base, { recursive: true });
  }
}

/** Asserts that `run` throws an FtsError with `code`. */
async function assertCode(run: () => unknown, code: string): Promise<void> {
  await assert.rejects(async () => await run(), (err) => {
    assert.ok(err instanceof FtsError, `expected FtsError ${code}, got ${err}`);
    assert.equal(err.code, code);
    return true;
  });
}

/** A budget without a quota: it still counts what directories cost. */
function budgetFor(root: string): Promise<SpaceBudget> {
  return SpaceBudget.open(root, { quotaBytes: null, reserveBytes: 0 }, {
    stateDir: join(root, ".fts"),
    partialDir: join(root, ".fts", "partial"),
  });
}

Deno.test("isInside() takes the root itself and paths beneath it, not siblings sharing a prefix", () => {
  assert.equal(isInside("/a", "/a"), true);
  assert.equal(isInside("/a", "/a/b"), true);
  assert.equal(isInside("/a", "/a/b/c"), true);
  assert.equal(isInside("/a", "/ab"), false);
  assert.equal(isInside("/a", "/ab/c"), false);
  assert.equal(isInside("/a", "/"), false);
  assert.equal(isInside("/a/b", "/a"), false);
});

Deno.test("isInside() with trailing separators: a root given with one is the same root", () => {
  assert.equal(isInside("/a/", "/a/b"), true);
  assert.equal(isInside("/a/", "/ab"), false);
  assert.equal(isInside("/a", "/a/"), true);
  assert.equal(isInside("/", "/"), true);
  assert.equal(isInside("/", "/anything"), true);
});

Deno.test("ServedRoot.open() refuses a root that is not a directory, or a link to one", async () => {
  await withTree(({ root }) => {
    assert.throws(() => ServedRoot.open(join(root, "file.txt"), join(root, ".fts")));
    assert.throws(() => ServedRoot.open(join(root, "in"), join(root, ".fts")));
  });
});

Deno.test("resolveExisting() follows a link inside root to inside", async () => {
  await withTree(({ root, served }) => {
    assert.equal(served.resolveExisting(["in"]), join(root, "docs"));
    assert.equal(served.resolveExisting(["in", "a.txt"]), join(root, "docs", "a.txt"));
    assert.equal(served.checkedExisting(["in"]).path, join(root, "docs"));
    assert.equal(served.resolveExisting([]), root);
  });
});

Deno.test("resolveExisting() refuses a link to outside root, and one into the state directory", async () => {
  await withTree(async ({ served }) => {
    await assertCode(() => served.resolveExisting(["out"]), "DENIED");
    await assertCode(() => served.resolveExisting(["out", "secret.txt"]), "DENIED");
    await assertCode(() => served.resolveExisting(["state"]), "DENIED");
    await assertCode(() => served.resolveExisting([".fts"]), "DENIED");
  });
});

Deno.test("resolveExisting() of a dangling link or a missing name throws NotFound", async () => {
  await withTree(({ served }) => {
    assert.throws(() => served.resolveExisting(["dangling"]), Deno.errors.NotFound);
    assert.throws(() => served.resolveExisting(["missing"]), Deno.errors.NotFound);
  });
});

Deno.test("checkedExisting() of a file, or a link to one, is WRONG_TYPE", async () => {
  await withTree(async ({ served }) => {
    await assertCode(() => served.checkedExisting(["file.txt"]), "WRONG_TYPE");
    await assertCode(() => served.checkedExisting(["tofile"]), "WRONG_TYPE");
  });
});

Deno.test("stepInto() follows inside, refuses outside and the state directory, null when missing", async () => {
  await withTree(async ({ root, served }) => {
    const top = served.checkedRoot();
    assert.equal(served.stepInto(top, "docs", ["docs"])?.path, join(root, "docs"));
    assert.equal(served.stepInto(top, "in", ["in"])?.path, join(root, "docs"));
    assert.equal(served.stepInto(top, "missing", ["missing"]), null);
    await assertCode(() => served.stepInto(top, "out", ["out"]), "DENIED");
    await assertCode(() => served.stepInto(top, "state", ["state"]), "DENIED");
    await assertCode(() => served.stepInto(top, "file.txt", ["file.txt"]), "WRONG_TYPE");
    await assertCode(() => served.stepInto(top, "tofile", ["tofile"]), "WRONG_TYPE");
    assert.throws(() => served.stepInto(top, "dangling", ["dangling"]), Deno.errors.NotFound);
  });
});

Deno.test("existingParent() is null for a missing step or a dangling link, and refuses links out", async () => {
  await withTree(async ({ root, served }) => {
    assert.equal(served.existingParent(["in", "new.txt"])?.path, join(root, "docs"));
    assert.equal(served.existingParent(["new.txt"])?.path, root);
    assert.equal(served.existingParent(["missing", "deeper", "new.txt"]), null);
    assert.equal(served.existingParent(["dangling", "new.txt"]), null);
    await assertCode(() => served.existingParent(["out", "new.txt"]), "DENIED");
    await assertCode(() => served.existingParent(["file.txt", "new.txt"]), "WRONG_TYPE");
  });
});

Deno.test("makeDirectories() creates what is missing, each costing ENTRY_BYTES, synced in its parent", async () => {
  await withTree(async ({ root, served }) => {
    const space = await budgetFor(root);
    const synced: string[] = [];
    const made = await served.makeDirectories(["in", "x", "y"], {
      space,
      syncDirectory: (path) => Promise.resolve(void synced.push(path)),
    });
    assert.equal(made.parent.path, join(root, "docs", "x", "y"));
    assert.deepEqual(made.created, [join(root, "docs", "x"), join(root, "docs", "x", "y")]);
    assert.deepEqual(synced, [join(root, "docs"), join(root, "docs", "x")]);
    assert.equal(space.usedBytes, 2 * ENTRY_BYTES);
    removeCreated(made.created, space);
    assert.equal(space.usedBytes, 0);
    assert.throws(() => Deno.lstatSync(join(root, "docs", "x")), Deno.errors.NotFound);
  });
});

Deno.test("makeDirectories() refuses a link out or a file on the way, and removes what it made", async () => {
  await withTree(async ({ root, outside, served }) => {
    const space = await budgetFor(root);
    const making = { space, syncDirectory: () => Promise.resolve() };
    await assertCode(() => served.makeDirectories(["out", "x"], making), "DENIED");
    await assertCode(() => served.makeDirectories(["state", "x"], making), "DENIED");
    await assertCode(() => served.makeDirectories(["file.txt", "x"], making), "WRONG_TYPE");
    await assertCode(() => served.makeDirectories(["tofile", "x"], making), "WRONG_TYPE");
    assert.deepEqual([...Deno.readDirSync(outside)].map((e) => e.name), ["secret.txt"]);
    assert.equal(space.usedBytes, 0);
  });
});

Deno.test("makeDirectories() that fails part-way (NO_SPACE) removes the directories it made", async () => {
  await withTree(async ({ root, served }) => {
    const limits = (quotaBytes: number) => ({ quotaBytes, reserveBytes: 0 });
    const dirs = { stateDir: join(root, ".fts"), partialDir: join(root, ".fts", "partial") };
    const measured = await SpaceBudget.open(root, limits(Number.MAX_SAFE_INTEGER), dirs);
    // Room for one directory more, not two.
    const space = await SpaceBudget.open(root, limits(measured.usedBytes + ENTRY_BYTES), dirs);
    const making = { space, syncDirectory: () => Promise.resolve() };
    await assertCode(() => served.makeDirectories(["p", "q"], making), "NO_SPACE");
    assert.throws(() => Deno.lstatSync(join(root, "p")), Deno.errors.NotFound);
    assert.equal(space.usedBytes, measured.usedBytes);
  });
});

Deno.test("makeDirectories() claims every missing level at once and gives back one made meanwhile", async () => {
  await withTree(async ({ root, served }) => {
    const claims: number[] = [];
    const settled: number[] = [];
    const space = {
      reserveDirectories: (count: number) => {
        claims.push(count);
        // Another session makes the first level while this one waits for its claim.
        Deno.mkdirSync(join(root, "p"));
        return Promise.resolve({ settle: (made: number) => void settled.push(made) });
      },
      freed: () => {},
    };
    const made = await served.makeDirectories(["p", "q", "r"], {
      space,
      syncDirectory: () => Promise.resolve(),
    });
    assert.deepEqual(claims, [3]);
    assert.deepEqual(settled, [2]);
    assert.deepEqual(made.created, [join(root, "p", "q"), join(root, "p", "q", "r")]);
    await assertCode(
      () =>
        served.makeDirectories(["p", "q"], {
          space,
          syncDirectory: () => Promise.resolve(),
          lastMustBeNew: true,
        }),
      "EXISTS",
    );
    assert.deepEqual(claims, [3]);
  });
});

Deno.test("a root replaced by a link is refused, never followed", async () => {
  await withTree(async ({ root, outside }) => {
    const served = ServedRoot.open(root, join(root, ".fts"));
    Deno.renameSync(root, `${root}.moved`);
    try {
      Deno.symlinkSync(outside, root);
      await assertCode(() => served.checkedRoot(), "DENIED");
      await assertCode(() => served.resolveExisting(["secret.txt"]), "DENIED");
      await assertCode(() => served.existingParent(["secret.txt"]), "DENIED");
      Deno.removeSync(root);
      // Another directory in its place is refused as well: its identity differs.
      Deno.mkdirSync(root);
      await assertCode(() => served.checkedRoot(), "DENIED");
      Deno.removeSync(root);
    } finally {
      Deno.renameSync(`${root}.moved`, root);
    }
    assert.equal(served.checkedRoot().path, root);
  });
});

Deno.test("assertCreatedIn() after its parent was swapped: undoes the entry and refuses", async () => {
  await withTree(async ({ root }) => {
    const dir = join(root, "docs");
    const checked = identityOf(dir, Deno.lstatSync(dir));
    // In place: the entry is where it was made.
    const made = join(dir, "made.txt");
    Deno.writeTextFileSync(made, "m");
    assertCreatedIn(checked, made, Deno.lstatSync(made), ["docs", "made.txt"]);
    assertUnchanged(checked, ["docs"]);
    // The checked directory moved aside and another put in its place.
    Deno.renameSync(dir, join(root, "docs.aside"));
    Deno.mkdirSync(dir);
    const swapped = join(dir, "new.txt");
    Deno.writeTextFileSync(swapped, "n");
    let undone = false;
    await assertCode(
      () =>
        assertCreatedIn(checked, swapped, Deno.lstatSync(swapped), ["docs", "new.txt"], () => {
          undone = true;
        }),
      "DENIED",
    );
    assert.equal(undone, true);
    await assertCode(() => assertUnchanged(checked, ["docs"]), "DENIED");
  });
});

Deno.test("assertCreatedIn() refuses when the entry at the path is another file", async () => {
  await withTree(async ({ root }) => {
    const dir = join(root, "docs");
    const checked = identityOf(dir, Deno.lstatSync(dir));
    const path = join(dir, "a.txt");
    const before = Deno.lstatSync(path);
    // Moved aside, not removed: its inode stays taken, so the new file has another.
    Deno.renameSync(path, join(dir, "a.aside"));
    Deno.writeTextFileSync(join(dir, "other"), "o");
    Deno.renameSync(join(dir, "other"), path);
    let undone = false;
    await assertCode(
      () => assertCreatedIn(checked, path, before, ["docs", "a.txt"], () => undone = true),
      "DENIED",
    );
    assert.equal(undone, false);
  });
});
