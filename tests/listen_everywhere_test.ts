/**
 * A server started without `--host` listens on every interface, IPv6 and
 * IPv4. Run inside a network namespace of its own (`unshare -n`), whose only
 * interface is its loopback, so that "every interface" reaches nothing else.
 */

import assert from "node:assert/strict";
import { shellQuote } from "../cli/shell_quote.ts";
import { join } from "node:path";
import { FTS_RUN_FLAGS, PROJECT_DIR } from "./_helpers.ts";

/** How long the whole exchange inside the namespace may take before it is stopped. */
const NAMESPACE_RUN_TIMEOUT_MS = 60_000;
/** Tenths of a second the script waits for the port file. */
const PORT_FILE_WAIT_TENTHS = 300;

Deno.test({
  name:
    "fts serve with no --host takes connections on 127.0.0.1 and on ::1, and logs each by its own address",
  ignore: Deno.uid() !== 0,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "fts-listen-" });
    try {
      const root = join(dir, "root");
      await Deno.mkdir(root);
      await Deno.writeTextFile(join(root, "hello.txt"), "hello\n");
      const portFile = join(dir, "port");
      const fts = [Deno.execPath(), "run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts")]
        .map(shellQuote).join(" ");
      const script = [
        "ip link set lo up",
        `${fts} serve --root ${shellQuote(root)} --port-file ${shellQuote(portFile)} > ${
          shellQuote(join(dir, "serve.out"))
        } 2>&1 &`,
        "server=$!",
        `i=0; while [ ! -s ${
          shellQuote(portFile)
        } ] && [ $i -lt ${PORT_FILE_WAIT_TENTHS} ]; do sleep 0.1; i=$((i+1)); done`,
        `port=$(cat ${shellQuote(portFile)})`,
        `token=$(sed -n 's/.*"token": *"\\([^"]*\\)".*/\\1/p' ${shellQuote(portFile + ".json")})`,
        `FTS_TOKEN="$token" ${fts} connect "127.0.0.1:$port" ls; echo "ipv4 exit $?"`,
        `FTS_TOKEN="$token" ${fts} connect "[::1]:$port" ls; echo "ipv6 exit $?"`,
        "kill $server; wait $server",
      ].join("\n");
      const run = await new Deno.Command("unshare", {
        args: ["-n", "sh", "-c", script],
        cwd: dir,
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(NAMESPACE_RUN_TIMEOUT_MS),
      }).output();
      const out = new TextDecoder().decode(run.stdout);
      const err = new TextDecoder().decode(run.stderr);
      const served = await Deno.readTextFile(join(dir, "serve.out")).catch(() => "");
      const context = `${out}\n${err}\n${served}`;
      assert.match(served, /fts: serving .* on \[::\]:\d+/, context);
      assert.match(out, /ipv4 exit 0/, context);
      assert.match(out, /ipv6 exit 0/, context);
      assert.equal(out.match(/hello\.txt/g)?.length, 2, context);
      // The IPv4 client is logged by its IPv4 address, not as ::ffff:127.0.0.1.
      assert.match(served, /127\.0\.0\.1:\d+ connect ok/, context);
      assert.match(served, /\[::1\]:\d+ connect ok/, context);
      assert.doesNotMatch(served, /::ffff:/i, context);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
