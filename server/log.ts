/**
 * The server's log: one line per connection event and per request, on
 * stderr, as text or as JSON lines (`--log-format json`, for audit). Tokens
 * are never logged, only their names. A transfer's line names the checksum
 * and digest it was verified with, for audit.
 *
 * Every string field may carry text from the peer (a name, an unknown op, the
 * software it announced, an error message quoting either), so each is
 * truncated to {@link MAX_LOG_FIELD_CHARS} and escaped here, in one place: no
 * line break, control character, separator or bidi override reaches the log
 * raw, and one log line is always one event.
 *
 * Each of the server's workers logs for itself, naming itself in every line
 * (`w1`, `"worker": 1`); a lock in shared memory that every thread of the
 * server holds while it writes keeps each line whole, however long. (Deno
 * 2.9 writes one call under the process's own stderr lock, but a call may
 * write part of a line only, and the rest would then be another call.)
 *
 * @module
 */

import type { ChecksumName } from "../protocol/checksum.ts";
import { SharedLock } from "./shared_lock.ts";

/** What one log line records. */
export interface LogEvent {
  /** The peer's address, `host:port`, or "-" when there is none. */
  peer: string;
  /** The operation or connection event ("connect", "auth", "upload", ...). */
  op: string;
  /** The name of the token the session authenticated with. */
  token?: string;
  /** The name the request is about. */
  name?: string;
  /** Bytes of file data moved. */
  bytes?: number;
  /** How long the request took, in milliseconds. */
  durationMs?: number;
  /** The checksum of the session (its authentication line) or of the transfer's digest. */
  checksum?: ChecksumName;
  /** The whole file's digest, in hex, of a transfer verified with {@link LogEvent.checksum}. */
  digest?: string;
  /** "ok", an error code, or a connection event such as "closed". */
  result: string;
  /** More on the result, such as an error's message. */
  detail?: string;
  /** The worker that logged it; set by {@link logEvent} from {@link setLogWorker}. */
  worker?: number;
}

/**
 * Characters of a string field kept in the log; the rest is cut with a marker
 * saying how much. Long enough for any error message and most names; a 60 KB
 * string from a peer must not become a 60 KB log line.
 */
export const MAX_LOG_FIELD_CHARS = 1024;

/**
 * Characters escaped in both formats: C0 and C1 controls, DEL, the line and
 * paragraph separators, bidi marks, embeddings, overrides and isolates, and
 * lone surrogates. Any of them could end a line or disguise one on a terminal.
 */
const UNSAFE_CHARS =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

const encoder = new TextEncoder();
let format: "text" | "json" = "text";
/** The worker this thread is, for every line it logs; none on the main thread. */
let worker: number | undefined;
/** Held while a line is written; null until {@link setLogLock}: this thread alone writes. */
let lineLock: SharedLock | null = null;

/** Chooses the log format for this server. */
export function setLogFormat(chosen: "text" | "json"): void {
  format = chosen;
}

/** Names the worker `id` in every line this thread logs. */
export function setLogWorker(id: number): void {
  worker = id;
}

/**
 * Writes this thread's lines holding the lock in `buffer` (shared_lock.ts),
 * which every thread writing to the server's stderr holds too.
 */
export function setLogLock(buffer: SharedArrayBuffer): void {
  lineLock = new SharedLock(buffer);
}

/**
 * Writes one line: time, worker, peer, token name, operation, name, bytes,
 * duration, checksum (and digest), result.
 */
export function logEvent(event: LogEvent): void {
  writeStderrLine(formatLogLine({ ...event, worker }, format, new Date()));
}

/** Writes `line` and a newline to stderr, whole, holding the lock of {@link setLogLock}. */
export function writeStderrLine(line: string): void {
  const bytes = encoder.encode(line + "\n");
  const write = () => {
    try {
      for (let written = 0; written < bytes.length;) {
        written += Deno.stderr.writeSync(bytes.subarray(written));
      }
    } catch (err) {
      // Whoever read the log has gone (`fts serve | tee log`, then Ctrl-C): serving, and
      // stopping cleanly, go on without it.
      if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
    }
  };
  if (lineLock) lineLock.hold(write);
  else write();
}

/**
 * One log line for `event`, without its newline: every string field truncated
 * and escaped, so that whatever the peer sent it is exactly one line.
 *
 * @example
 * ```ts
 * import { formatLogLine } from "./log.ts";
 * const line = formatLogLine(
 *   { peer: "127.0.0.1:5000", op: "hello", result: "VERSION", detail: "x\n2099-01-01 forged" },
 *   "text",
 *   new Date(0),
 * );
 * console.assert(line === '1970-01-01T00:00:00.000Z 127.0.0.1:5000 hello VERSION (x\\n2099-01-01 forged)');
 * ```
 */
export function formatLogLine(event: LogEvent, chosen: "text" | "json", at: Date): string {
  const time = at.toISOString();
  if (chosen === "json") {
    const json = (text: string | undefined) => text === undefined ? null : truncate(text);
    return JSON.stringify({
      time,
      worker: event.worker ?? null,
      peer: truncate(event.peer),
      token: json(event.token),
      op: truncate(event.op),
      name: json(event.name),
      bytes: event.bytes ?? null,
      durationMs: event.durationMs === undefined ? null : Math.round(event.durationMs * 10) / 10,
      checksum: event.checksum ?? null,
      digest: event.digest ?? null,
      result: truncate(event.result),
      detail: json(event.detail),
    }).replace(UNSAFE_CHARS, unicodeEscape);
  }
  const parts = [time];
  if (event.worker !== undefined) parts.push(`w${event.worker}`);
  parts.push(escapeText(event.peer));
  if (event.token !== undefined) parts.push(`[${escapeText(event.token)}]`);
  parts.push(escapeText(event.op));
  if (event.name !== undefined) parts.push(`"${escapeText(event.name).replaceAll('"', '\\"')}"`);
  if (event.bytes !== undefined) parts.push(`${event.bytes}B`);
  if (event.durationMs !== undefined) parts.push(`${event.durationMs.toFixed(1)}ms`);
  if (event.checksum !== undefined) {
    parts.push(event.digest === undefined ? event.checksum : `${event.checksum}:${event.digest}`);
  }
  parts.push(escapeText(event.result));
  if (event.detail) parts.push(`(${escapeText(event.detail)})`);
  return parts.join(" ");
}

/** Cuts `text` to {@link MAX_LOG_FIELD_CHARS}, never inside a surrogate pair, and says how much went. */
function truncate(text: string): string {
  if (text.length <= MAX_LOG_FIELD_CHARS) return text;
  let end = MAX_LOG_FIELD_CHARS;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end -= 1;
  return `${text.slice(0, end)}…[${text.length - end} chars cut]`;
}

/** Truncates and escapes one field of a text line: backslash escapes, as in a JSON string. */
function escapeText(text: string): string {
  return truncate(text).replaceAll("\\", "\\\\").replace(UNSAFE_CHARS, textEscape);
}

function textEscape(char: string): string {
  switch (char) {
    case "\n":
      return "\\n";
    case "\r":
      return "\\r";
    case "\t":
      return "\\t";
    default:
      return unicodeEscape(char);
  }
}

function unicodeEscape(char: string): string {
  return `\\u${char.charCodeAt(0).toString(16).padStart(4, "0")}`;
}
