/**
 * A restarted server keeps its address: without `--port` it listens on the
 * port its root was served on last (kept in the state directory), so the
 * connect line it printed before still works, after a clean stop or a
 * `kill -9`; when that port is taken it says so and takes another.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_USAGE } from "../cli/exit_codes.ts";
import { readLastPort } from "../server/last_port.ts";
import { FTS_RUN_FLAGS, PROJECT_DIR, runClient, startServer } from "./_helpers.ts";

/** A root and a state directory that outlive each server started on them. */
async function withKeptPlace(
  fn: (
    start: (...extra: string[]) => ReturnType<typeof startServer>,
    root: string,
    state: string,
  ) => Promise<void>,
): Promise<void> {
  const place = await Deno.makeTempDir({ prefix: "fts-restart-" });
  const root = join(place, "root");
  const state = join(place, "state");
  try {
    await fn(
      (...extra) => startServer(["--root", root, "--state-dir", state, ...extra], { auth: true }),
      root,
      state,
    );
  } finally {
    await Deno.remove(place, { recursive: true });
  }
}

/** The command a user would paste: the token and port from the printed connect line. */
function pastedLine(stdout: string): { token: string; port: number } {
  const match = /FTS_TOKEN=(\S+) fts connect 127\.0\.0\.1:(\d+)/.exec(stdout);
  assert.ok(match, stdout);
  return { token: match[1]!, port: Number(match[2]) };
}

Deno.test("a restarted server listens on its last port, and the printed line still connects", async () => {
  await withKeptPlace(async (start, root, state) => {
    const first = await start();
    const printed = pastedLine(first.stdout());
    assert.equal(printed.port, first.port);
    await first.stop();
    assert.equal(await readLastPort(state, await Deno.realPath(root)), first.port);

    const again = await start();
    try {
      assert.equal(again.port, first.port, again.log());
      const run = await runClient([`127.0.0.1:${printed.port}`, "ls"], {
        env: { FTS_TOKEN: printed.token },
      });
      assert.equal(run.code, 0, run.stderr);
    } finally {
      await again.stop();
    }
  });
});

Deno.test("a server killed with connections open gets its port back at the next start", async () => {
  await withKeptPlace(async (start) => {
    const first = await start();
    // A session open when the server dies leaves the port's connections in TIME_WAIT.
    const open = await Deno.connect({ hostname: "127.0.0.1", port: first.port });
    try {
      const listed = await runClient([`127.0.0.1:${first.port}`, "--token", first.token!, "ls"]);
      assert.equal(listed.code, 0, listed.stderr);
      first.process.kill("SIGKILL");
      await first.stop();
    } finally {
      open.close();
    }
    const again = await start();
    try {
      assert.equal(again.port, first.port, again.log());
    } finally {
      await again.stop();
    }
  });
});

Deno.test("a server whose last port is taken says so and listens on another", async () => {
  await withKeptPlace(async (start) => {
    const first = await start();
    await first.stop();
    const squatter = Deno.listen({ hostname: "127.0.0.1", port: first.port });
    try {
      const again = await start();
      try {
        assert.notEqual(again.port, first.port);
        assert.match(
          again.log(),
          new RegExp(`port ${first.port}, where this root was served last`),
        );
        const run = await runClient([`127.0.0.1:${again.port}`, "--token", again.token!, "ls"]);
        assert.equal(run.code, 0, run.stderr);
      } finally {
        await again.stop();
      }
    } finally {
      squatter.close();
    }
    // The port it got is the one kept now.
    const third = await start();
    try {
      assert.notEqual(third.port, first.port);
    } finally {
      await third.stop();
    }
  });
});

Deno.test("--new-token with a token given is refused, not ignored", async () => {
  for (const extra of [["--token", "a-token-long-enough-to-be-accepted-0123"], ["--no-auth"]]) {
    const run = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...FTS_RUN_FLAGS,
        join(PROJECT_DIR, "main.ts"),
        "serve",
        "--new-token",
        ...extra,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(run.stderr);
    assert.equal(run.code, EXIT_USAGE, stderr);
    assert.match(stderr, /--new-token replaces the generated token/);
  }
});
