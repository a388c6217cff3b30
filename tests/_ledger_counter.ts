/**
 * A process that counts into a root's space ledger: `deno run -A
 * tests/_ledger_counter.ts STATE_DIR COUNT` adds 1 to `used` COUNT times,
 * each a step of its own under the ledger's lock, as the servers' steps are.
 * tests/glusterfs_test.ts runs one on each mount of a volume at once: every
 * step must be counted, or the file system's reads under `flock` are stale.
 */

import { SpaceLedger } from "../server/space_ledger.ts";

const [stateDir, count] = Deno.args;
const ledger = SpaceLedger.open(stateDir!);
try {
  for (let i = 0; i < Number(count); i++) ledger.update((counts) => void (counts.used += 1));
} finally {
  ledger.close();
}
