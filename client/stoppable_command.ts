/**
 * Running one command so that Ctrl-C stops it: the shell, a script and a
 * one-shot command all run theirs through {@link runStoppable}, each with its
 * own source of presses (the keyboard at the prompt, SIGINT elsewhere).
 *
 * @module
 */

import { EXIT_INTERRUPTED } from "../cli/exit_codes.ts";
import { runCommand } from "./commands.ts";
import type { CommandContext, CommandOutcome } from "./context.ts";
import type { CommandInterrupt } from "./interruption.ts";
import { printFailure } from "./output.ts";
import { eraseProgressLine } from "./progress.ts";

/**
 * Runs the command `words` until it ends or `interrupt` is pressed. A press
 * closes the connection: the protocol has no way to call off a transfer
 * midway, and a connection that drops mid-data leaves what arrived kept for
 * a resume, on the server and here alike. The command then fails with the
 * interrupt's {@link InterruptedError}, which says how to continue.
 */
export function runStoppable(
  context: CommandContext,
  words: string[],
  interrupt: CommandInterrupt,
): Promise<CommandOutcome> {
  return runStoppableWork(context, () => runCommand(context, words), interrupt);
}

/** {@link runStoppable} for a command's `work` already under way (a continuation of one). */
export async function runStoppableWork(
  context: CommandContext,
  work: () => Promise<CommandOutcome>,
  interrupt: CommandInterrupt,
): Promise<CommandOutcome> {
  const connection = context.connection;
  const stop = () => connection.close();
  interrupt.signal.addEventListener("abort", stop);
  context.interrupt = interrupt;
  try {
    return await work();
  } catch (err) {
    throw interrupt.requested ? interrupt.error(err) : err;
  } finally {
    interrupt.signal.removeEventListener("abort", stop);
    context.interrupt = undefined;
  }
}

/**
 * A Ctrl-C pressed again while the command stops: says `Interrupt` and how
 * to continue, then exits with {@link EXIT_INTERRUPTED} at once, after
 * `restoreTerminal` (the prompt's raw mode ended).
 */
export function exitInsisted(
  context: CommandContext,
  interrupt: CommandInterrupt,
  restoreTerminal: () => void = () => {},
): never {
  restoreTerminal();
  if (context.progress) eraseProgressLine();
  printFailure(context, interrupt.error());
  Deno.exit(EXIT_INTERRUPTED);
}

/**
 * After a stopped command, a new connection in place of the one the stop
 * closed (the remote directory is the context's, so it stays); nothing to do
 * when the connection is open. Without a way to reconnect, the next command
 * reports the closed connection.
 */
export async function reopenIfClosed(context: CommandContext): Promise<void> {
  if (!context.connection.closed || context.reopen === undefined) return;
  context.connection = await context.reopen();
}
