/**
 * Whether a sync's plan fits where it goes: the bytes the target tree grows
 * by, against the room the target has (on the server: its free space less
 * the reserve every upload must leave, and what its quota leaves; here: the
 * local file system's free space). Said in the preview and the dry run; a
 * plan that certainly cannot fit is refused before any byte moves.
 *
 * @module
 */

import { statfs } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { DfFields } from "../protocol/server_messages.ts";
import { formatBytes } from "./format.ts";
import type { SyncPlan } from "./sync_plan.ts";
import type { TreeSnapshot } from "./sync_plan.ts";

/** The room a target has, and what bounds it. */
export interface TargetRoom {
  /** Bytes the target can still take. */
  bytes: number;
  /** What bounds it, for the preview: "free space", "quota". */
  bound: string;
}

/** A plan's need beside the target's room, as the preview and `--json` give it. */
export interface SpaceCheck {
  /** Bytes the target tree grows by: new files, and updates by what they add. */
  needBytes: number;
  /** What the target can take; null when it cannot be told (a server without `df`). */
  roomBytes: number | null;
  /** What bounds the room. */
  bound: string | null;
  /** False only when the plan certainly cannot fit. */
  fits: boolean;
}

/**
 * The bytes a plan adds to the target: every new file's size, and for each
 * update what it is larger than the file it replaces (a smaller one frees
 * room, counted as none). A lower bound: while a file is written its old
 * version still takes its room, so the peak is higher by up to one file.
 *
 * @example
 * ```ts
 * import { growthBytes } from "./sync_space.ts";
 * const target = { files: new Map([["b", { size: 10, mtime: 0 }]]), dirs: new Set<string>() };
 * const plan = {
 *   directories: [], remove: [], unchanged: [], conflicts: [],
 *   create: [{ path: "a", size: 5 }],
 *   update: [{ path: "b", size: 15 }],
 * };
 * console.assert(growthBytes(plan, target) === 10);
 * ```
 */
export function growthBytes(plan: SyncPlan, target: TreeSnapshot): number {
  let bytes = plan.create.reduce((sum, file) => sum + file.size, 0);
  for (const file of plan.update) {
    bytes += Math.max(0, file.size - (target.files.get(file.path)?.size ?? 0));
  }
  return bytes;
}

/** The room on the server, from its `df` reply: the smaller of its free space and its quota's. */
export function serverRoom(df: DfFields): TargetRoom {
  const disk = Math.max(0, df.freeBytes - df.reserveBytes);
  if (df.quotaBytes !== null && df.quotaBytes - df.usedBytes < disk) {
    return { bytes: Math.max(0, df.quotaBytes - df.usedBytes), bound: "quota" };
  }
  return {
    bytes: disk,
    bound: df.reserveBytes > 0 ? "free space, less its reserve" : "free space",
  };
}

/** The room on the local file system that holds (or will hold) `top`. */
export async function localRoom(top: string): Promise<TargetRoom> {
  let path = resolve(top);
  // The top may not exist yet: its nearest existing parent is on the file system it will be on.
  for (;;) {
    try {
      const info = await statfs(path);
      return { bytes: Number(info.bavail) * Number(info.bsize), bound: "free space" };
    } catch (err) {
      const parent = dirname(path);
      if ((err as { code?: string }).code !== "ENOENT" || parent === path) throw err;
      path = parent;
    }
  }
}

/** The plan's need beside `room` (null: unknown). */
export function checkSpace(needBytes: number, room: TargetRoom | null): SpaceCheck {
  return {
    needBytes,
    roomBytes: room?.bytes ?? null,
    bound: room?.bound ?? null,
    fits: room === null || needBytes <= room.bytes,
  };
}

/** The preview's line: `space: needs 2.0 MiB, the server has room for 1.0 GiB (quota)`. */
export function spaceLine(check: SpaceCheck, where: string): string {
  const need = `needs ${formatBytes(check.needBytes)}`;
  if (check.roomBytes === null) return `space: ${need}; ${where} does not say how much room it has`;
  const room = `${where} has room for ${formatBytes(check.roomBytes)} (${check.bound})`;
  return check.fits ? `space: ${need}, ${room}` : `does not fit: ${need}, ${room}`;
}
