/**
 * Where `fts connect` goes: `HOST[:PORT]`, with IPv6 hosts as `[::1]:PORT`
 * or bare `::1`.
 *
 * @module
 */

import { UsageError } from "../cli/usage_error.ts";

/** Host when none is given: this machine. */
export const DEFAULT_CONNECT_HOST = "127.0.0.1";

/** A parsed address; `port` is undefined when it is to come from the port file. */
export interface Address {
  /** The host to connect to, IPv6 without brackets. */
  hostname: string;
  /** The TCP port, 1 to 65535. */
  port?: number;
}

/**
 * Parses `HOST[:PORT]`.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./address.ts";
 * console.assert(parseAddress("[::1]:9000").port === 9000);
 * console.assert(parseAddress("example.org").port === undefined);
 * ```
 */
export function parseAddress(text: string): Address {
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(text);
  if (bracketed) return withPort(bracketed[1]!, bracketed[2], text);
  const colons = text.split(":").length - 1;
  if (colons > 1) return { hostname: text }; // A bare IPv6 address.
  const [hostname, port] = text.split(":");
  return withPort(hostname || DEFAULT_CONNECT_HOST, port, text);
}

function withPort(hostname: string, port: string | undefined, text: string): Address {
  if (port === undefined) return { hostname };
  const number = Number(port);
  if (!/^\d+$/.test(port) || number < 1 || number > 65535) {
    throw new UsageError(`bad address '${text}': the port must be a number from 1 to 65535`);
  }
  return { hostname, port: number };
}

/** Formats an address as `host:port`, IPv6 hosts in brackets. */
export function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`;
}
