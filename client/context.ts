/**
 * What every client command works with, and what it gives back.
 *
 * @module
 */

import type { FtsConnection } from "./connection.ts";
import type { CommandInterrupt } from "./interruption.ts";
import type { Style } from "./style.ts";

/** The state of one client session, shared by its commands. */
export interface CommandContext {
  /** The session's connection to the server. */
  connection: FtsConnection;
  /** The remote directory names are relative to: "" is the top of the served directory. */
  remoteDir: string;
  /** Print results as JSON documents instead of text. */
  json: boolean;
  /**
   * Under `--json=stream`: prints one event of a running command (a sync's
   * plan, each file as it completes) as a JSON line, at once; the command's
   * result follows as its last line.
   */
  jsonEvents?: (event: Record<string, unknown>) => void;
  /** Draw progress lines (stderr is a terminal and not --quiet). */
  progress: boolean;
  /** Colours for standard output. */
  style: Style;
  /**
   * Asks the user whether to continue an interrupted transfer from the data
   * it left; only the interactive shell asks, elsewhere a transfer starts
   * over unless given `--resume`.
   */
  offerResume?: (question: string) => Promise<boolean>;
  /**
   * Asks the user to confirm a command that removes more than one entry
   * (`Remove 3 files? [y/N]`); only the interactive shell asks, elsewhere
   * the command goes ahead as typed.
   */
  confirm?: (question: string) => Promise<boolean>;
  /**
   * Asks the user to confirm a plan shown before it runs (a sync's preview:
   * `Proceed? [y/N]`): the shell, and a one-shot command whose standard
   * input and output are a terminal, without --json. Scripts are never asked.
   */
  confirmPlan?: (question: string) => Promise<boolean>;
  /** Columns that help text is wrapped to: the terminal's, or 80. */
  width?: number;
  /**
   * The running command's Ctrl-C (./stoppable_command.ts): a transfer says
   * through it how to continue what it was doing, should it be stopped.
   */
  interrupt?: CommandInterrupt;
  /**
   * Opens a new connection to the same server with the same credentials,
   * for the shell to go on with after Ctrl-C closed the one it had.
   */
  reopen?: () => Promise<FtsConnection>;
}

/** What running a command produced. */
export interface CommandOutcome {
  /** Text for standard output. */
  output?: string;
  /** The result as data, printed as one JSON document under --json. */
  json?: unknown;
  /** The session is over (logout or terminate). */
  endSession?: boolean;
  /**
   * Part of what was asked was left undone, and the output says which (a
   * sync's files that someone changed meanwhile): a one-shot command, or a
   * batch line, then fails with EXIT_OPERATION_FAILED after printing it.
   */
  incomplete?: boolean;
}
