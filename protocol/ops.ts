/**
 * The operations a client may request, and the roles that may run them.
 *
 * @module
 */

/** The operations a client can request, named as in protocol/README.md. */
export const OPS = [
  "list",
  "stat",
  "digests",
  "upload",
  "download",
  "delete",
  "mkdir",
  "rename",
  "partial",
  "partials",
  "drop-partial",
  "chmod",
  "df",
  "ping",
  "terminate",
  "logout",
] as const;

/** One of {@link OPS}. */
export type Op = typeof OPS[number];

/**
 * Whether a request for each op may be sent again after the connection
 * dropped before its reply came: sent twice, it does what it did once
 * (reads, and `download`, which writes only this side's partial file).
 * A client repeats a command whose requests were all of these; any other
 * op's outcome is unknown when its reply is lost, and the user is told so.
 * `upload` continues by resuming, not by repeating (the server keeps the
 * partial); `chmod` is not repeated either, so that a retry cannot undo a
 * mode someone else set meanwhile.
 *
 * @example
 * ```ts
 * import { OP_IS_IDEMPOTENT } from "./ops.ts";
 * console.assert(OP_IS_IDEMPOTENT.list && !OP_IS_IDEMPOTENT.delete);
 * ```
 */
export const OP_IS_IDEMPOTENT: Readonly<Record<Op, boolean>> = {
  list: true,
  stat: true,
  digests: true,
  upload: false,
  download: true,
  delete: false,
  mkdir: false,
  rename: false,
  partial: true,
  partials: true,
  // Repeated, it would report NOT_FOUND for what the first one dropped.
  "drop-partial": false,
  chmod: false,
  df: true,
  ping: true,
  terminate: false,
  logout: false,
};

/** What a client may do, each role including the ones before it. */
export const ROLES = ["read", "write", "admin"] as const;

/** One of {@link ROLES}. */
export type Role = typeof ROLES[number];

/**
 * Reports whether `held` includes everything `needed` allows.
 *
 * @example
 * ```ts
 * import { roleAllows } from "./ops.ts";
 * console.assert(roleAllows("admin", "write") && !roleAllows("read", "write"));
 * ```
 */
export function roleAllows(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) >= ROLES.indexOf(needed);
}

/** Reports whether a value is one of the {@link ROLES}. */
export function isRole(value: unknown): value is Role {
  return typeof value === "string" && (ROLES as readonly string[]).includes(value);
}
