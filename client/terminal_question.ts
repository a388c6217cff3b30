/**
 * A yes/no question asked on the terminal by a one-shot command (the
 * shell asks through its own line editor): `Proceed? [y/N]`, answered by a
 * line; Ctrl-C at it stops the command, as it would any other.
 *
 * @module
 */

import process from "node:process";
import { createInterface } from "node:readline";
import { InterruptedError } from "./interruption.ts";
import { terminalSafe } from "./terminal_safe.ts";

/**
 * Asks `question` with `[y/N]` on the terminal and resolves with whether
 * the answer starts with y; standard input ending is a no. Ctrl-C rejects
 * with an {@link InterruptedError}. Standard input is let go afterwards, so
 * the process can end.
 */
export function askOnTerminal(question: string): Promise<boolean> {
  const lines = createInterface({ input: process.stdin, output: process.stdout, terminal: true });
  return new Promise<boolean>((resolve, reject) => {
    lines.once("close", () => resolve(false));
    lines.once("SIGINT", () => {
      process.stdout.write("^C\n");
      reject(new InterruptedError(null));
    });
    lines.question(`${terminalSafe(question)} [y/N] `, (answer) => resolve(/^\s*y/i.test(answer)));
  }).finally(() => {
    lines.close();
    process.stdin.pause();
  });
}
