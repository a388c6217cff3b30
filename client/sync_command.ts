/**
 * `sync [FLAGS] LOCAL_DIR REMOTE_DIR` and `sync --down [FLAGS] REMOTE_DIR
 * LOCAL_DIR`: makes the target tree equal to the source tree, sending only
 * what differs (./sync_plan.ts decides, from two snapshots taken first,
 * ./sync_trees.ts). The contents of the source go into the target, which is
 * made if missing. Files move as `put -r` and `get -r` move them, each
 * verified end to end and published atomically, with their modification
 * times, so that the next run finds them unchanged. Where someone can answer
 * (the shell, or a one-shot command on a terminal), a preview of the plan is
 * confirmed first.
 *
 * @module
 */

import { posix } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { ConnectionError, RemoteError, withHint } from "./errors.ts";
import { formatBytes } from "./format.ts";
import { Progress } from "./progress.ts";
import { resolveRemote, shownRemote } from "./remote_path.ts";
import { escapeWord } from "./split_args.ts";
import { IGNORE_FILE, ignorePatterns, SyncFilter } from "./sync_filter.ts";
import {
  CHANGED_SINCE_PLAN,
  changesAnything,
  digestCandidates,
  planSync,
  type SyncConflict,
  type SyncFile,
  type SyncPlan,
} from "./sync_plan.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import {
  checkSpace,
  growthBytes,
  localRoom,
  serverRoom,
  spaceLine,
  type TargetRoom,
} from "./sync_space.ts";
import { localTree, remoteTree, type SideTree } from "./sync_trees.ts";
import { terminalSafe } from "./terminal_safe.ts";
import type { ManyTransferOptions, TransferJob } from "./transfer_options.ts";
import { EAGER_UPLOAD_MAX_BYTES } from "./upload.ts";

/** The flags of `sync`. */
export const SYNC_FLAGS = {
  down: { help: "from the server to here: sync --down REMOTE_DIR LOCAL_DIR" },
  delete: { help: "remove what the target has and the source does not" },
  "dry-run": { short: "n", help: "show the plan, change nothing" },
  yes: { short: "y", help: "go ahead without the preview's question" },
  force: { short: "f", help: "replace target files newer than the source's" },
  checksum: {
    short: "c",
    help: "compare by content (the session's checksum), not size and time",
  },
  verbose: { short: "v", help: "also list the files already equal (=)" },
  exclude: {
    value: "PATTERN",
    help: "leave out what matches (repeatable; name, path/with/slash, dir/)",
  },
  include: { value: "PATTERN", help: "keep what matches although excluded (repeatable)" },
} as const satisfies CommandFlags;

/** Largest ignore file a sync reads: thousands of patterns, and a bound on what a server can make us fetch first. */
export const MAX_IGNORE_FILE_BYTES = 64 * 1024;

/** The synopsis of `sync`. */
export const SYNC_USAGE = "sync [--down] [--delete] [-nyfvc] [--exclude P] SOURCE_DIR TARGET_DIR";

/** The two sides of one sync, whichever way it goes. */
interface SyncSides {
  /** As typed, for messages and the command that continues it. */
  sourceShown: string;
  targetShown: string;
  source: SideTree;
  target: SideTree;
  /**
   * Moves `files` (paths relative to both tops): when `overwrite`, each
   * replacing the target's file only if it is still the version the target's
   * snapshot holds; otherwise onto names that must still be free. With
   * `resume`, a file continues from what an interrupted run left of it.
   */
  move(files: SyncFile[], overwrite: boolean, resume: boolean, reports: MoveReports): Promise<void>;
  /** Where the target is, for the preview's space line: "the server", "this file system". */
  targetWhere: string;
  /** The room the target has; null when it cannot be told. */
  room(): Promise<TargetRoom | null>;
  /** Makes the target's top (when missing) and `dirs` in it, parents first. */
  makeDirectories(dirs: string[]): Promise<void>;
  /** Removes one target path; false for a directory kept because it is not empty (it holds what the filter leaves out). */
  remove(path: string, dir: boolean): Promise<boolean>;
}

/** What a sync hears of each file it moves: each one done, its progress, and each refused. */
type MoveReports = Required<
  Pick<ManyTransferOptions, "onFileDone" | "onProgress" | "onFileRefused">
>;

/**
 * What a sync asks for a file it moves: where it goes, the version it may
 * replace (an update: the target's file as the plan saw it), and whether
 * to continue from data an interrupted run left (`resume`).
 */
function jobFor(
  file: SyncFile,
  places: { local: string; remote: string },
  target: SideTree,
  overwrite: boolean,
  resume: boolean,
): TransferJob {
  const version = overwrite ? target.files.get(file.path) : undefined;
  return {
    ...places,
    ...(version === undefined ? {} : { ifUnchanged: { size: version.size, mtime: version.mtime } }),
    resume,
  };
}

/**
 * Whether an upload of `size` bytes asks to continue from what the server
 * holds: only past {@link EAGER_UPLOAD_MAX_BYTES}, where the upload waits
 * for the server's go-ahead anyway (which tells the held bytes), so asking
 * costs nothing; smaller files stream without waiting, and are sent whole.
 */
function resumesUpload(size: number): boolean {
  return size > EAGER_UPLOAD_MAX_BYTES;
}

/** Runs `sync`. */
export async function syncCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const { flags, positionals: [sourceWord, targetWord] } = parseCommandArgs(
    args,
    SYNC_FLAGS,
    SYNC_USAGE,
    { min: 2, max: 2 },
  );
  const sides = flags.down
    ? await downSides(context, sourceWord!, targetWord!, flags.exclude, flags.include)
    : await upSides(context, sourceWord!, targetWord!, flags.exclude, flags.include);
  if (!sides.source.exists) {
    throw new FtsError("NOT_FOUND", `the source directory ${sides.sourceShown} does not exist`);
  }
  if (flags.checksum) await learnDigests(sides, context.connection.checksum);
  const plan = planSync(sides.source, sides.target, {
    delete: flags.delete,
    force: flags.force,
    byDigest: flags.checksum,
  });
  const moving = [...plan.create, ...plan.update];
  const movingBytes = moving.reduce((sum, file) => sum + file.size, 0);
  const header = `sync ${sides.sourceShown} -> ${sides.targetShown}: ${summarize(plan)}`;
  const space = moving.length === 0
    ? null
    : checkSpace(growthBytes(plan, sides.target), await sides.room());
  /** Said at the end of a run that leaves the plan's conflicts in place: the trees still differ. */
  const conflictSummary = plan.conflicts.length === 0
    ? []
    : [context.style.red(conflictsLeft(plan.conflicts))];
  const planLines = [
    ...itemize(plan, flags.verbose, context),
    ...(space === null ? [] : [
      space.fits
        ? spaceLine(space, sides.targetWhere)
        : context.style.red(spaceLine(space, sides.targetWhere)),
    ]),
  ];
  const described = {
    op: "sync",
    direction: flags.down ? "down" : "up",
    source: sides.sourceShown,
    target: sides.targetShown,
    dryRun: flags["dry-run"],
    plan: { ...planDocument(plan), space },
  };
  // Under --json=stream the plan goes first, each file as it completes, and the result last.
  const emit = context.jsonEvents ?? (() => {});
  emit({ event: "plan", ...described });
  const document = (result: unknown) =>
    context.jsonEvents ? { event: "result", result } : { ...described, result };
  if (flags["dry-run"]) {
    return {
      output: [header, ...planLines, "dry run: nothing was changed"].join("\n"),
      json: document(null),
    };
  }
  if (space !== null && !space.fits) {
    // It would stop part-way, having filled the target: nothing is sent.
    throw new FtsError(
      "NO_SPACE",
      `the sync ${sides.sourceShown} -> ${sides.targetShown} does not fit: it ` +
        `${spaceLine(space, sides.targetWhere).slice("does not fit: ".length)}; nothing was ` +
        "sent (make room, or leave files out with --exclude; -n shows the plan)",
    );
  }
  if (!changesAnything(plan)) {
    return {
      output: [
        header,
        ...planLines,
        ...(conflictSummary.length === 0 ? ["nothing to do"] : conflictSummary),
      ].join("\n"),
      json: document({ files: 0, bytes: 0, removed: 0, seconds: 0 }),
      incomplete: plan.conflicts.length > 0,
    };
  }
  let shownAlready = false;
  if (!flags.yes && context.confirmPlan) {
    // The preview is shown before the question (the question itself is one line).
    if (!context.json) console.log([header, ...planLines].join("\n"));
    shownAlready = true;
    if (!await context.confirmPlan("Proceed?")) {
      return { output: "nothing was changed", json: document(null) };
    }
  }

  const progress = new Progress(`${moving.length} files`, movingBytes, context.progress);
  let doneBefore = 0;
  let current: TransferJob | undefined;
  let currentSize = 0;
  let filesDone = 0;
  // The same sync continues it (what arrived is unchanged now), without asking again.
  const again = ["sync", ...(flags.yes ? [] : ["-y"]), ...args].map(escapeWord).join(" ");
  if (context.interrupt) {
    context.interrupt.describeStop = () => ({
      resumeCommand: again,
      detail: `${filesDone} of ${moving.length} files done`,
      finishes: true,
    });
  }
  let bytes = 0;
  /** Files continued from the data an interrupted run left, and from which byte. */
  const resumed: { path: string; resumedFrom: number }[] = [];
  const kept: string[] = [];
  /** Files someone else changed (or made) on the target since the plan: left as they are. */
  const changed: SyncConflict[] = [];
  /**
   * Moves `batch`; returns the files continued from held data that proved
   * stale (INTEGRITY: the data is discarded then), to be sent again whole.
   */
  const moveBatch = async (batch: SyncFile[], overwrite: boolean, resume: boolean) => {
    const stale: SyncFile[] = [];
    await sides.move(batch, overwrite, resume, {
      onFileDone: (index, result) => {
        filesDone += 1;
        bytes += result.size;
        emit({
          event: "file",
          path: batch[index]!.path,
          action: overwrite ? "update" : "create",
          size: result.size,
          resumedFrom: result.resumedFrom,
          checksum: result.digest.algorithm,
          digest: result.digest.hex,
          verified: true,
        });
        if (result.resumedFrom > 0) {
          resumed.push({ path: batch[index]!.path, resumedFrom: result.resumedFrom });
        }
      },
      onProgress: (job, done) => {
        if (current !== undefined && current !== job) doneBefore += currentSize;
        if (current !== job) {
          currentSize = batch.find((f) => job.remote.endsWith(f.path))?.size ?? 0;
        }
        current = job;
        progress.update(doneBefore + done);
      },
      onFileRefused: (index, error) => {
        const file = batch[index]!;
        if (!(error instanceof FtsError)) return false;
        if (error.code === "CHANGED" || error.code === "EXISTS") {
          changed.push({ path: file.path, reason: CHANGED_SINCE_PLAN });
          emit({ event: "changed", path: file.path, reason: CHANGED_SINCE_PLAN });
          return true;
        }
        if (error.code === "INTEGRITY" && resume) {
          stale.push(file);
          return true;
        }
        return false;
      },
    });
    return stale;
  };
  try {
    await sides.makeDirectories(plan.directories);
    for (const [files, overwrite] of [[plan.create, false], [plan.update, true]] as const) {
      if (files.length === 0) continue;
      const stale = await moveBatch(files, overwrite, true);
      if (stale.length > 0) await moveBatch(stale, overwrite, false);
    }
    for (const entry of plan.remove) {
      const removedIt = await sides.remove(entry.path, entry.dir);
      if (!removedIt) kept.push(entry.path);
      emit({ event: removedIt ? "removed" : "kept", path: entry.path, dir: entry.dir });
    }
  } catch (err) {
    if (context.interrupt?.requested) throw context.interrupt.error(err);
    if (err instanceof ConnectionError) {
      throw withHint(
        err,
        `${filesDone} of ${moving.length} files done; to continue where it stopped: ${again}`,
      );
    }
    throw err;
  } finally {
    progress.clear();
  }
  const seconds = progress.elapsedSeconds;
  const removed = plan.remove.length - kept.length;
  const resumedBytes = resumed.reduce((sum, file) => sum + file.resumedFrom, 0);
  const done = moving.length === 0
    ? `synced: removed ${removed}, nothing to send`
    : `synced ${filesDone} file${filesDone === 1 ? "" : "s"}, ${formatBytes(bytes)} in ${
      seconds.toFixed(2)
    } s` +
      ` (${formatBytes(bytes / Math.max(seconds, 1e-3))}/s), all ${
        context.style.green("verified")
      }` + (resumed.length > 0
        ? `; ${resumed.length} continued from ${formatBytes(resumedBytes)} held`
        : "") +
      (plan.remove.length > 0 ? `; removed ${removed}` : "");
  const keptLines = kept.map((path) =>
    `kept ${terminalSafe(path)}/: not empty (it holds what the filter leaves out)`
  );
  const resumedLines = resumed.map((file) =>
    `> ${terminalSafe(file.path)}: continued at ${formatBytes(file.resumedFrom)}`
  );
  const changedLines = changed.map((conflict) =>
    context.style.red(`! ${terminalSafe(conflict.path)}: ${conflict.reason}; left as it is`)
  );
  const changedSummary = changed.length === 0 ? [] : [
    context.style.red(
      `${changed.length} file${changed.length === 1 ? "" : "s"} changed on the target ` +
        "while syncing and left as they are: run the sync again to look at them anew",
    ),
  ];
  return {
    output: [
      ...(shownAlready ? [] : [header, ...planLines]),
      ...resumedLines,
      ...changedLines,
      ...keptLines,
      done,
      ...conflictSummary,
      ...changedSummary,
    ].join("\n"),
    json: document({
      files: filesDone,
      bytes,
      removed,
      kept,
      seconds,
      resumed,
      changed,
    }),
    incomplete: changed.length > 0 || plan.conflicts.length > 0,
  };
}

/**
 * The line that says the target is not yet equal to the source: the plan's
 * conflicts were left as they are, and what would settle them.
 */
function conflictsLeft(conflicts: SyncConflict[]): string {
  const newer = conflicts.filter((conflict) => conflict.reason === "newer on the target").length;
  const count = `${conflicts.length} conflict${conflicts.length === 1 ? "" : "s"}`;
  const remedies = [
    ...(newer > 0 ? ["-f replaces files newer on the target"] : []),
    ...(newer < conflicts.length
      ? [`what is in the way${newer > 0 ? " of the others" : ""} must be moved by hand`]
      : []),
  ];
  const remedy = remedies.join("; ");
  return `${count} left as ${
    conflicts.length === 1 ? "it is" : "they are"
  }, so the trees still differ (${remedy})`;
}

/** Gives the files worth comparing by content (./sync_plan.ts digestCandidates) their digests, on both sides. */
async function learnDigests(sides: SyncSides, algorithm: ChecksumName): Promise<void> {
  const paths = digestCandidates(sides.source, sides.target);
  if (paths.length === 0) return;
  for (const tree of [sides.source, sides.target]) {
    for (const [path, hex] of await tree.digests(paths, algorithm)) {
      tree.files.get(path)!.digest = hex;
    }
  }
}

/** The plan's counts in one line: `2 new (8.0 KiB), 1 updated (4.0 KiB), 1 to remove, 3 unchanged`. */
function summarize(plan: SyncPlan): string {
  const bytes = (files: SyncFile[]) => formatBytes(files.reduce((sum, f) => sum + f.size, 0));
  const parts = [
    `${plan.create.length} new (${bytes(plan.create)})`,
    `${plan.update.length} updated (${bytes(plan.update)})`,
    `${plan.remove.length} to remove`,
    `${plan.unchanged.length} unchanged`,
  ];
  if (plan.conflicts.length > 0) {
    parts.push(`${plan.conflicts.length} conflict${plan.conflicts.length === 1 ? "" : "s"}`);
  }
  return parts.join(", ");
}

/** One line per path the plan names: `+ new`, `> updated`, `- removed`, `! conflict`, `= unchanged` (verbose). */
function itemize(plan: SyncPlan, verbose: boolean, context: CommandContext): string[] {
  const shown = (path: string) => terminalSafe(path);
  return [
    ...plan.directories.map((path) => `+ ${shown(path)}/`),
    ...plan.create.map((file) => `+ ${shown(file.path)}`),
    ...plan.update.map((file) => `> ${shown(file.path)}`),
    ...plan.remove.map((entry) => `- ${shown(entry.path)}${entry.dir ? "/" : ""}`),
    ...plan.conflicts.map((conflict) =>
      context.style.red(`! ${shown(conflict.path)}: ${conflict.reason}`) +
      (conflict.reason === "newer on the target" ? " (-f replaces it)" : "")
    ),
    ...(verbose ? plan.unchanged.map((file) => `= ${shown(file.path)}`) : []),
  ];
}

/** The plan as data, for `--json`. */
function planDocument(plan: SyncPlan) {
  return {
    directories: plan.directories,
    create: plan.create,
    update: plan.update,
    remove: plan.remove,
    unchanged: plan.unchanged.length,
    conflicts: plan.conflicts,
  };
}

/** The filter of one sync: the flags' patterns, and the source tree's ignore file (read by `readIgnore`). */
async function filterFor(
  excludes: string[],
  includes: string[],
  readIgnore: () => Promise<string | null>,
): Promise<SyncFilter> {
  const fromFile = ignorePatterns(await readIgnore() ?? "");
  return new SyncFilter([...fromFile, ...excludes], includes);
}

/** From here to the server. */
async function upSides(
  context: CommandContext,
  localTop: string,
  remoteWord: string,
  excludes: string[],
  includes: string[],
): Promise<SyncSides> {
  const connection = context.connection;
  const remoteTop = resolveRemote(context.remoteDir, remoteWord);
  const filter = await filterFor(
    excludes,
    includes,
    () => Deno.readTextFile(posix.join(localTop, IGNORE_FILE)).catch(() => null),
  );
  const source = await localTree(localTop, filter);
  const target = await remoteTree(connection, remoteTop, localTop, filter);
  return {
    sourceShown: localTop,
    targetShown: shownRemote(remoteTop),
    source,
    target,
    targetWhere: "the server",
    room: () =>
      connection.df().then(serverRoom, (err) => {
        // A server without df, or a role that may not ask: the preview says it cannot tell.
        if (err instanceof RemoteError) return null;
        throw err;
      }),
    async move(files, overwrite, resume, reports) {
      await connection.uploadMany(
        files.map((file) =>
          jobFor(
            file,
            {
              local: source.placeOf(file.path),
              remote: target.placeOf(file.path),
            },
            target,
            overwrite,
            resume && resumesUpload(file.size),
          )
        ),
        { overwrite, preserveMtime: true, ...reports },
      );
    },
    async makeDirectories(dirs) {
      const all = target.exists || remoteTop === "" ? dirs : ["", ...dirs];
      for (const dir of all) {
        await connection.mkdir(dir === "" ? remoteTop : target.placeOf(dir)).catch((err) => {
          if (!(err instanceof FtsError && err.code === "EXISTS")) throw err;
        });
      }
    },
    remove: (path) =>
      connection.delete(target.placeOf(path)).then(() => true, (err) => {
        if (err instanceof FtsError && err.code === "NOT_EMPTY") return false;
        throw err;
      }),
  };
}

/** From the server to here. */
async function downSides(
  context: CommandContext,
  remoteWord: string,
  localTop: string,
  excludes: string[],
  includes: string[],
): Promise<SyncSides> {
  const connection = context.connection;
  const remoteTop = resolveRemote(context.remoteDir, remoteWord);
  const ignoreName = remoteTop === "" ? IGNORE_FILE : `${remoteTop}/${IGNORE_FILE}`;
  const filter = await filterFor(excludes, includes, async () => {
    const listed = await connection.list(remoteTop).catch((err) => {
      if (err instanceof FtsError && err.code === "NOT_FOUND") return [];
      throw err;
    });
    const entry = listed.find((e) => e.name === IGNORE_FILE && e.type === "file");
    if (entry === undefined) return null;
    if (entry.size > MAX_IGNORE_FILE_BYTES) {
      throw new FtsError(
        "TOO_LARGE",
        `${shownRemote(ignoreName)} holds ${entry.size} bytes, more than the ` +
          `${MAX_IGNORE_FILE_BYTES} an ignore file may`,
      );
    }
    const dir = await Deno.makeTempDir({ prefix: "fts-sync-" });
    try {
      const copy = posix.join(dir, IGNORE_FILE);
      await connection.download(ignoreName, copy);
      return await Deno.readTextFile(copy);
    } catch (err) {
      if (err instanceof FtsError && err.code === "NOT_FOUND") return null;
      throw err;
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
  const source = await remoteTree(connection, remoteTop, localTop, filter);
  const target = await localTree(localTop, filter);
  return {
    sourceShown: shownRemote(remoteTop),
    targetShown: localTop,
    source,
    target,
    targetWhere: "this file system",
    room: () => localRoom(localTop).catch(() => null),
    async move(files, overwrite, resume, reports) {
      await connection.downloadMany(
        files.map((file) =>
          jobFor(
            file,
            {
              remote: source.placeOf(file.path),
              local: source.localPlaceOf(file.path),
            },
            target,
            overwrite,
            resume,
          )
        ),
        { overwrite, preserveMtime: true, ...reports },
      );
    },
    async makeDirectories(dirs) {
      await Deno.mkdir(localTop, { recursive: true });
      for (const dir of dirs) {
        await Deno.mkdir(source.localPlaceOf(dir)).catch((err) => {
          if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
        });
      }
    },
    remove: (path, dir) =>
      Deno.remove(target.placeOf(path)).then(() => true, (err) => {
        if (dir && (err as { code?: string }).code === "ENOTEMPTY") return false;
        if (err instanceof Deno.errors.NotFound) return true;
        throw err;
      }),
  };
}
