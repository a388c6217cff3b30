/**
 * An S3 server's refusal as fts's closed set of codes: a client hears
 * DENIED where the bucket denies access, INTERNAL for the rest, and the
 * message names the S3 operation, code and status (never the server's own
 * text, which is the other side's and may hold anything).
 *
 * @module
 */

import { FtsError } from "../../protocol/errors.ts";
import { S3Error } from "./error.ts";

/** `err` as an {@link FtsError} if it is an {@link S3Error}; anything else as it is. */
export function bucketFailure(err: unknown): unknown {
  if (!(err instanceof S3Error)) return err;
  const code = err.code === "AccessDenied" ? "DENIED" : "INTERNAL";
  return new FtsError(code, `the bucket's server refused: ${err.message}`, { cause: err });
}

/** Whether `err` is S3's answer for a key that is not there. */
export function isNoSuchKey(err: unknown): boolean {
  return err instanceof S3Error && (err.code === "NoSuchKey" || err.code === "NotFound");
}

/** Whether `err` is S3's refusal of a conditional request (`If-None-Match`, `If-Match`). */
export function isPreconditionFailed(err: unknown): boolean {
  return err instanceof S3Error && err.code === "PreconditionFailed";
}
