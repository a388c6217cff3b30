/**
 * Builds the single fts executable for each platform into dist/, with exactly
 * the permission flags of the `fts` task in deno.json (so `deno task fts` and
 * the binary behave alike).
 *
 * Usage: deno task compile [--target TRIPLE]
 *
 * @module
 */

import { join } from "node:path";
import { parseArgs } from "node:util";

const PROJECT_DIR = new URL("..", import.meta.url).pathname;

/** Every platform fts ships for, and the file name of its executable. */
export const TARGETS = [
  { target: "x86_64-unknown-linux-gnu", output: "fts-linux-x64" },
  { target: "aarch64-unknown-linux-gnu", output: "fts-linux-arm64" },
  { target: "x86_64-apple-darwin", output: "fts-macos-x64" },
  { target: "aarch64-apple-darwin", output: "fts-macos-arm64" },
  { target: "x86_64-pc-windows-msvc", output: "fts-windows-x64.exe" },
] as const;

/** Modules loaded at run time rather than imported, which the binary must embed. */
export const EMBEDDED_MODULES = [
  "server/worker.ts",
  "io/hash_thread.ts",
  "server/self_signed_cert.ts",
];

/** The flags of the `fts` task (`deno run FLAGS main.ts`) in deno.json. */
export function ftsTaskFlags(): string[] {
  const config = JSON.parse(Deno.readTextFileSync(join(PROJECT_DIR, "deno.json")));
  const words = String(config.tasks.fts).trim().split(/\s+/);
  if (words[0] !== "deno" || words[1] !== "run" || words.at(-1) !== "main.ts") {
    throw new Error(`the fts task must read 'deno run FLAGS main.ts', not: ${config.tasks.fts}`);
  }
  return words.slice(2, -1);
}

/** The arguments of `deno compile` for one target. */
export function compileArgs(target: string, output: string): string[] {
  return [
    "compile",
    ...ftsTaskFlags(),
    ...EMBEDDED_MODULES.flatMap((module) => ["--include", module]),
    "--target",
    target,
    "--output",
    join("dist", output),
    "main.ts",
  ];
}

async function main(): Promise<number> {
  const { values } = parseArgs({ args: Deno.args, options: { target: { type: "string" } } });
  const targets = TARGETS.filter((t) => values.target === undefined || t.target === values.target);
  if (targets.length === 0) {
    console.error(
      `unknown target ${values.target}; known: ${TARGETS.map((t) => t.target).join(", ")}`,
    );
    return 2;
  }
  let failed = 0;
  for (const { target, output } of targets) {
    const args = compileArgs(target, output);
    console.error(`deno ${args.join(" ")}`);
    const status = await new Deno.Command(Deno.execPath(), { args, cwd: PROJECT_DIR }).spawn()
      .status;
    if (!status.success) failed += 1;
  }
  if (failed > 0) console.error(`${failed} of ${targets.length} targets failed`);
  return failed > 0 ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main());
