/**
 * The fts command line: parses the subcommand and hands over to `serve` or
 * `connect`. Every error leaves through one exit path.
 *
 * @module
 */

import { EXIT_OK } from "./cli/exit_codes.ts";
import { UsageError } from "./cli/usage_error.ts";
import { connect } from "./client/connect.ts";
import { reportError } from "./client/report_error.ts";
import { SOFTWARE_VERSION } from "./protocol/limits.ts";
import { serve } from "./server/serve.ts";

const HELP =
  `fts ${SOFTWARE_VERSION}: move files between machines over TCP, every transfer verified.

Usage:
  fts serve   [--root DIR] [--host HOST] [--port N] [--port-file FILE]
  fts connect [HOST[:PORT]] [--port-file FILE] [COMMAND [ARG...]]
  fts --help | fts serve --help | fts connect --help | fts --version

Run \`fts serve\` on the host that keeps the files and \`fts connect\` wherever
you are; \`fts connect --help\` lists the commands.
`;

/** Runs fts with command-line arguments; resolves with the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const [subcommand, ...rest] = args;
    switch (subcommand) {
      case "serve":
        return await serve(rest);
      case "connect":
        return await connect(rest);
      case "--version":
      case "-V":
        console.log(`fts ${SOFTWARE_VERSION}`);
        return EXIT_OK;
      case undefined:
      case "--help":
      case "-h":
      case "help":
        console.log(HELP);
        return EXIT_OK;
      default:
        throw new UsageError(`unknown subcommand '${subcommand}'; expected serve or connect`);
    }
  } catch (err) {
    return reportError(err);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
