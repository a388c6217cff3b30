/**
 * Puts an `fts` command on PATH: `deno install --global` of main.ts with
 * exactly the permission flags of the `fts` task (the binary's), so that the
 * connect line a server prints can be pasted as it is.
 *
 * The command lands in `$DENO_INSTALL_ROOT/bin` (default `~/.deno/bin`). It
 * runs this checkout's main.ts with the Deno that installed it, named by its
 * full path, so it works where `deno` itself is not on PATH (a Deno run
 * through `npx`).
 *
 * Usage: deno task install
 *
 * @module
 */

import { join } from "node:path";
import { shellQuote } from "../cli/shell_quote.ts";
import { ftsTaskFlags } from "./compile.ts";

const PROJECT_DIR = new URL("..", import.meta.url).pathname;
/** The command's name on PATH. */
export const COMMAND_NAME = "fts";

/** The arguments of `deno install` for the fts command. */
export function installArgs(): string[] {
  return [
    "install",
    "--global",
    "--force",
    "--name",
    COMMAND_NAME,
    "--config",
    join(PROJECT_DIR, "deno.json"),
    ...ftsTaskFlags(),
    join(PROJECT_DIR, "main.ts"),
  ];
}

/** Where `deno install --global` puts commands. */
function installBin(): string {
  const root = Deno.env.get("DENO_INSTALL_ROOT") ??
    join(Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE") ?? ".", ".deno");
  return join(root, "bin");
}

async function main(): Promise<number> {
  const status = await new Deno.Command(Deno.execPath(), { args: installArgs(), cwd: PROJECT_DIR })
    .spawn().status;
  if (!status.success) return status.code || 1;
  if (Deno.build.os === "windows") return 0;
  // The shim starts `deno` from PATH; name the Deno that installed it instead.
  const shim = join(installBin(), COMMAND_NAME);
  const text = await Deno.readTextFile(shim);
  await Deno.writeTextFile(
    shim,
    text.replace(/^exec deno /m, `exec ${shellQuote(Deno.execPath())} `),
  );
  console.error(`${COMMAND_NAME}: installed as ${shim}`);
  return 0;
}

if (import.meta.main) Deno.exit(await main());
