/**
 * Running a command so that a dropped connection does not end the session:
 * the connection is made again (./reconnect.ts) and the command goes on, as
 * far as that is safe, with one line on stderr saying what happened.
 *
 * - A transfer with one file left continues with `--resume` (a download
 *   from the partial file here, an upload from the partial the server kept);
 *   one with several left goes on with them, each resumed where it has data.
 * - A command that sent only requests that may be repeated (`OP_IS_IDEMPOTENT`
 *   in protocol/ops.ts: `ls`, `stat`, `get`, `cd`, `df`) runs again.
 * - Anything else (`rm`, `mkdir`, `mv`, `chmod`) is not repeated: it fails with a `CommandDroppedError`, the
 *   session goes on, and the user checks what happened.
 *
 * @module
 */

import type { CommandContext, CommandOutcome } from "./context.ts";
import { CommandDroppedError } from "./dropped_command_error.ts";
import { ConnectionError, mayReconnectAfter } from "./errors.ts";
import type { CommandInterrupt } from "./interruption.ts";
import { reconnect, type Reconnected } from "./reconnect.ts";
import { splitArgs } from "./split_args.ts";
import { runCommand } from "./commands.ts";
import { runStoppableWork } from "./stoppable_command.ts";
import { terminalSafe } from "./terminal_safe.ts";

/**
 * Drops one command rides out; at the next, the session gives up: a link
 * that keeps dropping is reported rather than retried for ever.
 */
export const MAX_DROPS_PER_COMMAND = 3;

/**
 * Runs `words` as {@link runStoppable} does; when the connection drops
 * under it, reconnects (unless `context.reopen` is missing), says so with
 * `notify`, and goes on as the module describes. Giving up on reconnecting
 * throws a `ConnectionError`; Ctrl-C while waiting to reconnect, a
 * `ReconnectStoppedError` (./reconnect.ts).
 */
export async function runResilient(
  context: CommandContext,
  words: string[],
  interrupt: CommandInterrupt,
  notify: (line: string) => void = (line) => console.error(`fts: ${line}`),
): Promise<CommandOutcome> {
  let running = words;
  let work = () => runCommand(context, running);
  for (let drops = 0;; drops++) {
    const connection = context.connection;
    const before = connection.nonIdempotentRequests;
    try {
      return await runStoppableWork(context, work, interrupt);
    } catch (err) {
      if (!(err instanceof ConnectionError) || !mayReconnectAfter(err)) throw err;
      if (context.reopen === undefined) throw err;
      if (drops >= MAX_DROPS_PER_COMMAND) throw err;
      const stop = interrupt.describeStop();
      const name = running[0] ?? "";
      const back = await reconnect(
        context,
        err,
        interrupt.signal,
        stop.resumeCommand,
        () => notify(`connection lost during ${terminalSafe(name)}; reconnecting (Ctrl-C stops)`),
      );
      const lost = `connection lost during ${terminalSafe(name)}; ${reconnectedText(back)}`;
      if (back.lostDir !== null) {
        throw new CommandDroppedError(
          `${lost}, but ${terminalSafe(back.lostDir)} is gone: the session is at / now, ` +
            `and ${terminalSafe(name)} was not run again`,
          { cause: err },
        );
      }
      if (stop.resumeCommand !== null && stop.finishes === true) {
        notify(`${lost}; resuming: ${terminalSafe(stop.resumeCommand)}`);
        running = splitArgs(stop.resumeCommand);
        work = () => runCommand(context, running);
      } else if (stop.continuation !== undefined) {
        notify(`${lost}; ${stop.detail ?? "some done"}, resuming the rest`);
        work = stop.continuation;
      } else if (stop.resumeCommand !== null) {
        throw new CommandDroppedError(
          `${lost}; ${stop.detail ?? "some files done"}, the rest not sent again; ` +
            `to continue where it stopped: ${terminalSafe(stop.resumeCommand)}`,
          { cause: err },
        );
      } else if (connection.nonIdempotentRequests === before) {
        notify(`${lost}; running it again`);
      } else {
        throw new CommandDroppedError(
          `${lost}; ${terminalSafe(name)} was not run again: whether it took effect is ` +
            "unknown (check with ls or stat)",
          { cause: err },
        );
      }
    }
  }
}

/** `reconnected (2 attempts)`. */
function reconnectedText(back: Reconnected): string {
  return `reconnected (${back.attempts} ${back.attempts === 1 ? "attempt" : "attempts"})`;
}
