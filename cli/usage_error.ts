/**
 * A mistake in how fts was invoked (an unknown flag, a missing argument):
 * reported in one line with a hint, exit code {@link EXIT_USAGE}.
 *
 * @module
 */

/** A command line that cannot be run as given: the message says what to change. */
export class UsageError extends Error {
  /** The error, with a message that names the flag or word at fault. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
