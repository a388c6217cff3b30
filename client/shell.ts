/**
 * Many commands on one connection: an interactive prompt on a terminal, or
 * one command per line from a pipe or file.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { EXIT_CONNECTION, EXIT_OK } from "../cli/exit_codes.ts";
import { runCommand } from "./commands.ts";
import { ConnectionError, type FtsConnection } from "./connection.ts";
import { describeError } from "./report_error.ts";
import { splitArgs } from "./split_args.ts";

/** Lines of history the interactive prompt keeps. */
export const HISTORY_LINES = 1000;

/** How the shell reads and what a failure means. */
export interface ShellOptions {
  /** Prompt and keep going after errors (a terminal), or stop at the first failure (a script). */
  interactive: boolean;
}

/**
 * Runs commands from standard input until `logout`, the end of input, or (in
 * a script) the first failure. Resolves with the exit code.
 */
export async function runShell(connection: FtsConnection, options: ShellOptions): Promise<number> {
  const lines = createInterface({
    input: process.stdin,
    output: options.interactive ? process.stdout : undefined,
    terminal: options.interactive,
    historySize: HISTORY_LINES,
  });
  if (options.interactive) {
    console.log(`connected to ${connection.serverSoftware}; type 'help' for commands`);
    lines.setPrompt("fts> ");
    lines.prompt();
  }
  let exitCode = EXIT_OK;
  let ended = false;
  try {
    for await (const line of lines) {
      const words = splitLine(line);
      if (words.length > 0) {
        try {
          const outcome = await runCommand(connection, words);
          if (outcome.output) console.log(outcome.output);
          if (outcome.endSession) {
            ended = true;
            break;
          }
        } catch (err) {
          const { line: message, exitCode: code } = describeError(err);
          console.error(`fts: ${message}`);
          if (err instanceof ConnectionError) return EXIT_CONNECTION;
          if (!options.interactive) {
            exitCode = code;
            break;
          }
        }
      }
      if (options.interactive) lines.prompt();
    }
  } finally {
    lines.close();
  }
  if (!ended) await connection.logout().catch(() => connection.close());
  return exitCode;
}

function splitLine(line: string): string[] {
  const trimmed = line.trim();
  if (trimmed === "" || trimmed.startsWith("#")) return [];
  return splitArgs(trimmed);
}
