/**
 * The error of a command that a dropped connection broke off and that was
 * not run again on the new connection (./resilient_command.ts).
 *
 * @module
 */

/**
 * A command that the connection dropped under, and that was not repeated on
 * the new connection: whether it took effect (all, part or none of it) is
 * unknown. Its code is `INTERRUPTED`; the session goes on.
 *
 * @example
 * ```ts
 * import { CommandDroppedError } from "./dropped_command_error.ts";
 * const err = new CommandDroppedError("connection lost during rm; reconnected (1 attempt)");
 * console.assert(err.code === "INTERRUPTED");
 * ```
 */
export class CommandDroppedError extends Error {
  /** The stable code, as `--json` reports it. */
  readonly code = "INTERRUPTED";

  /** `message` says what was lost, what was done, and what to check. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "CommandDroppedError";
  }
}
