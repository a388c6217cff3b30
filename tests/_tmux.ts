/**
 * A real terminal for tests: the fts client runs in a tmux session; tests
 * type with send-keys and read the screen with capture-pane.
 */

import { join } from "node:path";
import { FTS_RUN_FLAGS, PROJECT_DIR } from "./_helpers.ts";

/** Whether tmux is installed (CI installs it; see .ci/run). */
export const HAS_TMUX = await new Deno.Command("tmux", {
  args: ["-V"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

async function tmux(...args: string[]): Promise<string> {
  const output = await new Deno.Command("tmux", { args, stdout: "piped", stderr: "piped" })
    .output();
  if (!output.success) {
    throw new Error(`tmux ${args.join(" ")}: ${new TextDecoder().decode(output.stderr)}`);
  }
  return new TextDecoder().decode(output.stdout);
}

function quote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One terminal running `fts connect ARGS`, then reporting its exit status. */
export class Terminal {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Starts `fts connect ARGS` in a 150x40 terminal in `cwd`, with `env` added. */
  static async start(
    cwd: string,
    args: string[],
    env: Record<string, string> = {},
  ): Promise<Terminal> {
    const name = `fts-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const command = [Deno.execPath(), "run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts")]
      .concat(["connect", ...args]).map(quote).join(" ");
    // The terminal starts from a clean slate: NO_COLOR only when a test asks for it.
    const exports = "unset NO_COLOR; " +
      Object.entries(env).map(([k, v]) => `export ${k}=${quote(v)}; `).join("");
    await tmux(
      "new-session",
      "-d",
      "-s",
      name,
      "-x",
      "150",
      "-y",
      "40",
      "-c",
      cwd,
      `${exports}${command}; echo "exit status $?"; sleep 60`,
    );
    return new Terminal(name);
  }

  /** The visible screen; with `escapes`, including colour codes. */
  screen(escapes = false): Promise<string> {
    return tmux("capture-pane", "-p", ...(escapes ? ["-e"] : []), "-t", this.name);
  }

  /** Types keys: text, or tmux key names such as "Enter", "Tab", "Up". */
  async keys(...keys: string[]): Promise<void> {
    for (const key of keys) await tmux("send-keys", "-t", this.name, key);
  }

  /** Types a line and presses Enter. */
  line(text: string): Promise<void> {
    return this.keys(text, "Enter");
  }

  /** Waits (bounded) until the screen matches; returns whether it did. */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (pattern.test(await this.screen())) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return pattern.test(await this.screen());
  }

  /** Kills the fts client with SIGKILL, as a crash or a pulled plug would. */
  async killClient(): Promise<void> {
    const shellPid = (await tmux("display", "-p", "-t", this.name, "#{pane_pid}")).trim();
    await new Deno.Command("pkill", { args: ["-KILL", "-P", shellPid, "-f", "main.ts"] }).output();
  }

  async close(): Promise<void> {
    await tmux("kill-session", "-t", this.name).catch(() => {});
  }
}
