import assert from "node:assert/strict";
import { join } from "node:path";
import { PARTIAL_EXPIRY_MS } from "../protocol/limits.ts";
import { PARTIAL_SWEEP_INTERVAL_MS } from "../server/partials.ts";
import { Storage } from "../server/storage.ts";
import { listTree } from "./_helpers.ts";

/** Writes a partial upload's file whose last change was `ageMs` before now. */
async function writePartial(path: string, ageMs: number): Promise<void> {
  await Deno.writeTextFile(path, "kept for a resume");
  const then = new Date(Date.now() - ageMs);
  await Deno.utime(path, then, then);
}

Deno.test({
  name: "beginUpload() sweeps expired partials while serving, at most once per sweep interval",
  // Storage.open() holds the root's lock for as long as the process lives.
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "fts-sweep-" });
    const root = join(dir, "root");
    const partials = join(root, ".fts", "partial");
    const realNow = Date.now;
    try {
      const storage = await Storage.open(root, { quotaBytes: null, reserveBytes: 0 });
      const expired = PARTIAL_EXPIRY_MS + 60_000;
      await writePartial(join(partials, "stale-1"), expired);
      await writePartial(join(partials, "fresh-1"), 0);
      const beginAndDiscard = async () => {
        const upload = await storage.beginUpload(["a.txt"], {
          size: 1,
          overwrite: false,
          resumable: false,
          resume: false,
        });
        await upload.discard();
      };

      // Storage.open() has just swept: an upload now leaves the partials alone.
      await beginAndDiscard();
      assert.deepEqual(await listTree(partials), ["fresh-1", "stale-1"]);

      // A sweep interval later, the next upload removes the expired one only.
      const later = realNow() + PARTIAL_SWEEP_INTERVAL_MS;
      Date.now = () => later;
      try {
        await beginAndDiscard();
      } finally {
        Date.now = realNow;
      }
      assert.deepEqual(await listTree(partials), ["fresh-1"]);

      // Then not again until another interval has passed.
      await writePartial(join(partials, "stale-2"), expired);
      assert.equal(
        await storage.sweepExpiredPartials(later + PARTIAL_SWEEP_INTERVAL_MS - 1),
        false,
      );
      assert.deepEqual(await listTree(partials), ["fresh-1", "stale-2"]);
      assert.equal(await storage.sweepExpiredPartials(later + PARTIAL_SWEEP_INTERVAL_MS), true);
      assert.deepEqual(await listTree(partials), ["fresh-1"]);
    } finally {
      Date.now = realNow;
      await Deno.remove(dir, { recursive: true });
    }
  },
});
