/**
 * The terminal's keys on their way to the prompt's line editor. Open (at the
 * prompt and at a question) every key goes through; closed (while a command
 * runs) keys are dropped, so nothing typed is echoed across the progress line
 * or left to run as a command afterwards, and Ctrl-C, which the terminal in
 * raw mode delivers as a byte rather than a signal, calls `onInterrupt`.
 *
 * @module
 */

import { PassThrough } from "node:stream";

/** The byte a terminal in raw mode sends for Ctrl-C. */
const CTRL_C = 0x03;

/** The terminal input the gate reads: standard input, on a terminal. */
export interface TerminalInput extends NodeJS.ReadableStream {
  setRawMode(mode: boolean): unknown;
}

/**
 * A stream for node:readline to read in place of the terminal.
 *
 * @example
 * ```ts ignore
 * import process from "node:process";
 * import { createInterface } from "node:readline";
 * import { KeyboardGate } from "./keyboard_gate.ts";
 * const gate = new KeyboardGate(process.stdin, () => console.log("stop"));
 * const lines = createInterface({ input: gate, output: process.stdout, terminal: true });
 * gate.open = false; // a command runs: Ctrl-C now says "stop", other keys are dropped
 * ```
 */
export class KeyboardGate extends PassThrough {
  /** Whether keys go through to the line editor. */
  open = true;
  /** For node:readline, which draws the line itself only on a terminal. */
  readonly isTTY = true;
  readonly #source: TerminalInput;
  readonly #onData: (chunk: Uint8Array) => void;
  readonly #onEnd: () => void;

  /** Reads `source` from now on; `onInterrupt` is called for a Ctrl-C while the gate is closed. */
  constructor(source: TerminalInput, onInterrupt: () => void) {
    super();
    this.#source = source;
    this.#onData = (chunk) => {
      if (this.open) this.write(chunk);
      else if (chunk.includes(CTRL_C)) onInterrupt();
    };
    this.#onEnd = () => this.end();
    source.on("data", this.#onData);
    source.on("end", this.#onEnd);
  }

  /** The line editor's raw mode, set on the terminal itself. */
  setRawMode(mode: boolean): this {
    this.#source.setRawMode(mode);
    return this;
  }

  /**
   * Lends the terminal to a program fts runs (`!COMMAND`) for as long as
   * `use` runs: the gate stops reading it and raw mode is off, so the
   * program gets the keys, and a Ctrl-C, a signal again, reaches it; fts
   * itself ignores that signal meanwhile.
   */
  async lend<T>(use: () => Promise<T>): Promise<T> {
    const ignore = () => {};
    // Ignored first: from the moment raw mode is off, a Ctrl-C is a signal.
    Deno.addSignalListener("SIGINT", ignore);
    this.#source.pause();
    this.#source.setRawMode(false);
    try {
      return await use();
    } finally {
      Deno.removeSignalListener("SIGINT", ignore);
      this.#source.setRawMode(true);
      this.#source.resume();
    }
  }

  /** Stops reading the terminal (once the line editor is closed), so that it no longer keeps the process alive. */
  detach(): void {
    this.#source.off("data", this.#onData);
    this.#source.off("end", this.#onEnd);
    this.#source.pause();
  }
}
