/**
 * "Did you mean": the known word nearest a mistyped one.
 *
 * @module
 */

/**
 * Most edits (insertions, deletions, substitutions, swaps of two neighbours)
 * between a typed word and the word suggested for it: two catches `lsit` and
 * `dowload`, and suggests nothing for a word that only shares letters.
 */
export const MAX_SUGGESTION_EDITS = 2;

/**
 * The word of `known` nearest `typed` (case-insensitively) within
 * {@link MAX_SUGGESTION_EDITS}, or undefined.
 *
 * @example
 * ```ts
 * import { nearestWord } from "./suggest.ts";
 * console.assert(nearestWord("lsit", ["list", "ls", "stat"]) === "list");
 * console.assert(nearestWord("zzzzzz", ["list"]) === undefined);
 * ```
 */
export function nearestWord(typed: string, known: readonly string[]): string | undefined {
  const word = typed.toLowerCase();
  let best: string | undefined;
  let bestEdits = MAX_SUGGESTION_EDITS + 1;
  for (const candidate of known) {
    // A suggestion must be more than its edits: `ab` is not "nearly" `ls`.
    if (Math.min(word.length, candidate.length) <= MAX_SUGGESTION_EDITS) continue;
    const edits = editDistance(word, candidate);
    if (edits < bestEdits) {
      best = candidate;
      bestEdits = edits;
    }
  }
  return best;
}

/** Optimal string alignment distance: Levenshtein plus swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push([i]);
    for (let j = 1; j <= b.length; j++) rows[i]![j] = i === 0 ? j : 0;
  }
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        value = Math.min(value, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = value;
    }
  }
  return rows[a.length]![b.length]!;
}
