import assert from "node:assert/strict";
import { join } from "node:path";
import { compileArgs, EMBEDDED_MODULES, ftsTaskFlags, TARGETS } from "../scripts/compile.ts";
import { PROJECT_DIR, startServer } from "./_helpers.ts";

const config = JSON.parse(await Deno.readTextFile(join(PROJECT_DIR, "deno.json")));

Deno.test("compile gives every binary exactly the permission and V8 flags of the fts task", () => {
  const runFlags = ftsTaskFlags();
  assert.ok(runFlags.includes("--unstable-worker-options"));
  assert.ok(runFlags.includes("--unstable-net"), "the workers share their port (reusePort)");
  assert.ok(runFlags.includes("--no-prompt"));
  // The client's !COMMAND may run sh, and nothing else; the server's worker may run nothing.
  assert.ok(!runFlags.some((flag) => /^--allow-(all|ffi)\b|^-A$/.test(flag)));
  assert.deepEqual(runFlags.filter((flag) => flag.startsWith("--allow-run")), ["--allow-run=sh"]);
  assert.equal(TARGETS.length, 5);
  for (const { target, output } of TARGETS) {
    const args = compileArgs(target, output);
    const permissionFlags = args.filter((arg) =>
      arg.startsWith("--allow-") || arg.startsWith("--unstable") || arg === "--no-prompt" ||
      arg.startsWith("--v8-flags")
    );
    assert.deepEqual(permissionFlags, runFlags.filter((flag) => flag.startsWith("--")));
    for (const module of EMBEDDED_MODULES) {
      assert.ok(args.includes(module), `${target} embeds ${module}`);
    }
    assert.equal(args.at(-1), "main.ts");
  }
});

Deno.test("deno.json has the tasks the README names", () => {
  for (const task of ["fts", "serve", "test", "ci", "compile", "install"]) {
    assert.equal(typeof config.tasks[task], "string", task);
  }
  assert.equal(config.tasks.serve, "deno task fts serve");
  assert.match(config.tasks.compile, /scripts\/compile\.ts/);
  for (const step of ["deno fmt --check", "deno lint", "deno task check", "deno task test"]) {
    assert.ok(config.tasks.ci.includes(step), step);
  }
});

Deno.test("the README's alias runs fts with exactly the permission flags of the fts task", async () => {
  const readme = await Deno.readTextFile(join(PROJECT_DIR, "README.md"));
  const alias = /^alias fts='npx --yes deno@[\d.]+ run (.+) \/path\/to\/fts\/main\.ts'$/m.exec(
    readme,
  );
  assert.ok(alias, "README.md defines alias fts='npx --yes deno@VERSION run FLAGS …/main.ts'");
  assert.deepEqual(alias[1]!.split(/\s+/), ftsTaskFlags());
});

Deno.test("compileArgs() embeds every Worker entry module in the source", async () => {
  const projectDir = new URL("..", import.meta.url).pathname;
  for (const dir of ["server", "io", "client", "protocol", "cli"]) {
    for await (const entry of Deno.readDir(`${projectDir}${dir}`)) {
      if (!entry.name.endsWith(".ts")) continue;
      const text = await Deno.readTextFile(`${projectDir}${dir}/${entry.name}`);
      if (text.includes("declare const self: Worker")) {
        assert.ok(
          EMBEDDED_MODULES.includes(`${dir}/${entry.name}`),
          `${dir}/${entry.name} embedded`,
        );
      }
    }
  }
});

Deno.test("deno task install puts an fts command on PATH that works without deno on PATH", async () => {
  assert.match(config.tasks.install, /scripts\/install\.ts/);
  const installRoot = await Deno.makeTempDir({ prefix: "fts-install-" });
  const server = await startServer([], { auth: true });
  try {
    const install = await new Deno.Command(Deno.execPath(), {
      args: ["task", "install"],
      cwd: PROJECT_DIR,
      env: { DENO_INSTALL_ROOT: installRoot },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(install.code, 0, new TextDecoder().decode(install.stderr));
    const fts = join(installRoot, "bin", "fts");
    await Deno.writeTextFile(join(server.root, "pasted.txt"), "it works\n");
    const shellOnly = join(installRoot, "path");
    await Deno.mkdir(shellOnly);
    await Deno.symlink("/bin/sh", join(shellOnly, "sh"));
    // The line the server prints, with the token from the environment, from another directory
    // and with a PATH that has no deno on it.
    const connect = await new Deno.Command(fts, {
      args: ["connect", `127.0.0.1:${server.port}`, "ls"],
      cwd: installRoot,
      clearEnv: true,
      env: {
        PATH: shellOnly,
        HOME: Deno.env.get("HOME") ?? installRoot,
        ...(Deno.env.get("DENO_DIR") ? { DENO_DIR: Deno.env.get("DENO_DIR")! } : {}),
        FTS_TOKEN: server.token!,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(connect.stdout);
    assert.equal(connect.code, 0, new TextDecoder().decode(connect.stderr));
    assert.match(out, /pasted\.txt/);
  } finally {
    await server.stop();
    await Deno.remove(installRoot, { recursive: true });
  }
});
