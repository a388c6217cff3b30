/**
 * Exit codes of the fts executable, distinct so that scripts can branch on them.
 *
 * @module
 */

/** Everything asked for was done. */
export const EXIT_OK = 0;
/** The server (or the local file system) refused an operation: not found, exists, bad name, … */
export const EXIT_OPERATION_FAILED = 1;
/** The command line was wrong. */
export const EXIT_USAGE = 2;
/** No server could be reached, or the connection broke or spoke a different protocol. */
export const EXIT_CONNECTION = 3;
/** A transfer's checksum (XXH3-128 or SHA-256) did not match: nothing was published. */
export const EXIT_INTEGRITY = 4;
/**
 * Ctrl-C stopped the command (128 + SIGINT, as shells report it); what a
 * transfer had moved is kept for a resume, and the message says how.
 */
export const EXIT_INTERRUPTED = 130;
