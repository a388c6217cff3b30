/**
 * Ctrl-C as a process receives it: SIGINT (and, for a server, SIGTERM), the
 * copies of one key press counted once.
 *
 * @module
 */

/**
 * Signals closer together than this are one key press delivered twice: a
 * terminal sends SIGINT to every process of its foreground group, and
 * `deno task` also passes what it receives on to its child, so under
 * `deno task` one Ctrl-C reaches fts twice, milliseconds apart. A person
 * pressing twice on purpose is slower than this.
 */
export const SIGNAL_ECHO_MS = 250;

/**
 * Calls `onPress` with 1 for the first of `signals` to arrive, 2 for the
 * next press, and so on; a signal within {@link SIGNAL_ECHO_MS} of the one
 * before it is the same press. Disposing of the result stops listening.
 *
 * @example
 * ```ts
 * import { listenForInterrupts } from "./interrupt_signals.ts";
 * using _listening = listenForInterrupts(["SIGINT"], (presses) => {
 *   console.log(presses === 1 ? "stopping" : "stopping now");
 * });
 * ```
 */
export function listenForInterrupts(
  signals: readonly Deno.Signal[],
  onPress: (presses: number) => void,
): Disposable {
  let presses = 0;
  let lastMs = -Infinity;
  const listener = () => {
    const now = performance.now();
    const echo = now - lastMs < SIGNAL_ECHO_MS;
    lastMs = now;
    if (echo) return;
    presses += 1;
    onPress(presses);
  };
  for (const signal of signals) Deno.addSignalListener(signal, listener);
  return {
    [Symbol.dispose]() {
      for (const signal of signals) Deno.removeSignalListener(signal, listener);
    },
  };
}
