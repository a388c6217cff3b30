/**
 * `sync [FLAGS] LOCAL_DIR REMOTE_DIR` and `sync --down [FLAGS] REMOTE_DIR
 * LOCAL_DIR`: makes the target tree equal to the source tree, sending only
 * what differs (./sync_plan.ts decides, from two snapshots taken first,
 * ./sync_trees.ts). The contents of the source go into the target, which is
 * made if missing. Files move as `put -r` and `get -r` move them, each
 * verified end to end and published atomically, with their modification
 * times, so that the next run finds them unchanged. Where someone can answer
 * (the shell), a preview of the plan is confirmed first.
 *
 * @module
 */

import { posix } from "node:path";
import { FtsError } from "../protocol/errors.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { ConnectionError, withHint } from "./errors.ts";
import { formatBytes } from "./format.ts";
import { Progress } from "./progress.ts";
import { resolveRemote, shownRemote } from "./remote_path.ts";
import { escapeWord } from "./split_args.ts";
import { IGNORE_FILE, ignorePatterns, SyncFilter } from "./sync_filter.ts";
import {
  changesAnything,
  digestCandidates,
  planSync,
  type SyncFile,
  type SyncPlan,
} from "./sync_plan.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import { localTree, remoteTree, type SideTree } from "./sync_trees.ts";
import { terminalSafe } from "./terminal_safe.ts";
import type { TransferJob, TransferResult } from "./transfer_options.ts";

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
  /** Moves `files` (paths relative to both tops), replacing what is there when `overwrite`. */
  move(
    files: SyncFile[],
    overwrite: boolean,
    onFileDone: (index: number, result: TransferResult) => void,
    onProgress: (job: TransferJob, done: number) => void,
  ): Promise<TransferResult[]>;
  /** Makes the target's top (when missing) and `dirs` in it, parents first. */
  makeDirectories(dirs: string[]): Promise<void>;
  /** Removes one target path; false for a directory kept because it is not empty (it holds what the filter leaves out). */
  remove(path: string, dir: boolean): Promise<boolean>;
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
  const planLines = itemize(plan, flags.verbose, context);
  const document = (result: unknown) => ({
    op: "sync",
    direction: flags.down ? "down" : "up",
    source: sides.sourceShown,
    target: sides.targetShown,
    dryRun: flags["dry-run"],
    plan: planDocument(plan),
    result,
  });
  if (flags["dry-run"]) {
    return {
      output: [header, ...planLines, "dry run: nothing was changed"].join("\n"),
      json: document(null),
    };
  }
  if (!changesAnything(plan)) {
    return {
      output: [header, ...planLines, "nothing to do"].join("\n"),
      json: document({ files: 0, bytes: 0, removed: 0, seconds: 0 }),
    };
  }
  let shownAlready = false;
  if (!flags.yes && context.confirm) {
    // The preview is shown before the question (the question itself is one line).
    if (!context.json) console.log([header, ...planLines].join("\n"));
    shownAlready = true;
    if (!await context.confirm("Proceed?")) {
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
  const kept: string[] = [];
  try {
    await sides.makeDirectories(plan.directories);
    for (const [files, overwrite] of [[plan.create, false], [plan.update, true]] as const) {
      if (files.length === 0) continue;
      await sides.move(
        files,
        overwrite,
        (_index, result) => {
          filesDone += 1;
          bytes += result.size;
        },
        (job, done) => {
          if (current !== undefined && current !== job) doneBefore += currentSize;
          if (current !== job) {
            currentSize = files.find((f) => job.remote.endsWith(f.path))?.size ?? 0;
          }
          current = job;
          progress.update(doneBefore + done);
        },
      );
    }
    for (const entry of plan.remove) {
      if (!await sides.remove(entry.path, entry.dir)) kept.push(entry.path);
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
  const done = moving.length === 0
    ? `synced: removed ${removed}, nothing to send`
    : `synced ${moving.length} file${moving.length === 1 ? "" : "s"}, ${formatBytes(bytes)} in ${
      seconds.toFixed(2)
    } s` +
      ` (${formatBytes(bytes / Math.max(seconds, 1e-3))}/s), all ${
        context.style.green("verified")
      }` + (plan.remove.length > 0 ? `; removed ${removed}` : "");
  const keptLines = kept.map((path) =>
    `kept ${terminalSafe(path)}/: not empty (it holds what the filter leaves out)`
  );
  return {
    output: [...(shownAlready ? [] : [header, ...planLines]), ...keptLines, done].join("\n"),
    json: document({
      files: moving.length,
      bytes,
      removed,
      kept,
      seconds,
    }),
  };
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
    move: (files, overwrite, onFileDone, onProgress) =>
      connection.uploadMany(
        files.map((file) => ({
          local: source.placeOf(file.path),
          remote: target.placeOf(file.path),
        })),
        { overwrite, preserveMtime: true, onFileDone, onProgress },
      ),
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
    move: (files, overwrite, onFileDone, onProgress) =>
      connection.downloadMany(
        files.map((file) => ({
          remote: source.placeOf(file.path),
          local: source.localPlaceOf(file.path),
        })),
        { overwrite, preserveMtime: true, onFileDone, onProgress },
      ),
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
