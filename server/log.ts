/**
 * The server's log: one line per connection event and per request, on stderr.
 *
 * @module
 */

/** What one log line records. */
export interface LogEvent {
  peer: string;
  op: string;
  name?: string;
  bytes?: number;
  durationMs?: number;
  /** "ok", an error code, or a connection event such as "closed". */
  result: string;
  detail?: string;
}

const encoder = new TextEncoder();

/** Writes one line: time, peer, operation, name, bytes, duration, result. */
export function logEvent(event: LogEvent): void {
  const parts = [new Date().toISOString(), event.peer, event.op];
  if (event.name !== undefined) parts.push(JSON.stringify(event.name));
  if (event.bytes !== undefined) parts.push(`${event.bytes}B`);
  if (event.durationMs !== undefined) parts.push(`${event.durationMs.toFixed(1)}ms`);
  parts.push(event.result);
  if (event.detail) parts.push(`(${event.detail})`);
  Deno.stderr.writeSync(encoder.encode(parts.join(" ") + "\n"));
}

/** Formats a peer address for the log: `host:port`, IPv6 hosts in brackets. */
export function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
