/**
 * The one place that turns an error into a line on stderr and an exit code.
 *
 * @module
 */

import {
  EXIT_CONNECTION,
  EXIT_INTEGRITY,
  EXIT_INTERRUPTED,
  EXIT_OPERATION_FAILED,
  EXIT_USAGE,
} from "../cli/exit_codes.ts";
import { UsageError } from "../cli/usage_error.ts";
import { FtsError, ProtocolError } from "../protocol/errors.ts";
import { ConnectionError } from "./connection.ts";
import { InterruptedError } from "./interruption.ts";
import { CommandDroppedError } from "./dropped_command_error.ts";
import { styleFor } from "./style.ts";
import { terminalSafe } from "./terminal_safe.ts";

/**
 * Prints one line describing `err` on stderr, red when stderr is a terminal
 * (and not under NO_COLOR), and returns the exit code it calls for.
 */
export function reportError(err: unknown): number {
  const { line, exitCode } = describeError(err);
  console.error(`fts: ${styleFor(Deno.stderr).red(line)}`);
  return exitCode;
}

/**
 * The line and exit code for an error. The line is {@link terminalSafe}:
 * messages quote what servers sent and names found on disks.
 */
export function describeError(err: unknown): { line: string; exitCode: number } {
  const { line, exitCode } = describeRawError(err);
  return { line: terminalSafe(line), exitCode };
}

function describeRawError(err: unknown): { line: string; exitCode: number } {
  if (err instanceof UsageError || isParseArgsError(err)) {
    return { line: `${(err as Error).message} (see --help)`, exitCode: EXIT_USAGE };
  }
  if (err instanceof InterruptedError) return { line: err.message, exitCode: EXIT_INTERRUPTED };
  if (err instanceof ConnectionError) return { line: err.message, exitCode: EXIT_CONNECTION };
  // The connection broke under it; the session went on, on a new one.
  if (err instanceof CommandDroppedError) return { line: err.message, exitCode: EXIT_CONNECTION };
  if (err instanceof ProtocolError) {
    return { line: `protocol error: ${err.message}`, exitCode: EXIT_CONNECTION };
  }
  if (err instanceof FtsError) {
    return {
      line: `${err.code}: ${err.message}`,
      exitCode: err.code === "INTEGRITY" ? EXIT_INTEGRITY : EXIT_OPERATION_FAILED,
    };
  }
  if (err instanceof Error) return { line: err.message, exitCode: EXIT_OPERATION_FAILED };
  return { line: String(err), exitCode: EXIT_OPERATION_FAILED };
}

function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError &&
    String((err as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
}
