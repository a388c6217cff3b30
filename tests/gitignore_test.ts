/**
 * What `fts serve` writes into a checkout by default stays out of git: the
 * port file, and its companion, which holds the admin token.
 */

import assert from "node:assert/strict";
import { DEFAULT_PORT_FILE, DEFAULT_ROOT } from "../server/config.ts";
import { PROJECT_DIR } from "./_helpers.ts";

Deno.test("the default port file, its token-holding companion and the served root are git-ignored", async () => {
  for (const path of [DEFAULT_PORT_FILE, `${DEFAULT_PORT_FILE}.json`, `${DEFAULT_ROOT}/a.txt`]) {
    const check = await new Deno.Command("git", {
      args: ["check-ignore", "--quiet", "--no-index", path],
      cwd: PROJECT_DIR,
      stdout: "null",
      stderr: "piped",
    }).output();
    assert.equal(
      check.code,
      0,
      `${path} is not ignored: ${new TextDecoder().decode(check.stderr)}`,
    );
  }
});
