/**
 * Deterministic generators of hostile protocol input for the fuzz tests: a
 * seeded PRNG, so that a failing input can be regenerated from its index.
 */

import { encodeFrame, type Message } from "../protocol/frames.ts";

/** A small, fast, seeded PRNG (mulberry32): the same seed gives the same inputs. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const OPS = ["list", "upload", "download", "delete", "terminate", "logout", "LIST", "x", ""];
const NAMES = [
  "",
  "a",
  "../x",
  "/etc/passwd",
  "a/../../b",
  "a\u0000b",
  ".fts/tmp/x",
  "CON",
  "%2e%2e/x",
  "\uff0e\uff0e/x",
  "e\u0301",
  "\u00e9",
  "a\\b",
  "x".repeat(300),
  "d/".repeat(2100),
];
const ODD_VALUES: unknown[] = [
  null,
  true,
  -1,
  1.5,
  2 ** 53,
  Number.MAX_SAFE_INTEGER,
  "5",
  [],
  {},
  "\u0000",
  1e308,
];

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

function randomValue(random: () => number, depth = 0): unknown {
  const kind = Math.floor(random() * (depth > 2 ? 4 : 6));
  switch (kind) {
    case 0:
      return pick(random, ODD_VALUES);
    case 1:
      return Math.floor(random() * 2 ** 32) - 2 ** 31;
    case 2:
      return pick(random, NAMES);
    case 3:
      return String.fromCharCode(...Array.from({ length: random() * 8 }, () => random() * 0xffff));
    case 4:
      return Array.from({ length: random() * 4 }, () => randomValue(random, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: random() * 4 }, () => [
          pick(random, ["type", "id", "op", "name", "size", "sha256", "x"]),
          randomValue(random, depth + 1),
        ]),
      );
  }
}

/** A plausible message: mostly well-formed, with a field or two gone wrong. */
function plausibleMessage(random: () => number): Message {
  const message: Message = {
    type: pick(random, ["request", "hello", "trailer", "request", "request", "entries", "?"]),
    id: random() < 0.8 ? Math.floor(random() * 5) : randomValue(random),
    op: pick(random, OPS),
    name: random() < 0.8 ? pick(random, NAMES) : randomValue(random),
    size: random() < 0.7 ? Math.floor(random() * 100) : randomValue(random),
    protocol: random() < 0.5 ? 1 : randomValue(random),
    software: "fuzz",
    sha256: random() < 0.5 ? "0".repeat(64) : randomValue(random),
  };
  if (random() < 0.3) delete message[pick(random, Object.keys(message))];
  return message;
}

/** Input number `index` of the hostile corpus: raw bytes to put on the wire. */
export function fuzzInput(random: () => number): Uint8Array {
  const strategy = random();
  if (strategy < 0.2) {
    // Random bytes.
    return Uint8Array.from({ length: Math.floor(random() * 200) }, () => random() * 256);
  }
  let frame: Uint8Array;
  try {
    frame = encodeFrame(random() < 0.7 ? plausibleMessage(random) : { v: randomValue(random) });
  } catch {
    frame = new Uint8Array([0, 0, 0, 0]);
  }
  const bytes = Array.from(frame);
  const mutations = Math.floor(random() * 4);
  for (let i = 0; i < mutations; i++) {
    const at = Math.floor(random() * bytes.length);
    switch (Math.floor(random() * 5)) {
      case 0:
        bytes[at] = Math.floor(random() * 256); // Overwrite a byte (the length header too).
        break;
      case 1:
        bytes.splice(at); // Truncate.
        break;
      case 2:
        bytes.splice(at, 0, ...Array.from({ length: random() * 16 }, () => random() * 256));
        break;
      case 3:
        bytes.push(...bytes.slice(0, Math.floor(random() * bytes.length))); // Data after the end.
        break;
      default:
        bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(random() * 8)); // Flip a bit.
    }
  }
  return Uint8Array.from(bytes);
}
