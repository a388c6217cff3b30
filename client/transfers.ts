/**
 * The upload and download commands: one file, a glob pattern's matches, or
 * a whole tree (`-r`); each file verified by its checksum; one progress line for
 * the whole transfer.
 *
 * @module
 */

import { basename, relative } from "node:path";
import { posix } from "node:path";
import { parseArgs } from "node:util";
import { UsageError } from "../cli/usage_error.ts";
import type { ChecksumName, Digest } from "../protocol/checksum.ts";
import { FtsError } from "../protocol/errors.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { ConnectionError, RemoteError } from "./errors.ts";
import { formatBytes } from "./format.ts";
import { globToRegExp, isGlob, splitPattern } from "./glob.ts";
import { expandLocalGlob, localTarget, walkLocal } from "./local_files.ts";
import { heldLocally } from "./partial_download.ts";
import { planDownloadTree, type PlannedFile, refuseTemporaryNames } from "./plan_tree.ts";
import { Progress } from "./progress.ts";
import { terminalSafe } from "./terminal_safe.ts";
import { localPathInside } from "./local_target.ts";
import { listedName, remoteBase, resolveRemote } from "./remote_path.ts";
import type { ManyTransferOptions, TransferJob, TransferResult } from "./transfer_options.ts";

/** The flags both transfer commands take. */
interface TransferFlags {
  force: boolean;
  recursive: boolean;
  preserve: boolean;
  resume: boolean;
  positionals: string[];
}

/** `upload [-f] [-r] [-p] [--resume] LOCAL [REMOTE]`. */
export async function uploadCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const flags = transferFlags(args, "upload [-f] [-r] [-p] [--resume] LOCAL [REMOTE]");
  const [local, remote] = flags.positionals;
  const directories: string[] = [];
  let files: PlannedFile[];
  if (isGlob(local!)) {
    const target = resolveRemote(context.remoteDir, remote ?? "");
    files = (await expandLocalGlob(local!)).map((path) => ({
      local: path.path,
      remote: posix.join(target, basename(path.path)),
      size: path.size,
    }));
    if (files.length === 0) throw new FtsError("NOT_FOUND", `no local files match ${local}`);
  } else if (flags.recursive) {
    const target = resolveRemote(context.remoteDir, remote ?? basename(local!));
    files = [];
    directories.push(target);
    for await (const entry of walkLocal(local!)) {
      const rel = relative(local!, entry.path).split("\\").join("/");
      if (entry.isDirectory) directories.push(posix.join(target, rel));
      else files.push({ local: entry.path, remote: posix.join(target, rel), size: entry.size });
    }
  } else {
    const name = remote === undefined
      ? basename(local!)
      : remote.endsWith("/")
      ? remote + basename(local!)
      : remote;
    files = [{ local: local!, remote: resolveRemote(context.remoteDir, name), size: -1 }];
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
      flags.resume = held > 0 &&
        await context.offerResume(
          `the server holds ${formatBytes(held)} of ${formatBytes(size)} from an interrupted ` +
            `upload of ${file.remote}. Continue from there?`,
        );
    }
  }
  for (const dir of directories) {
    await context.connection.mkdir(dir).catch((err) => {
      if (!(err instanceof FtsError && err.code === "EXISTS")) throw err;
    });
  }
  if (flags.recursive && files.length === 0) {
    return emptyTreeOutcome("uploaded", local!, `/${directories[0]}`);
  }
  return await transferAll(
    context,
    "uploaded",
    files,
    (jobs, options) =>
      context.connection.uploadMany(jobs, {
        overwrite: flags.force,
        resume: flags.resume,
        preserveMtime: flags.preserve,
        ...options,
      }),
  );
}

/** `download [-f] [-r] [-p] [--resume] REMOTE [LOCAL]`. */
export async function downloadCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const flags = transferFlags(args, "download [-f] [-r] [-p] [--resume] REMOTE [LOCAL]");
  const [remote, local] = flags.positionals;
  const connection = context.connection;
  let files: PlannedFile[];
  if (isGlob(remote!)) {
    const { dir, last } = splitPattern(remote!);
    const remoteDir = resolveRemote(context.remoteDir, dir);
    const pattern = globToRegExp(last);
    const localDir = local ?? ".";
    // Every match is checked before anything is written: a bad name stops the whole download.
    const matches = (await connection.list(remoteDir))
      .filter((entry) => entry.type === "file" && pattern.test(entry.name));
    refuseTemporaryNames(remoteDir, matches);
    files = matches.map((entry) => ({
      remote: listedName(remoteDir, entry.name),
      local: localPathInside(localDir, [entry.name]),
      size: entry.size,
    }));
    if (files.length === 0) throw new FtsError("NOT_FOUND", `no remote files match ${remote}`);
    // Like -r, the target directory is made when missing (only once there is something to put in it).
    await Deno.mkdir(localDir, { recursive: true });
  } else if (flags.recursive) {
    const remoteDir = resolveRemote(context.remoteDir, remote!);
    const localDir = local ?? (remoteBase(remoteDir) || ".");
    // The whole tree is planned and checked before anything is written locally.
    const plan = await planDownloadTree(connection, remoteDir, localDir);
    files = plan.files;
    await Deno.mkdir(localDir, { recursive: true });
    // One level at a time, parents first, never through a link (mkdir refuses any name taken).
    for (const dir of plan.missing) await Deno.mkdir(dir);
    if (files.length === 0) return emptyTreeOutcome("downloaded", remoteDir || "/", localDir);
  } else {
    const name = resolveRemote(context.remoteDir, remote!);
    files = [{ remote: name, local: await localTarget(name, local), size: -1 }];
    const held = heldLocally(files[0]!.local);
    if (!flags.resume && held > 0 && context.offerResume) {
      flags.resume = await context.offerResume(
        `${
          formatBytes(held)
        } of ${name} are here from an interrupted download. Continue from there?`,
      );
    }
  }
  return await transferAll(
    context,
    "downloaded",
    files,
    (jobs, options) =>
      connection.downloadMany(jobs, {
        overwrite: flags.force,
        resume: flags.resume,
        preserveMtime: flags.preserve,
        ...options,
      }),
  );
}

/** Moves every planned file in order on one connection, with one progress line for them all. */
async function transferAll(
  context: CommandContext,
  verb: "uploaded" | "downloaded",
  files: PlannedFile[],
  moveAll: (
    jobs: PlannedFile[],
    reports: Pick<ManyTransferOptions, "onProgress" | "onFileDone">,
  ) => Promise<TransferResult[]>,
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
    // The file to continue is the oldest one not confirmed.
    const broken = files.find((_, index) => !finished.has(index));
    if (err instanceof ConnectionError && broken) {
      // Offer the way back: what arrived is kept for a resume on both sides.
      const retry = verb === "uploaded"
        ? `put --resume ${quoteWord(broken.local)} ${quoteWord(broken.remote)}`
        : `get --resume ${quoteWord(broken.remote)} ${quoteWord(broken.local)}`;
      throw new ConnectionError(`${err.message}; to continue where it stopped: ${retry}`, {
        cause: err,
      });
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
  if (files.length > 1) {
    const bytes = results.reduce((sum, r) => sum + r.size, 0);
    lines.push(
      `${verb} ${files.length} files, ${formatBytes(bytes)} in ${seconds.toFixed(2)} s ` +
        `(${formatBytes(bytes / Math.max(seconds, 1e-3))}/s), all ${
          context.style.green("verified")
        }`,
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
  const resumed = result.resumedFrom > 0 ? `, resumed at ${result.resumedFrom} bytes` : "";
  return `${verb} ${terminalSafe(from)} -> ${terminalSafe(to)}: ` +
    `${formatBytes(result.size)}${timing}${resumed}, ` +
    `${result.digest.algorithm} ${result.digest.hex.slice(0, 16)}…, ` +
    context.style.green("verified");
}

function transferFlags(args: string[], usage: string): TransferFlags {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        force: { type: "boolean", short: "f" },
        recursive: { type: "boolean", short: "r" },
        preserve: { type: "boolean", short: "p" },
        resume: { type: "boolean" },
      },
      allowPositionals: true,
      strict: true,
    });
    if (positionals.length < 1 || positionals.length > 2) throw new UsageError(`usage: ${usage}`);
    return {
      force: values.force === true,
      recursive: values.recursive === true,
      preserve: values.preserve === true,
      resume: values.resume === true,
      positionals,
    };
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`${(err as Error).message}; usage: ${usage}`);
  }
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

/** Quotes a word for the fts shell when it holds spaces or quotes. */
function quoteWord(word: string): string {
  return /^[\w./@%+=:,-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}
