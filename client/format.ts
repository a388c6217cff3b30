/**
 * How results look on a terminal: listings and transfer summaries.
 *
 * @module
 */

import type { Entry } from "../protocol/messages.ts";
import type { TransferResult } from "./connection.ts";

/** Formats a listing: type, size in bytes, local modification time, name (directories end in `/`). */
export function formatListing(entries: Entry[]): string {
  if (entries.length === 0) return "(empty)";
  const sizeWidth = Math.max(...entries.map((entry) => String(entry.size).length));
  return entries.map((entry) => {
    const size = entry.type === "dir" ? "-" : String(entry.size);
    const name = entry.type === "dir" ? `${entry.name}/` : entry.name;
    return `${entry.type.padEnd(4)}  ${size.padStart(sizeWidth)}  ${
      formatTime(entry.mtime)
    }  ${name}`;
  }).join("\n");
}

/** Formats a finished transfer: `uploaded a.bin -> a.bin: 1.0 MiB (1048576 bytes), sha256 3f…, verified`. */
export function formatTransfer(
  verb: "uploaded" | "downloaded",
  from: string,
  to: string,
  result: TransferResult,
): string {
  return `${verb} ${from} -> ${to}: ${formatBytes(result.size)} (${result.size} bytes), ` +
    `sha256 ${result.sha256.slice(0, 16)}…, verified`;
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
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatTime(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
