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
  const { line, exitCode } = describeRawError(withStableCode(err));
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

/** The stable code of an error this machine's file system gave; null for any other error. */
function localErrorCode(err: unknown): FtsError["code"] | null {
  if (err instanceof Deno.errors.NotFound) return "NOT_FOUND";
  if (err instanceof Deno.errors.AlreadyExists) return "EXISTS";
  if (err instanceof Deno.errors.PermissionDenied) return "DENIED";
  if (err instanceof Deno.errors.IsADirectory || err instanceof Deno.errors.NotADirectory) {
    return "WRONG_TYPE";
  }
  const code = (err as { code?: unknown } | null)?.code;
  if (code === "ENOSPC" || code === "EDQUOT") return "NO_SPACE";
  if (code === "ENOTEMPTY") return "NOT_EMPTY";
  return null;
}

/**
 * `err`, or, for an error of this machine's file system (a local directory
 * missing, a disk full), an FtsError with the stable code a server would
 * give and a message naming the local path: `NOT_FOUND: here: no such file
 * or directory: out/x.txt`, not the runtime's `(os error 2)` text.
 *
 * @example
 * ```ts
 * import { withStableCode } from "./report_error.ts";
 * const err = new Deno.errors.NotFound("No such file or directory (os error 2): open 'a/b'");
 * const stable = withStableCode(err) as { code: string; message: string };
 * console.assert(stable.code === "NOT_FOUND" && stable.message === "here: no such file or directory: a/b");
 * ```
 */
export function withStableCode(err: unknown): unknown {
  if (err instanceof FtsError) return err;
  const code = localErrorCode(err);
  if (code === null) return err;
  const text = (err as Error).message;
  const parts = /^(.*?) \(os error \d+\)(?:: \w+ '(.*)')?/.exec(text);
  const what = (parts?.[1] ?? text).toLowerCase();
  return new FtsError(code, parts?.[2] ? `here: ${what}: ${parts[2]}` : `here: ${what}`, {
    cause: err,
  });
}

function isParseArgsError(err: unknown): boolean {
  return err instanceof TypeError &&
    String((err as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");
}
