/**
 * Widens a race window in a real server process: strace, attached to the
 * running process, delays the system calls named on one path only
 * (`-P PATH -e inject=CALLS:delay_enter=…`), and nothing else in the server
 * changes. Tests then bring the other side of the race in while the call is
 * held, and assert on what is on disk, never on timing. Needs strace (.ci/run
 * installs it) and root or ptrace rights.
 */

import assert from "node:assert/strict";
import { waitFor } from "./_helpers.ts";

/** How long each delayed call is held: long enough for the other side of a race to act. */
export const SYSCALL_DELAY_US = 3_000_000;

/** How long strace may take to attach to every thread of the server. */
const ATTACH_TIMEOUT_MS = 10_000;

/**
 * Delays `syscalls` (strace's names, comma-separated) of process `pid` on
 * `path` by {@link SYSCALL_DELAY_US} each, until the returned handle is
 * disposed (strace detaches and exits).
 */
export async function delaySyscalls(
  pid: number,
  syscalls: string,
  path: string,
): Promise<AsyncDisposable> {
  const tracer = new Deno.Command("strace", {
    args: [
      "-f",
      "-p",
      String(pid),
      "-o",
      "/dev/null",
      "-P",
      path,
      "-e",
      `trace=${syscalls}`,
      "-e",
      `inject=${syscalls}:delay_enter=${SYSCALL_DELAY_US}`,
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const detach = async () => {
    try {
      tracer.kill("SIGTERM");
    } catch {
      // Gone already.
    }
    await tracer.status;
  };
  const traced = () =>
    [...Deno.readDirSync(`/proc/${pid}/task`)].every((task) =>
      /TracerPid:\s*[1-9]/.test(Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/status`))
    );
  if (!await waitFor(traced, ATTACH_TIMEOUT_MS)) {
    await detach();
    assert.fail("strace did not attach to the server");
  }
  return { [Symbol.asyncDispose]: detach };
}

/** Whether a thread of `pid` is inside one of the system calls numbered `numbers` now (each thread's /proc/PID/task/TID/syscall). */
export function inSyscall(pid: number, numbers: number[]): boolean {
  return [...Deno.readDirSync(`/proc/${pid}/task`)].some((task) => {
    try {
      const call = Number(
        Deno.readTextFileSync(`/proc/${pid}/task/${task.name}/syscall`).split(" ")[0],
      );
      return numbers.includes(call);
    } catch {
      return false;
    }
  });
}
