/**
 * Text that came from a peer, or from names on a disk, is data: before it
 * reaches a terminal, every character that could steer the terminal or
 * disguise the text is shown escaped.
 *
 * @module
 */

/**
 * What a terminal must never receive raw: C0 controls (ESC, CR, BEL, the
 * newline that would forge a line), DEL, C1 controls (U+009B is a CSI on
 * its own), the line and paragraph separators, bidirectional embeddings,
 * overrides and isolates (U+202A–U+202E, U+2066–U+2069), and unpaired
 * surrogates (which no terminal can draw).
 */
const UNSAFE_FOR_TERMINAL =
  // deno-lint-ignore no-control-regex
  /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/** The characters JSON.stringify leaves raw that {@link UNSAFE_FOR_TERMINAL} refuses. */
const UNSAFE_IN_JSON = /[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Renders untrusted text for a terminal: unsafe characters become `\xHH`
 * (up to U+00FF) or `\uHHHH`; everything else is kept as it is.
 *
 * @example
 * ```ts
 * import { terminalSafe } from "./terminal_safe.ts";
 * console.assert(terminalSafe("a\x1b[2Jb") === "a\\x1b[2Jb");
 * console.assert(terminalSafe("\u202etxt.exe") === "\\u202etxt.exe");
 * ```
 */
export function terminalSafe(text: string): string {
  return text.replace(UNSAFE_FOR_TERMINAL, (character) => {
    const code = character.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

/**
 * `JSON.stringify(value)`, with the characters it leaves raw that a terminal
 * must not receive (DEL, C1 controls, separators, bidi controls) written as
 * `\uHHHH` escapes: the same JSON value, safe to print.
 *
 * @example
 * ```ts
 * import { terminalSafeJson } from "./terminal_safe.ts";
 * console.assert(terminalSafeJson({ name: "\u009b" }) === '{"name":"\\u009b"}');
 * console.assert(JSON.parse(terminalSafeJson("\u202e")) === "\u202e");
 * ```
 */
export function terminalSafeJson(value: unknown): string {
  return JSON.stringify(value).replace(
    UNSAFE_IN_JSON,
    (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
