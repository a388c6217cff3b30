/**
 * The server's log: one line per connection event and per request, on
 * stderr, as text or as JSON lines (`--log-format json`, for audit). Tokens
 * are never logged, only their names.
 *
 * @module
 */

/** What one log line records. */
export interface LogEvent {
  peer: string;
  op: string;
  /** The name of the token the session authenticated with. */
  token?: string;
  name?: string;
  bytes?: number;
  durationMs?: number;
  /** "ok", an error code, or a connection event such as "closed". */
  result: string;
  detail?: string;
}

const encoder = new TextEncoder();
let format: "text" | "json" = "text";

/** Chooses the log format for this server. */
export function setLogFormat(chosen: "text" | "json"): void {
  format = chosen;
}

/** Writes one line: time, peer, token name, operation, name, bytes, duration, result. */
export function logEvent(event: LogEvent): void {
  const time = new Date().toISOString();
  let line: string;
  if (format === "json") {
    line = JSON.stringify({
      time,
      peer: event.peer,
      token: event.token ?? null,
      op: event.op,
      name: event.name ?? null,
      bytes: event.bytes ?? null,
      durationMs: event.durationMs === undefined ? null : Math.round(event.durationMs * 10) / 10,
      result: event.result,
      detail: event.detail ?? null,
    });
  } else {
    const parts = [time, event.peer];
    if (event.token !== undefined) parts.push(`[${event.token}]`);
    parts.push(event.op);
    if (event.name !== undefined) parts.push(JSON.stringify(event.name));
    if (event.bytes !== undefined) parts.push(`${event.bytes}B`);
    if (event.durationMs !== undefined) parts.push(`${event.durationMs.toFixed(1)}ms`);
    parts.push(event.result);
    if (event.detail) parts.push(`(${event.detail})`);
    line = parts.join(" ");
  }
  Deno.stderr.writeSync(encoder.encode(line + "\n"));
}

/** Formats a peer address for the log: `host:port`, IPv6 hosts in brackets. */
export function formatAddress(addr: Deno.Addr): string {
  if (addr.transport !== "tcp" && addr.transport !== "udp") return addr.transport;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}
