/**
 * The ready-to-paste `fts connect` lines a server prints when it generated
 * its token: one per address other machines can reach it on. The token goes
 * in the command's environment (`FTS_TOKEN=… fts connect …`), not among its
 * arguments, where `ps` would show it to every user of the client's host.
 *
 * @module
 */

/** Most addresses listed: a host with many interfaces gets the first few. */
export const MAX_CONNECT_LINES = 4;

/** What a connect line needs to know about the listening server. */
export interface ConnectLineOptions {
  /** The address the server listens on, as given (`0.0.0.0` and `::` mean every interface). */
  hostname: string;
  /** The port the server listens on. */
  port: number;
  /** The token the line passes in `FTS_TOKEN`. */
  token: string;
  /** The TLS certificate's fingerprint, pinned by the line; null for plain TCP. */
  fingerprint: string | null;
  /** The host's interfaces, as `Deno.networkInterfaces()` gives them. */
  interfaces: Pick<Deno.NetworkInterfaceInfo, "family" | "address">[];
}

/**
 * The connect lines for a server: for one listening on every interface, one
 * line per address of this host that is not loopback or link-local
 * (loopback when there is no other); otherwise one line for its address.
 *
 * @example
 * ```ts
 * import { connectLines } from "./connect_lines.ts";
 * const lines = connectLines({
 *   hostname: "0.0.0.0",
 *   port: 4321,
 *   token: "T",
 *   fingerprint: null,
 *   interfaces: [{ family: "IPv4", address: "127.0.0.1" }, { family: "IPv4", address: "10.0.0.5" }],
 * });
 * console.assert(lines[0] === "FTS_TOKEN=T fts connect 10.0.0.5:4321");
 * ```
 */
export function connectLines(options: ConnectLineOptions): string[] {
  const { hostname, port, token, fingerprint } = options;
  const everywhere = hostname === "0.0.0.0" || hostname === "::";
  let hosts = everywhere
    ? options.interfaces
      .filter((i) => i.family === "IPv4" || hostname === "::")
      .map((i) => i.address)
      .filter((address) => !isLoopbackOrLinkLocal(address))
    : [hostname];
  if (hosts.length === 0) hosts = [hostname === "::" ? "::1" : "127.0.0.1"];
  const tail = fingerprint ? ` --fingerprint ${fingerprint}` : "";
  return [...new Set(hosts)].slice(0, MAX_CONNECT_LINES).map((host) =>
    `FTS_TOKEN=${token} fts connect ${host.includes(":") ? `[${host}]` : host}:${port}${tail}`
  );
}

function isLoopbackOrLinkLocal(address: string): boolean {
  return address.startsWith("127.") || address === "::1" || address.startsWith("169.254.") ||
    address.toLowerCase().startsWith("fe80:");
}
