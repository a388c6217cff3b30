/**
 * A real terminal for tests: the fts client runs in a tmux session; tests
 * type with send-keys and read the screen with capture-pane.
 */

import { join } from "node:path";
import { shellQuote } from "../cli/shell_quote.ts";
import { FTS_RUN_FLAGS, PROJECT_DIR, type RunningServer, startServer } from "./_helpers.ts";

/** Whether tmux is installed (CI installs it; see .ci/run). */
export const HAS_TMUX = await new Deno.Command("tmux", {
  args: ["-V"],
  stdout: "null",
  stderr: "null",
}).output().then((o) => o.success, () => false);

/**
 * This test process's own tmux server: other programs' sessions (or someone's
 * `tmux kill-server`) never touch the tests' terminals.
 */
const SOCKET_NAME = `fts-test-${Deno.pid}`;

/**
 * How many times a command is tried when it met the tmux server on its way
 * out: killing the last session ends the server, and a client that connected
 * just then is told "server exited unexpectedly".
 */
const TMUX_ATTEMPTS = 5;

async function tmux(...args: string[]): Promise<string> {
  let stderr = "";
  for (let attempt = 1; attempt <= TMUX_ATTEMPTS; attempt++) {
    const output = await new Deno.Command("tmux", {
      args: ["-L", SOCKET_NAME, ...args],
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (output.success) return new TextDecoder().decode(output.stdout);
    stderr = new TextDecoder().decode(output.stderr);
    if (!stderr.includes("server exited unexpectedly")) break;
  }
  throw new Error(`tmux ${args.join(" ")}: ${stderr}`);
}

/** Options for {@link Terminal.start}. */
export interface TerminalOptions {
  /** Environment variables added for the client. */
  env?: Record<string, string>;
  /** Send the client's stdout to this file instead of the terminal. */
  stdoutFile?: string;
  /** Send the client's stderr to this file instead of the terminal. */
  stderrFile?: string;
  /**
   * Record every byte the terminal is sent, escapes included, in this file
   * (tmux pipe-pane); the client starts only once the recording runs, so
   * even a line drawn and erased in a moment is kept.
   */
  recordFile?: string;
}

/** One terminal running `fts connect ARGS`, then reporting its exit status. */
export class Terminal {
  readonly name: string;

  private constructor(name: string) {
    this.name = name;
  }

  /** Starts `fts connect ARGS` in a 150x40 terminal in `cwd`. */
  static start(
    cwd: string,
    args: string[],
    options: TerminalOptions = {},
  ): Promise<Terminal> {
    const fts = [Deno.execPath(), "run", ...FTS_RUN_FLAGS, join(PROJECT_DIR, "main.ts")];
    return Terminal.run(cwd, [...fts, "connect", ...args], options);
  }

  /** Starts the program `argv` in a 150x40 terminal in `cwd`; the screen shows its exit status. */
  static async run(
    cwd: string,
    argv: string[],
    options: TerminalOptions = {},
  ): Promise<Terminal> {
    const name = `fts-test-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
    const command = argv.map(shellQuote).join(" ") +
      (options.stdoutFile ? ` >${shellQuote(options.stdoutFile)}` : "") +
      (options.stderrFile ? ` 2>${shellQuote(options.stderrFile)}` : "");
    // The terminal starts from a clean slate: NO_COLOR only when a test asks for it.
    const exports = "unset NO_COLOR; " +
      Object.entries(options.env ?? {}).map(([k, v]) => `export ${k}=${shellQuote(v)}; `).join("");
    // With a recording, the client waits for a line on its terminal, typed once tmux records.
    const gate = options.recordFile ? "read -r _; " : "";
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
      `${exports}${gate}${command}; echo "exit status $?"; sleep 60`,
    );
    const terminal = new Terminal(name);
    if (options.recordFile) {
      await tmux("pipe-pane", "-o", "-t", name, `cat >>${shellQuote(options.recordFile)}`);
      await terminal.keys("Enter");
    }
    return terminal;
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

/**
 * Starts the interactive shell, `fts connect 127.0.0.1:PORT` in `cwd` with
 * its history under `home`, and waits for its first prompt.
 */
export async function openShell(cwd: string, port: number, home: string): Promise<Terminal> {
  const term = await Terminal.start(cwd, [`127.0.0.1:${port}`], {
    env: { XDG_CONFIG_HOME: home },
  });
  if (!await term.waitFor(/fts:\/>/)) {
    const screen = await term.screen();
    await term.close();
    throw new Error(`no prompt:\n${screen}`);
  }
  return term;
}

/** Options for {@link testInShell}. */
export interface ShellTestOptions {
  /** The server's arguments (see `startServer`). */
  serverArgs?: string[];
  /** What the test puts in place before the shell opens (files it works on). */
  before?: (server: RunningServer) => Promise<void>;
}

/**
 * A test of the interactive shell against a fresh server: ignored where tmux
 * is missing outside CI; the terminal, the server and the shell's history
 * home are closed whatever `body` did.
 */
export function testInShell(
  name: string,
  body: (server: RunningServer, term: Terminal) => Promise<void>,
  options: ShellTestOptions = {},
): void {
  Deno.test({
    name,
    ignore: !HAS_TMUX && Deno.env.get("CI") !== "true",
    async fn() {
      const server = await startServer(options.serverArgs);
      const home = await Deno.makeTempDir();
      try {
        await options.before?.(server);
        const term = await openShell(server.dir, server.port, home);
        try {
          await body(server, term);
        } finally {
          await term.close();
        }
      } finally {
        await server.stop();
        await Deno.remove(home, { recursive: true });
      }
    },
  });
}
