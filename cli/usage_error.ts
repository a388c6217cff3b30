/**
 * A mistake in how fts was invoked (an unknown flag, a missing argument):
 * reported in one line with a hint, exit code {@link EXIT_USAGE}.
 *
 * @module
 */

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
