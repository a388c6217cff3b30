/**
 * The operations a client may request, and the roles that may run them.
 *
 * @module
 */

/** The operations a client can request, named as in protocol/README.md. */
export const OPS = [
  "list",
  "stat",
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
