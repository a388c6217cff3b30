/**
 * Who is on the other end of a connection, as the log, the per-peer limits
 * and the authentication back-off name them. On the default dual-stack
 * listener (`::`) an IPv4 peer arrives as an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.7`); it is named by its IPv4 address, as it would be on an
 * IPv4 listener, so that one peer has one name however the server listens.
 *
 * @module
 */

/** The prefix of an IPv4-mapped IPv6 address (RFC 4291, 2.5.5.2). */
const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * The peer's host address: an IPv4-mapped IPv6 address as its IPv4 address;
 * "" for an address that is not IP.
 *
 * @example
 * ```ts
 * import { peerHostname } from "./peer_address.ts";
 * const at = (hostname: string) => ({ transport: "tcp" as const, hostname, port: 1 });
 * console.assert(peerHostname(at("::ffff:192.0.2.7")) === "192.0.2.7");
 * console.assert(peerHostname(at("2001:db8::1")) === "2001:db8::1");
 * ```
 */
export function peerHostname(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return "";
  return addr.hostname.replace(IPV4_MAPPED, "$1");
}

/**
 * The peer's address for the log: `host:port` (the host as
 * {@link peerHostname} names it), IPv6 hosts in brackets.
 *
 * @example
 * ```ts
 * import { formatPeer } from "./peer_address.ts";
 * console.assert(formatPeer({ transport: "tcp", hostname: "::ffff:10.0.0.5", port: 80 }) === "10.0.0.5:80");
 * console.assert(formatPeer({ transport: "tcp", hostname: "::1", port: 80 }) === "[::1]:80");
 * ```
 */
export function formatPeer(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  const host = peerHostname(addr);
  return host.includes(":") ? `[${host}]:${addr.port}` : `${host}:${addr.port}`;
}
