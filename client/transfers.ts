/**
 * The upload and download commands: one file, a glob pattern's matches, or
 * a whole tree (`-r`); each file verified by its checksum; one progress line for
 * the whole transfer.
 *
 * @module
 */

import { basename } from "node:path";
import type { ChecksumName, Digest } from "../protocol/checksum.ts";
import { FtsError } from "../protocol/errors.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { ConnectionError, RemoteError, withHint } from "./errors.ts";
import { formatBytes } from "./format.ts";
import { isGlob } from "./glob.ts";
import { filesAlreadyThere } from "./already_there.ts";
import { heldLocally } from "./partial_download.ts";
import { typedRemote } from "./remote_path.ts";
import { escapeWord } from "./split_args.ts";
import type { PlannedFile } from "./plan_tree.ts";
import type { Entry } from "../protocol/entry.ts";
import { Progress } from "./progress.ts";
import { terminalSafe } from "./terminal_safe.ts";
import {
  makeLocalDirectories,
  planDownload,
  planUpload,
  type TransferPlanOptions,
} from "./transfer_plan.ts";
import type { ManyTransferOptions, TransferJob, TransferResult } from "./transfer_options.ts";

/** The flags both transfer commands take, for parsing and for `help`. */
export const TRANSFER_FLAGS = {
  force: { short: "f", help: "overwrite an existing file" },
  recursive: { short: "r", help: "whole directory trees, every file verified" },
  preserve: { short: "p", help: "keep modification times and mode bits" },
  resume: { help: "continue an interrupted transfer from the data it left" },
} as const satisfies CommandFlags;

/** The flags of `upload`: the transfer flags, and one only an upload can honour. */
export const UPLOAD_FLAGS = {
  ...TRANSFER_FLAGS,
  "if-unchanged": {
    help: "replace a target only if no one changed it since this command started",
  },
} as const satisfies CommandFlags;

/** The synopsis of `upload`. */
export const UPLOAD_USAGE = "upload [-f] [-r] [-p] [--resume] [--if-unchanged] LOCAL... [REMOTE]";

/** The synopsis of `download`. */
export const DOWNLOAD_USAGE = "download [-f] [-r] [-p] [--resume] REMOTE... [LOCAL]";

/** `upload [-f] [-r] [-p] [--resume] [--if-unchanged] LOCAL... [REMOTE]`. */
export async function uploadCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const { flags, positionals } = parseCommandArgs(args, UPLOAD_FLAGS, UPLOAD_USAGE, { min: 1 });
  const request = planOptions(context, positionals, flags.recursive);
  const sources = request.sources;
  const plan = await planUpload(context.connection, request);
  const files = plan.files;
  if (files.length === 1 && plan.trees === 0 && !isGlob(sources[0]!)) {
    if (!flags.resume && context.offerResume) {
      const file = files[0]!;
      const size = await Deno.stat(file.local).then((info) => info.size, () => -1);
      // Whatever keeps the server from telling (a role, a bad name), the upload itself reports.
      const held = size > 0
        ? await context.connection.heldBytes(file.remote, size).catch((err) => {
          if (err instanceof RemoteError) return 0;
          throw err;
        })
        : 0;
      // Without -f a file there already refuses the upload, resumed or not: nothing to offer.
      const blocked = held > 0 && !flags.force &&
        await context.connection.list(file.remote).then(() => true, (err) => {
          if (err instanceof RemoteError) return false;
          throw err;
        });
      flags.resume = held > 0 && !blocked &&
        await context.offerResume(
          `the server holds ${formatBytes(held)} of ${formatBytes(size)} from an interrupted ` +
            `upload of ${file.remote}. Continue from there?`,
        );
    }
  }
  for (const dir of new Set(plan.directories)) {
    if (dir === "") continue;
    await context.connection.mkdir(dir).catch((err) => {
      if (!(err instanceof FtsError && err.code === "EXISTS")) throw err;
    });
  }
  if (plan.trees > 0 && files.length === 0) {
    return emptyTreeOutcome("uploaded", sources.join(" "), `/${plan.directories.at(-1) ?? ""}`);
  }
  const many = files.length > 1 || plan.trees > 0 || sources.some(isGlob);
  const { left, alreadyThere } = many && flags.resume
    ? await withoutThoseThere(context, files)
    : { left: files, alreadyThere: 0 };
  if (left.length === 0) return nothingLeftOutcome("uploaded", alreadyThere);
  const safely = flags["if-unchanged"];
  const jobs = safely ? await withTargetVersions(context.connection, left) : left;
  return await transferAll(
    context,
    "uploaded",
    jobs,
    (jobs, options) =>
      context.connection.uploadMany(jobs, {
        // Under --if-unchanged, a target there is replaced only as it was; one not there must stay so.
        overwrite: flags.force && !safely,
        resume: flags.resume,
        preserveMtime: flags.preserve,
        ...options,
      }),
    {
      resumeAsked: flags.resume,
      replaceFlag: safely ? "--if-unchanged" : flags.force ? "-f" : null,
      continueWith: many ? commandWithResume("put", args) : undefined,
      alreadyThere,
    },
  );
}

/**
 * `put --if-unchanged`: each file with the version of its target as the
 * server lists it now (one listing per target directory), which the upload
 * may replace and nothing else; a target not there gets none, and must not
 * appear meanwhile (the upload does not overwrite).
 */
async function withTargetVersions(
  connection: CommandContext["connection"],
  files: PlannedFile[],
): Promise<(PlannedFile & Pick<TransferJob, "ifUnchanged">)[]> {
  const listings = new Map<string, Map<string, Entry>>();
  const jobs: (PlannedFile & Pick<TransferJob, "ifUnchanged">)[] = [];
  for (const file of files) {
    const slash = file.remote.lastIndexOf("/");
    const dir = slash < 0 ? "" : file.remote.slice(0, slash);
    let listing = listings.get(dir);
    if (listing === undefined) {
      const entries = await connection.list(dir).catch((err) => {
        if (err instanceof FtsError && err.code === "NOT_FOUND") return [];
        throw err;
      });
      listing = new Map(entries.map((entry) => [entry.name, entry]));
      listings.set(dir, listing);
    }
    const entry = listing.get(file.remote.slice(slash + 1));
    jobs.push(
      entry?.type === "file"
        ? { ...file, ifUnchanged: { size: entry.size, mtime: entry.mtime } }
        : file,
    );
  }
  return jobs;
}

/** `download [-f] [-r] [-p] [--resume] REMOTE... [LOCAL]`. */
export async function downloadCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const { flags, positionals } = parseCommandArgs(args, TRANSFER_FLAGS, DOWNLOAD_USAGE, {
    min: 1,
  });
  const request = planOptions(context, positionals, flags.recursive);
  const sources = request.sources;
  const connection = context.connection;
  // The whole plan is made and checked before anything is written locally.
  const plan = await planDownload(connection, request);
  const files = plan.files;
  if (files.length === 1 && plan.trees === 0 && !isGlob(sources[0]!)) {
    const file = files[0]!;
    const held = heldLocally(file.local);
    if (!flags.resume && held > 0 && context.offerResume) {
      flags.resume = await context.offerResume(
        `${
          formatBytes(held)
        } of ${file.remote} are here from an interrupted download. Continue from there?`,
      );
    }
  }
  await makeLocalDirectories(plan);
  if (plan.trees > 0 && files.length === 0) {
    return emptyTreeOutcome("downloaded", sources.join(" "), plan.directories.at(-1) ?? ".");
  }
  const many = files.length > 1 || plan.trees > 0 || sources.some(isGlob);
  const { left, alreadyThere } = many && flags.resume
    ? await withoutThoseThere(context, files)
    : { left: files, alreadyThere: 0 };
  if (left.length === 0) return nothingLeftOutcome("downloaded", alreadyThere);
  return await transferAll(
    context,
    "downloaded",
    left,
    // The context's connection when it runs: a new one after a drop.
    (jobs, options) =>
      context.connection.downloadMany(jobs, {
        overwrite: flags.force,
        resume: flags.resume,
        preserveMtime: flags.preserve,
        ...options,
      }),
    {
      replaceFlag: flags.force ? "-f" : null,
      continueWith: many ? commandWithResume("get", args) : undefined,
      alreadyThere,
    },
  ).catch((err) => {
    // A directory where a file was asked for, there or here: what -r is for.
    if (!flags.recursive && err instanceof FtsError && err.code === "WRONG_TYPE") {
      throw new FtsError("WRONG_TYPE", `${err.message} (get -r fetches a tree)`, { cause: err });
    }
    throw err;
  });
}

/**
 * A many-file transfer given `--resume` continues an interrupted one: the
 * files both sides hold alike already (./already_there.ts) are not moved
 * again; the rest are, each resumed where it has data.
 */
async function withoutThoseThere(
  context: CommandContext,
  files: PlannedFile[],
): Promise<{ left: PlannedFile[]; alreadyThere: number }> {
  const there = await filesAlreadyThere(context.connection, files);
  return { left: files.filter((_, index) => !there.has(index)), alreadyThere: there.size };
}

/** The command line that continues a many-file transfer typed as `name args`: the same with `--resume`. */
function commandWithResume(name: "put" | "get", args: string[]): string {
  const words = args.includes("--resume") ? args : ["--resume", ...args];
  return [name, ...words].map(escapeWord).join(" ");
}

/** What a continued transfer with everything there already reports. */
function nothingLeftOutcome(verb: "uploaded" | "downloaded", alreadyThere: number): CommandOutcome {
  return {
    output: `nothing left to move: ${alreadyThere} files there already, the same by digest`,
    json: {
      op: verb === "uploaded" ? "upload" : "download",
      files: [],
      alreadyThere,
      bytes: 0,
      seconds: 0,
    },
  };
}

/** A transfer's names as typed: the last of two or more is the target, the rest its sources. */
function planOptions(
  context: CommandContext,
  names: string[],
  recursive: boolean,
): TransferPlanOptions {
  return {
    cwd: context.remoteDir,
    sources: names.length > 1 ? names.slice(0, -1) : names,
    target: names.length > 1 ? names.at(-1) : undefined,
    recursive,
  };
}

/** Moves every planned file in order on one connection, with one progress line for them all. */
async function transferAll(
  context: CommandContext,
  verb: "uploaded" | "downloaded",
  files: PlannedFile[],
  moveAll: (
    jobs: PlannedFile[],
    reports: Pick<ManyTransferOptions, "onProgress" | "onFileDone" | "resume">,
  ) => Promise<TransferResult[]>,
  { resumeAsked = false, replaceFlag = null, continueWith, alreadyThere = 0 }: {
    resumeAsked?: boolean;
    /** The flag the transfer replaces targets by (`-f`, `--if-unchanged`): its continuation keeps it. */
    replaceFlag?: string | null;
    /** The command that continues the whole transfer, for more than one file. */
    continueWith?: string;
    /** Files a resumed transfer found there already and does not move. */
    alreadyThere?: number;
  } = {},
): Promise<CommandOutcome> {
  for (const file of files) {
    if (file.size < 0 && verb === "uploaded") {
      file.size = await Deno.stat(file.local).then((i) => i.size, () => 0);
    }
  }
  const totalBytes = files.reduce((sum, file) => sum + Math.max(0, file.size), 0);
  const single = files.length === 1;
  const source = verb === "uploaded" ? files[0]!.local : files[0]!.remote;
  const label = single ? basename(source) : `${files.length} files`;
  const progress = new Progress(label, totalBytes, context.progress);
  const results: (TransferResult & { local: string; remote: string })[] = [];
  // Data moves file after file (replies may lag behind): bytes of the files
  // before the one now moving are done.
  let doneBefore = 0;
  let current: { job: TransferJob; total: number } | undefined;
  const finished = new Set<number>();
  // The file to continue is the oldest one not confirmed.
  const broken = () => files.find((_, index) => !finished.has(index));
  const resumeCommand = () => {
    const file = broken();
    if (file === undefined) return null;
    return continueWith ?? resumeCommandFor(verb, file, context.remoteDir, replaceFlag);
  };
  if (context.interrupt) {
    context.interrupt.describeStop = () => ({
      resumeCommand: resumeCommand(),
      detail: single ? "" : `${finished.size} of ${files.length} files done`,
      finishes: files.length - finished.size === 1,
      // The files not confirmed, each resumed where it has data (none but the broken one has).
      continuation: () =>
        transferAll(
          context,
          verb,
          files.filter((_, index) => !finished.has(index)),
          (jobs, reports) => moveAll(jobs, { ...reports, resume: true }),
          { replaceFlag, continueWith },
        ),
    });
  }
  try {
    await moveAll(files, {
      onProgress: (job, done, total) => {
        if (current && current.job !== job) doneBefore += current.total;
        current = { job, total };
        if (single) progress.totalBytes = total;
        progress.update(doneBefore + done);
      },
      onFileDone: (index, result) => {
        const file = files[index]!;
        finished.add(index);
        results.push({ ...result, local: file.local, remote: file.remote });
      },
    });
  } catch (err) {
    // Ctrl-C broke the connection off: the stop is what happened, not the connection lost.
    if (context.interrupt?.requested) throw context.interrupt.error(err);
    const retry = resumeCommand();
    if (err instanceof ConnectionError && retry !== null) {
      // Offer the way back: what arrived is kept for a resume on both sides.
      throw withHint(err, `to continue where it stopped: ${retry}`);
    }
    throw err;
  } finally {
    progress.clear();
  }
  const seconds = progress.elapsedSeconds;
  const lines = results.map((r) =>
    formatTransferLine(
      context,
      verb,
      verb === "uploaded" ? r.local : r.remote,
      verb === "uploaded" ? r.remote : r.local,
      r,
      files.length === 1 ? seconds : undefined,
    )
  );
  // Of several files only the broken one had data to continue from: the others' fresh start is no news.
  if (resumeAsked && verb === "uploaded" && continueWith === undefined) {
    const fromStart = results.filter((r) => r.resumedFrom === 0 && r.size > 0);
    if (fromStart.length > 0) lines.unshift(nothingHeldLine(fromStart, results.length));
  }
  if (files.length > 1) {
    const bytes = results.reduce((sum, r) => sum + r.size, 0);
    lines.push(
      `${verb} ${files.length} files, ${formatBytes(bytes)} in ${seconds.toFixed(2)} s ` +
        `(${formatBytes(bytes / Math.max(seconds, 1e-3))}/s), all ${
          context.style.green("verified")
        }` + (alreadyThere > 0 ? `; ${alreadyThere} there already, the same by digest` : ""),
    );
  }
  return {
    output: lines.join("\n"),
    json: {
      op: verb === "uploaded" ? "upload" : "download",
      files: results.map((r) => ({
        local: r.local,
        remote: r.remote,
        size: r.size,
        ...digestFields(r.digest),
        resumedFrom: r.resumedFrom,
        verified: true,
      })),
      bytes: results.reduce((sum, r) => sum + r.size, 0),
      alreadyThere,
      seconds: Math.round(seconds * 1000) / 1000,
    },
  };
}

/**
 * A transfer's digest in `--json`: `checksum` and `digest`, and, when the
 * checksum is sha256, `sha256` as well, the field this record had before
 * checksums were negotiated (scripts that read it keep working where it
 * still means what it did).
 */
function digestFields(digest: Digest): { checksum: ChecksumName; digest: string; sha256?: string } {
  const fields = { checksum: digest.algorithm, digest: digest.hex };
  return digest.algorithm === "sha256" ? { ...fields, sha256: digest.hex } : fields;
}

/** `uploaded a.bin -> a.bin: 1.0 MiB in 0.12 s (8.3 MiB/s), xxh3-128 3f…, verified`. */
function formatTransferLine(
  context: CommandContext,
  verb: string,
  from: string,
  to: string,
  result: TransferResult,
  seconds: number | undefined,
): string {
  const timing = seconds === undefined
    ? ""
    : ` in ${seconds.toFixed(2)} s (${formatBytes(result.size / Math.max(seconds, 1e-3))}/s)`;
  const resumed = result.resumedFrom > 0 ? `, resumed at ${formatBytes(result.resumedFrom)}` : "";
  return `${verb} ${terminalSafe(from)} -> ${terminalSafe(to)}: ` +
    `${formatBytes(result.size)}${timing}${resumed}, ` +
    `${result.digest.algorithm} ${result.digest.hex.slice(0, 16)}…, ` +
    context.style.green("verified");
}

/**
 * What `put --resume` says when the server held nothing to continue from
 * for some files (a name or size other than the interrupted upload's, or
 * data that expired, was dropped, or was lost with the server): they were
 * sent from their first byte.
 */
function nothingHeldLine(fromStart: { remote: string; size: number }[], total: number): string {
  if (total === 1) {
    const [file] = fromStart;
    return `the server held nothing of an interrupted upload of ${
      terminalSafe(file!.remote)
    } with ${file!.size} bytes: sent from the start`;
  }
  return `the server held nothing of an interrupted upload for ${fromStart.length} of ${total} ` +
    "files: sent from the start";
}

/** What a tree transfer with no files reports: a success, the directory made. */
function emptyTreeOutcome(
  verb: "uploaded" | "downloaded",
  from: string,
  to: string,
): CommandOutcome {
  return {
    output: `${verb} 0 files: ${terminalSafe(from)} holds none; made the directory ${
      terminalSafe(to)
    }`,
    json: { op: verb === "uploaded" ? "upload" : "download", files: [], bytes: 0, seconds: 0 },
  };
}

/**
 * The command that continues an interrupted transfer of `file`, from what it
 * left, as it is typed in the remote directory `cwd`.
 */
function resumeCommandFor(
  verb: "uploaded" | "downloaded",
  file: PlannedFile,
  cwd: string,
  replaceFlag: string | null,
): string {
  const remote = escapeWord(typedRemote(cwd, file.remote));
  // A transfer that was to replace the target still is (as it was to).
  const flags = replaceFlag === null ? "--resume" : `${replaceFlag} --resume`;
  return verb === "uploaded"
    ? `put ${flags} ${escapeWord(file.local)} ${remote}`
    : `get ${flags} ${remote} ${escapeWord(file.local)}`;
}
