/**
 * Maps operating-system errors to the protocol's error codes: the one place
 * where that mapping lives. Deno's own messages name absolute paths, so the
 * peer gets a message built from the name it sent instead.
 *
 * @module
 */

import { type ErrorCode, FtsError } from "../protocol/errors.ts";

/** Converts any error met while serving `name` into an {@link FtsError}. */
export function toFtsError(err: unknown, name: string): FtsError {
  if (err instanceof FtsError) return err;
  const code = errorCodeOf(err);
  return new FtsError(code, `${DESCRIPTIONS[code]}: ${JSON.stringify(name)}`, { cause: err });
}

function errorCodeOf(err: unknown): ErrorCode {
  if (err instanceof Deno.errors.NotFound) return "NOT_FOUND";
  if (err instanceof Deno.errors.AlreadyExists) return "EXISTS";
  if (err instanceof Deno.errors.NotCapable) return "DENIED";
  if (err instanceof Deno.errors.PermissionDenied) return "DENIED";
  if (err instanceof Deno.errors.IsADirectory) return "WRONG_TYPE";
  if (err instanceof Deno.errors.NotADirectory) return "WRONG_TYPE";
  switch ((err as { code?: unknown })?.code) {
    case "ENOSPC":
    case "EDQUOT":
      return "NO_SPACE";
    case "ENOTEMPTY":
      return "NOT_EMPTY";
    case "ENAMETOOLONG":
      return "BAD_NAME";
    case "ELOOP":
      return "DENIED";
    case "EINVAL": // Such as renaming a directory into itself.
      return "BAD_REQUEST";
    default:
      return "INTERNAL";
  }
}

const DESCRIPTIONS: Record<ErrorCode, string> = {
  NOT_FOUND: "no such file or directory",
  EXISTS: "already exists",
  BAD_NAME: "bad name",
  BAD_REQUEST: "bad request",
  INTEGRITY: "integrity check failed",
  NO_SPACE: "no space left on the server",
  DENIED: "permission denied",
  BUSY: "server busy",
  INTERNAL: "internal server error",
  VERSION: "protocol version mismatch",
  TOO_LARGE: "too large",
  NOT_EMPTY: "directory not empty",
  WRONG_TYPE: "wrong type of file",
  UNSUPPORTED: "unsupported",
  CHANGED: "changed since the client saw it",
};
