/**
 * `delete [-r] NAME...`: several names, patterns (`rm '*.log'`) and with
 * `-r` whole trees, each entry removed on its own, deepest first. More than
 * one entry is confirmed first where someone can answer (the shell).
 *
 * @module
 */

import { posix } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { FtsError } from "../protocol/errors.ts";
import { type CommandFlags, parseCommandArgs } from "./command_flags.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { globToRegExp, isGlob, splitPattern } from "./glob.ts";
import { walkRemote } from "./plan_tree.ts";
import { listedName, resolveRemote } from "./remote_path.ts";
import { terminalSafe } from "./terminal_safe.ts";
import { remoteIsDirectory } from "./transfer_plan.ts";

/** The flags of `delete`. */
export const DELETE_FLAGS = {
  recursive: { short: "r", help: "a directory with everything in it" },
} as const satisfies CommandFlags;

/** The synopsis of `delete`. */
export const DELETE_USAGE = "delete [-r] NAME...";

/** One entry to remove. */
interface Doomed {
  name: string;
  dir: boolean;
}

/** Runs `delete [-r] NAME...`. */
export async function deleteCommand(
  context: CommandContext,
  args: string[],
): Promise<CommandOutcome> {
  const { flags, positionals } = parseCommandArgs(args, DELETE_FLAGS, DELETE_USAGE, { min: 1 });
  const doomed: Doomed[] = [];
  for (const word of positionals) {
    for (const name of await namesOf(context, word)) {
      if (flags.recursive && await remoteIsDirectory(context.connection, name)) {
        if (name === "") throw new UsageError("delete -r of the whole served directory is refused");
        // Parents first from the walk, so children come off in reverse order, then the top.
        const tree = await walkRemote(context.connection, name, ".");
        for (const entry of tree.reverse()) {
          doomed.push({ name: entry.remote, dir: entry.type === "dir" });
        }
        doomed.push({ name, dir: true });
      } else {
        doomed.push({ name, dir: false });
      }
    }
  }
  if (doomed.length > 1 && context.confirm) {
    const dirs = doomed.filter((entry) => entry.dir).length;
    const files = doomed.length - dirs;
    const what = [
      files > 0 ? `${files} file${files === 1 ? "" : "s"}` : "",
      dirs > 0 ? `${dirs} director${dirs === 1 ? "y" : "ies"}` : "",
    ].filter((part) => part !== "").join(" and ");
    if (!await context.confirm(`Remove ${what}?`)) {
      return { output: "nothing was removed", json: { op: "delete", names: [] } };
    }
  }
  const removed: string[] = [];
  for (const entry of doomed) {
    await context.connection.delete(entry.name);
    removed.push(entry.name);
  }
  return {
    output: removed.map((name) => `deleted ${terminalSafe(name)}`).join("\n"),
    json: { op: "delete", names: removed },
  };
}

/** The remote names a word stands for: itself, or a pattern's matches (at least one). */
async function namesOf(context: CommandContext, word: string): Promise<string[]> {
  if (!isGlob(word)) return [resolveRemote(context.remoteDir, word)];
  const { dir, last } = splitPattern(word);
  const remoteDir = resolveRemote(context.remoteDir, dir);
  const pattern = globToRegExp(last);
  const names = (await context.connection.list(remoteDir))
    .filter((entry) => pattern.test(entry.name))
    .map((entry) => listedName(remoteDir, entry.name));
  if (names.length === 0) {
    throw new FtsError("NOT_FOUND", `no remote names match ${posix.join("/", remoteDir, last)}`);
  }
  return names;
}
