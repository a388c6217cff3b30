/** The error a promise is expected to reject with, for tests that then look at its fields. */

import assert from "node:assert/strict";

/**
 * The error `promise` rejects with, which must be an instance of
 * `errorClass`; fails when it resolves, and rethrows any other error.
 */
export async function rejectionOf<E extends Error>(
  promise: Promise<unknown>,
  // deno-lint-ignore no-explicit-any
  errorClass: new (...args: any[]) => E,
): Promise<E> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof errorClass) return err;
    throw err;
  }
  assert.fail(`expected ${errorClass.name}, but the promise resolved`);
}
