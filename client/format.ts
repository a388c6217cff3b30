/**
 * How results look on a terminal: listings and entries.
 *
 * @module
 */

import { join } from "node:path";
import type { DfFields, Entry } from "../protocol/messages.ts";
import type { Style } from "./style.ts";
import { terminalSafe } from "./terminal_safe.ts";

const PLAIN: Style = { red: (t) => t, green: (t) => t, blue: (t) => t, dim: (t) => t };

/** How a listing is shown: `ls -h`, `ls -t`. */
export interface ListingOptions {
  /** Sizes in binary units (`1.3 GiB`) rather than bytes. @default {false} */
  human?: boolean;
  /** Newest first, rather than by name. @default {false} */
  byTime?: boolean;
}

/**
 * Formats a listing: type, size in bytes, local modification time, name
 * (directories end in `/`). Names are shown {@link terminalSafe}: a name
 * can neither steer the terminal nor forge a line.
 */
export function formatListing(
  entries: Entry[],
  style: Style = PLAIN,
  options: ListingOptions = {},
): string {
  if (entries.length === 0) return "(empty)";
  const shownSize = (size: number) => options.human ? formatBytes(size) : String(size);
  const ordered = options.byTime
    ? entries.slice().sort((a, b) => b.mtime - a.mtime || (a.name < b.name ? -1 : 1))
    : entries;
  // A loop, not Math.max(...sizes): a spread of many entries overflows the stack.
  let sizeWidth = 0;
  for (const entry of entries) sizeWidth = Math.max(sizeWidth, shownSize(entry.size).length);
  return ordered.map((entry) => {
    const size = entry.type === "dir" ? "-" : shownSize(entry.size);
    const shown = terminalSafe(entry.name);
    const name = entry.type === "dir" ? style.blue(`${shown}/`) : shown;
    return `${terminalSafe(entry.type).padEnd(4)}  ${size.padStart(sizeWidth)}  ${
      formatTime(entry.mtime)
    }  ${name}`;
  }).join("\n");
}

/** Formats one entry as `stat` shows it. */
export function formatEntry(entry: Entry & { mode?: number; sha256?: string }): string {
  const lines = [
    `name:     ${terminalSafe(entry.name)}`,
    `type:     ${terminalSafe(entry.type)}`,
    `size:     ${entry.size} (${formatBytes(entry.size)})`,
    `modified: ${formatTime(entry.mtime)}`,
  ];
  if (entry.mode !== undefined) lines.push(`mode:     ${entry.mode.toString(8).padStart(4, "0")}`);
  if (entry.sha256) lines.push(`sha256:   ${terminalSafe(entry.sha256)}`);
  return lines.join("\n");
}

/** Lists a local directory like a remote one. */
export async function formatLocalListing(
  dir: string,
  style: Style = PLAIN,
  options: ListingOptions = {},
): Promise<{ text: string; entries: Entry[] }> {
  const entries: Entry[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const info = await Deno.lstat(join(dir, entry.name));
    const type = info.isFile
      ? "file"
      : info.isDirectory
      ? "dir"
      : info.isSymlink
      ? "link"
      : "other";
    entries.push({ name: entry.name, type, size: info.size, mtime: info.mtime?.getTime() ?? 0 });
  }
  entries.sort((a, b) => a.name < b.name ? -1 : 1);
  return { text: formatListing(entries, style, options), entries };
}

/**
 * Formats `df`'s reply: free space (and the reserve uploads must leave), and
 * the quota with what is used and left; sizes in bytes, or with `human` in
 * binary units.
 */
export function formatSpace(space: DfFields, human = false): string {
  const size = (bytes: number) => human ? formatBytes(bytes) : `${bytes}`;
  const usable = Math.max(0, space.freeBytes - space.reserveBytes);
  const lines = [
    `free:   ${size(space.freeBytes)}` +
    (space.reserveBytes > 0
      ? ` (${size(usable)} for uploads: ${size(space.reserveBytes)} ` +
        "kept free)"
      : ""),
  ];
  if (space.quotaBytes === null) lines.push("quota:  none");
  else {
    const left = Math.max(0, space.quotaBytes - space.usedBytes);
    lines.push(
      `quota:  ${size(space.quotaBytes)}, ${size(space.usedBytes)} used, ${size(left)} left`,
    );
  }
  return lines.join("\n");
}

/** Formats a byte count in binary units: `512 B`, `1.5 MiB`. */
export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${Math.round(bytes)} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * A modification time as `ls` and `stat` both show it: local time, to the
 * second (`2026-12-02 04:51:07`).
 *
 * @example
 * ```ts
 * import { formatTime } from "./format.ts";
 * console.assert(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/.test(formatTime(0)));
 * ```
 */
export function formatTime(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}
