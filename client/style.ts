/**
 * Colour for terminals: used where it helps (errors, directories, verified
 * transfers), never under NO_COLOR or when the output is not a terminal.
 *
 * @module
 */

/** Colours for one output stream. */
export interface Style {
  /** For errors. */
  red(text: string): string;
  /** For verified transfers. */
  green(text: string): string;
  /** For directories. */
  blue(text: string): string;
  /** For what matters less. */
  dim(text: string): string;
}

const ANSI = { red: 31, green: 32, blue: 34, dim: 2 } as const;

/** A style for a stream: coloured only on a terminal and without NO_COLOR. */
export function styleFor(stream: { isTerminal(): boolean }): Style {
  const enabled = stream.isTerminal() && !Deno.env.get("NO_COLOR");
  const paint = (code: number) => (text: string) => enabled ? `\x1b[${code}m${text}\x1b[0m` : text;
  return {
    red: paint(ANSI.red),
    green: paint(ANSI.green),
    blue: paint(ANSI.blue),
    dim: paint(ANSI.dim),
  };
}
