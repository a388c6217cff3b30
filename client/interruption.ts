/**
 * Ctrl-C during a command: the first press stops the command (its transfer
 * breaks off as a dropped connection would, so what arrived is kept for a
 * resume on both sides), a second press while it stops is the user
 * insisting. What the command says when it stops is an
 * {@link InterruptedError}: `Interrupt`, and the command that continues it.
 *
 * @module
 */
import type { CommandOutcome } from "./context.ts";

/**
 * A command stopped by Ctrl-C; its code is `INTERRUPTED`, its exit code 130
 * (cli/exit_codes.ts).
 *
 * @example
 * ```ts
 * import { InterruptedError } from "./interruption.ts";
 * const err = new InterruptedError("get --resume big.bin big.bin");
 * console.assert(err.message === "Interrupt; to continue where it stopped: get --resume big.bin big.bin");
 * console.assert(new InterruptedError(null).message === "Interrupt");
 * ```
 */
export class InterruptedError extends Error {
  /** The stable code, as `--json` reports it. */
  readonly code = "INTERRUPTED";
  /** The command that continues what was stopped, when a transfer was. */
  readonly resumeCommand: string | null;

  /**
   * `resumeCommand` continues the transfer that was stopped (null when none
   * was); `detail` says how far the command got (`3 of 10 files done`).
   */
  constructor(resumeCommand: string | null, detail = "", options?: ErrorOptions) {
    const done = detail === "" ? "" : `: ${detail}`;
    const hint = resumeCommand === null ? "" : `; to continue where it stopped: ${resumeCommand}`;
    super(`Interrupt${done}${hint}`, options);
    this.name = "InterruptedError";
    this.resumeCommand = resumeCommand;
  }
}

/** How to continue a command that was stopped, as the command itself says. */
export interface StopDescription {
  /** The command that continues it from where it stopped; null when there is none. */
  resumeCommand: string | null;
  /** How far it got, such as `3 of 10 files done`. */
  detail?: string;
  /**
   * The resume command alone does everything the command had left (one
   * file was left to move), so that it can stand in for the command.
   */
  finishes?: boolean;
  /**
   * Does what the command had left when that is more than one command line
   * says (several files of a transfer, the broken one resumed), on the
   * context's connection as it is then: after a dropped connection was made
   * again, it stands in for the command.
   */
  continuation?: () => Promise<CommandOutcome>;
}

/** What a Ctrl-C did: began to stop the command, or came while it was stopping already. */
export type PressOutcome = "stopping" | "insisted";

/**
 * One command's interruption. Whoever watches the keyboard or the signals
 * calls {@link press}; the command's work listens to {@link signal}; a
 * transfer keeps {@link describeStop} up to date, so that even a forced exit
 * can say how to continue.
 *
 * @example
 * ```ts
 * import { CommandInterrupt } from "./interruption.ts";
 * const interrupt = new CommandInterrupt();
 * interrupt.describeStop = () => ({ resumeCommand: "put --resume a.bin a.bin" });
 * console.assert(interrupt.press() === "stopping" && interrupt.signal.aborted);
 * console.assert(interrupt.press() === "insisted");
 * console.assert(interrupt.error().resumeCommand === "put --resume a.bin a.bin");
 * ```
 */
export class CommandInterrupt {
  readonly #controller = new AbortController();
  /** Says how to continue what the command was doing, and how far it got; nothing to say by default. */
  describeStop: () => StopDescription = () => ({ resumeCommand: null });

  /** Aborted at the first press. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** Whether Ctrl-C was pressed during the command. */
  get requested(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Records a press: the first stops the command, any later one is the user insisting. */
  press(): PressOutcome {
    if (this.requested) return "insisted";
    this.#controller.abort();
    return "stopping";
  }

  /** The error the stopped command reports, `cause` the failure the stop caused. */
  error(cause?: unknown): InterruptedError {
    if (cause instanceof InterruptedError) return cause;
    const { resumeCommand, detail } = this.describeStop();
    return new InterruptedError(resumeCommand, detail, cause === undefined ? undefined : { cause });
  }
}
