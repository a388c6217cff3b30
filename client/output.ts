/**
 * Printing results and failures: text for people, or one JSON document per
 * command with --json.
 *
 * @module
 */

import { FtsError } from "../protocol/errors.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import { InterruptedError } from "./interruption.ts";
import { CommandDroppedError } from "./dropped_command_error.ts";
import { describeError, withStableCode } from "./report_error.ts";
import { styleFor } from "./style.ts";
import { terminalSafeJson } from "./terminal_safe.ts";

/** Prints a command's result on stdout. */
export function printOutcome(
  context: Pick<CommandContext, "json">,
  outcome: CommandOutcome,
): void {
  if (context.json) {
    if (outcome.json !== undefined) console.log(terminalSafeJson(outcome.json));
  } else if (outcome.output) {
    console.log(outcome.output);
  }
}

/** Prints one event of a running command as a JSON line (`--json=stream`). */
export function printJsonEvent(event: Record<string, unknown>): void {
  console.log(terminalSafeJson(event));
}

/**
 * Says on stderr (red on a terminal, never under NO_COLOR) that the command
 * `where` it ran (such as `batch line 3`) left part of its work undone, as
 * its output said, and that the batch stops there.
 */
export function printStoppedIncomplete(where: string): void {
  const line = `${where}: left part of what it was asked undone (said above); the batch stops here`;
  console.error(`fts: ${styleFor(Deno.stderr).red(line)}`);
}

/**
 * Prints a failure (one line on stderr, after `where` it happened, such as
 * `batch line 3`; with --json also a document on stdout); returns its exit code. The line is red when stderr (where it goes,
 * whatever stdout is) is a terminal, and never under NO_COLOR.
 */
export function printFailure(
  options: Pick<CommandContext, "json">,
  err: unknown,
  where = "",
): number {
  err = withStableCode(err);
  const described = describeError(err);
  const line = where === "" ? described.line : `${where}: ${described.line}`;
  const exitCode = described.exitCode;
  console.error(`fts: ${styleFor(Deno.stderr).red(line)}`);
  if (options.json) {
    const code = err instanceof FtsError || err instanceof InterruptedError ||
        err instanceof CommandDroppedError
      ? err.code
      : null;
    console.log(terminalSafeJson({ error: { code, message: line, exitCode } }));
  }
  return exitCode;
}
