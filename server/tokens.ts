/**
 * Access tokens: who may connect, under which name, with which role.
 *
 * A tokens file has one token per line, `ROLE NAME TOKEN`, separated by
 * spaces; `#` starts a comment:
 *
 * ```
 * # role  name     token
 * admin   alice    4f9c0e1d6b2a8c7e5d3f1a0b9c8d7e6f
 * read    backups  0a1b2c3d4e5f60718293a4b5c6d7e8f9
 * ```
 *
 * @module
 */

import { createHash, timingSafeEqual } from "node:crypto";
import { MAX_TOKEN_CHARS } from "../protocol/limits.ts";
import { type Role, ROLES } from "../protocol/messages.ts";

/** Shortest token accepted: 16 characters of a random token carry 96 bits or more. */
export const MIN_TOKEN_CHARS = 16;

/** Bytes of randomness in a generated token (base64url: 43 characters). */
const GENERATED_TOKEN_BYTES = 32;

/** One token and what it grants. */
export interface AccessToken {
  /** Shown in logs instead of the token. */
  name: string;
  /** What the token may do. */
  role: Role;
  /** The secret a client presents. */
  token: string;
}

/** Who a verified token belongs to. */
export interface Identity {
  /** The token's name, for logs. */
  name: string;
  /** What the session may do. */
  role: Role;
}

/** A new random token. */
export function generateToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(GENERATED_TOKEN_BYTES));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** Parses a tokens file; throws an Error naming the line of the first mistake. */
export function parseTokensFile(text: string, path: string): AccessToken[] {
  const tokens: AccessToken[] = [];
  for (const [index, rawLine] of text.split("\n").entries()) {
    const line = rawLine.replace(/#.*/, "").trim();
    if (line === "") continue;
    const where = `${path}:${index + 1}`;
    const fields = line.split(/\s+/);
    if (fields.length !== 3) throw new Error(`${where}: expected 'ROLE NAME TOKEN'`);
    const [role, name, token] = fields as [string, string, string];
    if (!(ROLES as readonly string[]).includes(role)) {
      throw new Error(`${where}: role must be one of ${ROLES.join(", ")}, not '${role}'`);
    }
    checkToken(token, where);
    if (tokens.some((t) => t.name === name)) throw new Error(`${where}: name '${name}' repeats`);
    tokens.push({ name, role: role as Role, token });
  }
  if (tokens.length === 0) throw new Error(`${path}: no tokens`);
  return tokens;
}

/**
 * Throws unless `token` is long enough to be a secret, and short enough that
 * a presented token over the hello's limit can be refused as simply wrong.
 */
export function checkToken(token: string, where: string): void {
  if (token.length < MIN_TOKEN_CHARS) {
    throw new Error(`${where}: a token needs at least ${MIN_TOKEN_CHARS} characters`);
  }
  if (token.length > MAX_TOKEN_CHARS) {
    throw new Error(`${where}: a token has at most ${MAX_TOKEN_CHARS} characters`);
  }
}

/**
 * Checks presented tokens in constant time: every known token is compared
 * (as SHA-256 digests, so lengths never differ), whatever matched earlier.
 */
export class TokenVerifier {
  readonly #entries: { digest: Uint8Array; identity: Identity }[];

  /** A verifier that accepts exactly `tokens`. */
  constructor(tokens: AccessToken[]) {
    this.#entries = tokens.map((t) => ({
      digest: digest(t.token),
      identity: { name: t.name, role: t.role },
    }));
  }

  /** The identity the token belongs to, or null. */
  verify(presented: string | undefined): Identity | null {
    const candidate = digest(presented ?? "");
    let found: Identity | null = null;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.digest, candidate) && presented !== undefined) {
        found = entry.identity;
      }
    }
    return found;
  }
}

function digest(token: string): Uint8Array {
  return createHash("sha256").update(token).digest();
}
