/**
 * The progress line for transfers on a terminal: name, bytes done and total,
 * percent, rate and ETA, redrawn in place at most every
 * {@link PROGRESS_REDRAW_MS}. Nothing at all when stderr is not a terminal
 * or with --quiet.
 *
 * @module
 */

import { formatBytes } from "./format.ts";
import { terminalSafe } from "./terminal_safe.ts";

/** How often the line is redrawn: smooth to the eye, cheap for the CPU. */
export const PROGRESS_REDRAW_MS = 100;

/** The shortest a name is cut to, to fit the line: still recognisable. */
const MIN_LABEL_CHARS = 8;

const encoder = new TextEncoder();

/** The terminal's width, or no limit when it cannot be told. */
function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return Infinity;
  }
}
const CLEAR_LINE = "\r\x1b[2K";

/** One transfer's (or one batch's) progress line. */
export class Progress {
  readonly #label: string;
  #totalBytes: number;
  readonly #enabled: boolean;
  readonly #startedMs = performance.now();
  #lastDrawMs = 0;
  #doneBytes = 0;

  /** `label` names what moves; it is shown {@link terminalSafe}. */
  constructor(label: string, totalBytes: number, enabled: boolean) {
    this.#label = terminalSafe(label);
    this.#totalBytes = totalBytes;
    this.#enabled = enabled;
  }

  /** Sets the total, once it is known (a download learns its size from the server). */
  set totalBytes(bytes: number) {
    this.#totalBytes = bytes;
  }

  /** Records that `doneBytes` of the total are done; redraws if it is time. */
  update(doneBytes: number): void {
    this.#doneBytes = doneBytes;
    if (!this.#enabled) return;
    const now = performance.now();
    if (now - this.#lastDrawMs < PROGRESS_REDRAW_MS && doneBytes < this.#totalBytes) return;
    this.#lastDrawMs = now;
    Deno.stderr.writeSync(encoder.encode(CLEAR_LINE + this.line(now, terminalColumns())));
  }

  /** Removes the line, leaving the terminal as it was. */
  clear(): void {
    if (this.#enabled && this.#lastDrawMs > 0) eraseProgressLine();
  }

  /** Seconds since the transfer started. */
  get elapsedSeconds(): number {
    return (performance.now() - this.#startedMs) / 1000;
  }

  /**
   * The line as drawn: `name  12.0 MiB / 100.0 MiB  12%  45.0 MiB/s  ETA 0:02`;
   * within `columns`, the name is shortened (a wrapped line could not be
   * redrawn in place).
   */
  line(nowMs = performance.now(), columns = Infinity): string {
    const seconds = Math.max((nowMs - this.#startedMs) / 1000, 1e-3);
    const rate = this.#doneBytes / seconds;
    const percent = this.#totalBytes === 0 ? 100 : (100 * this.#doneBytes) / this.#totalBytes;
    const etaSeconds = rate > 0 ? (this.#totalBytes - this.#doneBytes) / rate : Infinity;
    const figures = `  ${formatBytes(this.#doneBytes)} / ${formatBytes(this.#totalBytes)}  ` +
      `${percent.toFixed(0)}%  ${formatBytes(rate)}/s  ETA ${formatDuration(etaSeconds)}`;
    // One column spare: a line that fills the last one wraps on some terminals.
    const room = columns - 1 - figures.length;
    const label = [...this.#label];
    const shown = label.length <= room
      ? this.#label
      : `${label.slice(0, Math.max(room - 1, MIN_LABEL_CHARS)).join("")}…`;
    return shown + figures;
  }
}

/**
 * Erases the line the cursor is on, on stderr: a progress line that will not
 * be cleared by its transfer (fts is exiting at once).
 */
export function eraseProgressLine(): void {
  Deno.stderr.writeSync(encoder.encode(CLEAR_LINE));
}

/** `m:ss`, or `h:mm:ss`, or `--:--` when unknown. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return "--:--";
  const whole = Math.round(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
