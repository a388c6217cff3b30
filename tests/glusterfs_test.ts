/**
 * Several fts servers on one root on a real distributed file system: one
 * GlusterFS volume (two bricks) mounted twice, one fts server on each mount
 * (tests/_glusterfs.ts), running the scenarios of tests/_shared_root.ts.
 * Without GlusterFS (or root) the test skips with a line saying why; in CI
 * (CI=true, as `.ci/run` sets it, having installed GlusterFS) it fails instead.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { SPACE_LEDGER_FILE } from "../server/space_ledger.ts";
import { glusterMissing, startGlusterVolume } from "./_glusterfs.ts";
import { PROJECT_DIR } from "./_helpers.ts";
import {
  downloadThroughOther,
  killOneMidUpload,
  quotaAcrossServers,
  quotaAfterKill,
  resumeThroughOther,
  sameNameInterleaved,
  sameNameWithoutOverwrite,
  type SharedRoot,
  terminateStopsOne,
  twoResumersOfOnePartial,
  uploadsToDifferentNames,
} from "./_shared_root.ts";

/**
 * Pairs of opens in the create race step. The race is rare: without
 * openCreated's second open, the step failed in 2 of 6 runs here (1 pair in
 * 200 met EEXIST when one thread issued both opens at once), so it catches a
 * regression only now and then.
 */
const CREATE_RACE_ROUNDS = 600;

/** Steps each of the two ledger counters takes (tests/_ledger_counter.ts). */
const LEDGER_STEPS_PER_MOUNT = 300;

/** The ledger counter's script. */
const LEDGER_COUNTER = join(PROJECT_DIR, "tests", "_ledger_counter.ts");

const missing = glusterMissing();
if (missing !== null && Deno.env.get("CI") !== "true") {
  console.log(`glusterfs_test: skipped: ${missing}`);
}

Deno.test({
  name: "two fts servers on two mounts of one GlusterFS volume keep every promise of one server",
  ignore: missing !== null && Deno.env.get("CI") !== "true",
  fn: async (t) => {
    assert.equal(missing, null, `GlusterFS is needed in CI: ${missing}`);
    await using volume = await startGlusterVolume();
    let count = 0;
    /** A fresh root on the volume, as each mount shows it. */
    const freshRoot = async (): Promise<SharedRoot> => {
      const name = `root-${++count}`;
      await Deno.mkdir(join(volume.mountA, name));
      return { a: join(volume.mountA, name), b: join(volume.mountB, name) };
    };
    const scenarios: [string, (root: SharedRoot) => Promise<void>][] = [
      ["a file published through A downloads whole through B", downloadThroughOther],
      ["uploads through both at once to different names all land whole", uploadsToDifferentNames],
      [
        "one name without overwrite through both: one published, one EXISTS",
        sameNameWithoutOverwrite,
      ],
      ["kill -9 of A mid-upload: B completes, a restart takes over A's only", killOneMidUpload],
      ["an upload broken off on A resumes through B", resumeThroughOther],
      [
        "two sessions resume one partial through A and B at once, without overwrite: one published",
        (root) => twoResumersOfOnePartial(root, { overwrite: false }),
      ],
      ["terminate stops A; B goes on serving", terminateStopsOne],
      ["the quota holds for the root: as many uploads as fit, through A or B", quotaAcrossServers],
      ["kill -9 of A: its claims hold until A is taken over, then its partial's", quotaAfterKill],
    ];
    for (const [name, scenario] of scenarios) {
      await t.step(name, async () => await scenario(await freshRoot()));
    }
    await t.step(
      "the space ledger counts every step taken through both mounts at once",
      async () => {
        const root = await freshRoot();
        const steps = LEDGER_STEPS_PER_MOUNT;
        // Made by the first server to start, as on a root (two servers creating it through two
        // mounts at the same instant may each lock a file of their own for a moment: README).
        await Deno.mkdir(join(root.a, ".fts"));
        await Deno.writeTextFile(join(root.a, SPACE_LEDGER_FILE), "");
        const counters = [root.a, root.b].map((view) =>
          new Deno.Command(Deno.execPath(), {
            args: ["run", "--allow-all", LEDGER_COUNTER, join(view, ".fts"), String(steps)],
          }).output()
        );
        for (const output of await Promise.all(counters)) {
          assert.ok(output.success, new TextDecoder().decode(output.stderr));
        }
        const ledger = JSON.parse(await Deno.readTextFile(join(root.b, SPACE_LEDGER_FILE)));
        assert.equal(ledger.used, 2 * steps);
      },
    );
    // GlusterFS answered 1 in 200 pairs of O_CREAT opens of one new name through both mounts at
    // once with EEXIST; every server on a root opens .fts/replace.lock so, at its first replace.
    await t.step("a file both mounts create at once opens through both, every time", async () => {
      const { a, b } = await freshRoot();
      const dirs = Array.from({ length: CREATE_RACE_ROUNDS }, (_, i) => `d${i}`);
      for (const dir of dirs) await Deno.mkdir(join(a, dir));
      const arrivals = new SharedArrayBuffer(4);
      const failures = await Promise.all([a, b].map((mount) => {
        const worker = new Worker(new URL("./fixtures/open_created_rounds.ts", import.meta.url), {
          type: "module",
        });
        return new Promise<string[]>((resolve, reject) => {
          worker.onmessage = (event) => resolve(event.data);
          worker.onerror = (event) => {
            event.preventDefault();
            reject(new Error(event.message));
          };
          worker.postMessage({
            dirs: dirs.map((dir) => join(mount, dir)),
            name: "replace.lock",
            threads: 2,
            arrivals,
          });
        }).finally(() => worker.terminate());
      }));
      assert.deepEqual(failures.flat(), []);
    });
    // Without GLUSTER_VOLUME_OPTIONS (tests/_glusterfs.ts) this lost the name in 11 of 20 runs: the
    // reading mount answered the name from the inode it held before the other mount's rename.
    await t.step(
      "one name with overwrite through both, interleaved: one whole",
      async () => await sameNameInterleaved(await freshRoot()),
    );
  },
});
