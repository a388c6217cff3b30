/**
 * `partials [-h]` lists what the server keeps of interrupted uploads for a
 * resume (`put --resume` continues one); `partials -d NAME...` throws that
 * away, freeing the space it holds against the quota.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";
import type { HeldPartial } from "../protocol/messages.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { formatBytes } from "./format.ts";
import { resolveRemote, shownRemote } from "./remote_path.ts";
import { terminalSafe } from "./terminal_safe.ts";

/** The flags of `partials`. */
export const PARTIALS_FLAGS = {
  human: { short: "h", help: "sizes in binary units (1.3 GiB)" },
  drop: {
    short: "d",
    help: "throw away what is held for each NAME (of any size), freeing its space",
  },
} as const satisfies CommandFlags;

/** The synopsis of `partials`. */
export const PARTIALS_USAGE = "partials [-h] [-d NAME...]";

/** Runs `partials [-h]` (a listing) or `partials -d NAME...` (a drop). */
export async function partialsCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const { flags, positionals } = parseCommandArgs(args, PARTIALS_FLAGS, PARTIALS_USAGE, {
    min: 0,
  });
  if (flags.drop) {
    if (positionals.length === 0) {
      throw new UsageError(`partials -d needs the NAME of an upload; usage: ${PARTIALS_USAGE}`);
    }
    return await dropPartials(context, positionals, flags.human);
  }
  if (positionals.length > 0) {
    throw new UsageError(
      `partials lists every held upload and takes no NAME without -d; usage: ${PARTIALS_USAGE}`,
    );
  }
  const partials = await context.connection.partials();
  const nowMs = Date.now();
  return {
    output: formatPartials(partials, nowMs, flags.human),
    json: {
      partials: partials.map((partial) => ({
        ...partial,
        ageSeconds: Math.max(0, Math.round((nowMs - partial.mtime) / 1000)),
      })),
    },
  };
}

/** Drops what the server holds for each of `names`, in order; stops at the first failure. */
async function dropPartials(
  context: CommandContext,
  names: string[],
  human: boolean,
): Promise<CommandOutcome> {
  const lines: string[] = [];
  const dropped: { name: string; count: number; bytes: number }[] = [];
  for (const typed of names) {
    const name = resolveRemote(context.remoteDir, typed);
    const { count, bytes } = await context.connection.dropPartial(name);
    dropped.push({ name, count, bytes });
    const what = count === 1 ? "" : ` (${count} sizes)`;
    lines.push(
      `dropped ${shownSize(bytes, human)} held for ${terminalSafe(shownRemote(name))}${what}`,
    );
  }
  return { output: lines.join("\n"), json: { op: "drop-partial", dropped } };
}

/**
 * The listing: bytes held, the upload's whole size, how long ago the held
 * bytes were last written, the name from the top. Names are shown
 * {@link terminalSafe}.
 */
function formatPartials(partials: HeldPartial[], nowMs: number, human: boolean): string {
  if (partials.length === 0) return "(no interrupted uploads held)";
  const rows = partials.map((partial) => [
    shownSize(partial.held, human),
    shownSize(partial.size, human),
    formatAge(nowMs - partial.mtime),
    terminalSafe(shownRemote(partial.name)),
  ]);
  const header = ["held", "of", "age", "name"];
  // A loop, not Math.max(...cells): a spread of many rows overflows the stack.
  const widths = header.map((cell) => cell.length);
  for (const row of rows) {
    row.forEach((cell, column) => widths[column] = Math.max(widths[column]!, cell.length));
  }
  return [header, ...rows].map((row) =>
    row.map((cell, column) => column < 3 ? cell.padStart(widths[column]!) : cell).join("  ")
  ).join("\n");
}

/** A size in bytes, or with `human` in binary units. */
function shownSize(bytes: number, human: boolean): string {
  return human ? formatBytes(bytes) : String(bytes);
}

/**
 * An age as its largest whole unit: `42s`, `5m`, `3h` (partials expire
 * after a day, so hours are the largest needed).
 */
function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  return `${Math.floor(seconds / 3600)}h`;
}
