/**
 * Committing received files as a group: the server's uploads on one
 * connection, the client's downloads of one command. When several files
 * arrive back to back, each fsync is a wait on the disk; issued together
 * they cost about one. The path of a group:
 *
 * every member's data fsynced, all at once (each on a thread) → each member
 * moved onto its name, one at a time, in order → each distinct directory
 * fsynced once, all at once → each member's outcome, in order.
 *
 * No member takes its name before every member's data is durable, and no
 * outcome is known before the names are: a member is reported done only
 * when its data and its name would survive a crash. A failure (an fsync
 * error, a name taken) stops its own member only; a directory's failed
 * fsync fails the members named in it. When a group closes is the caller's
 * choice: when no further file is waiting to be read ({@link ReadAhead},
 * ./read_ahead.ts), never later, so a lone file is not kept waiting, or at
 * {@link MAX_GROUP_FILES} or {@link MAX_GROUP_BYTES}.
 *
 * @module
 */

import { syncDirectory } from "./sync_directory.ts";

/**
 * Most files in one group: as many as a client keeps in flight (its
 * pipeline's depth), so a group never holds back a reply the client is
 * waiting for before it sends more; each holds a descriptor until it commits.
 */
export const MAX_GROUP_FILES = 64;

/**
 * Most bytes of data in one group, counted as files join: past this, the
 * fsyncs cost the data written rather than the wait per file that a group
 * saves, and the first file's reply should not wait for more.
 */
export const MAX_GROUP_BYTES = 16 * 1024 * 1024;

/** A received and verified file, not yet durable nor under its name: one member of a group. */
export interface CommitMember {
  /**
   * Makes the data durable (fsync, unless the file system is in memory) and
   * closes the file. Run for every member at once.
   */
  settle(): Promise<void>;
  /**
   * Moves the file onto its name, atomically. Returns the directory whose
   * entries changed, to be fsynced once for the group, or null when nothing
   * needs syncing (a file system in memory). Run one member at a time, in
   * order, and only once every member has settled.
   */
  place(): Promise<string | null> | string | null;
}

/** What became of one member: committed, or the error that stopped it. */
export type CommitOutcome = { ok: true } | { ok: false; error: unknown };

/**
 * Commits `members` as one group (see the module's description) and
 * returns each one's outcome, in order. Never throws for a member's
 * failure; a member that failed has not taken its name, unless its
 * directory's fsync failed after it did.
 *
 * @example
 * ```ts
 * import { commitGroup } from "./commit_group.ts";
 * const dir = await Deno.makeTempDir();
 * const members = ["a", "b"].map((name) => ({
 *   file: Deno.openSync(`${dir}/${name}.tmp`, { write: true, createNew: true }),
 *   name,
 * })).map(({ file, name }) => ({
 *   async settle() {
 *     await file.sync();
 *     file.close();
 *   },
 *   place() {
 *     Deno.renameSync(`${dir}/${name}.tmp`, `${dir}/${name}`);
 *     return dir;
 *   },
 * }));
 * const outcomes = await commitGroup(members);
 * console.assert(outcomes.every((outcome) => outcome.ok));
 * console.assert(Deno.statSync(`${dir}/b`).isFile);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function commitGroup(members: readonly CommitMember[]): Promise<CommitOutcome[]> {
  const outcomes: CommitOutcome[] = members.map(() => ({ ok: true }));
  const settled = await Promise.allSettled(members.map((member) => member.settle()));
  const membersIn = new Map<string, number[]>();
  for (const [index, member] of members.entries()) {
    const settling = settled[index]!;
    if (settling.status === "rejected") {
      outcomes[index] = { ok: false, error: settling.reason };
      continue;
    }
    try {
      const directory = await member.place();
      if (directory === null) continue;
      const named = membersIn.get(directory);
      if (named === undefined) membersIn.set(directory, [index]);
      else named.push(index);
    } catch (error) {
      outcomes[index] = { ok: false, error };
    }
  }
  await Promise.all([...membersIn].map(async ([directory, indexes]) => {
    try {
      await syncDirectory(directory);
    } catch (error) {
      for (const index of indexes) outcomes[index] = { ok: false, error };
    }
  }));
  return outcomes;
}
