/**
 * Many commands on one connection: an interactive prompt on a terminal
 * (line editing, history kept across sessions, tab completion of commands,
 * local paths and remote names), or one command per line from a pipe or a
 * batch file, stopping at the first failure unless the line starts with `-`.
 *
 * @module
 */

import process from "node:process";
import { createInterface, type Interface } from "node:readline";
import { dirname, join } from "node:path";
import { EXIT_CONNECTION, EXIT_OK, EXIT_OPERATION_FAILED, EXIT_USAGE } from "../cli/exit_codes.ts";
import { UsageError } from "../cli/usage_error.ts";
import { listenForInterrupts } from "../cli/interrupt_signals.ts";
import { COMMANDS, findCommand } from "./commands.ts";
import type { CommandContext } from "./context.ts";
import { CommandInterrupt, InterruptedError } from "./interruption.ts";
import { Keepalive } from "./keepalive.ts";
import { KeyboardGate } from "./keyboard_gate.ts";
import { printFailure, printOutcome, printStoppedIncomplete } from "./output.ts";
import { resolveRemote } from "./remote_path.ts";
import { escapeWord, splitArgs, wordsBeingTyped } from "./split_args.ts";
import { ReconnectStoppedError } from "./reconnect.ts";
import { runResilient } from "./resilient_command.ts";
import { exitInsisted, reopenIfClosed } from "./stoppable_command.ts";
import { terminalSafe } from "./terminal_safe.ts";
import { ConnectionError } from "./transport.ts";

/** Lines of history the interactive prompt keeps, in memory and in its file. */
export const HISTORY_LINES = 1000;

/** How the shell reads and what a failure means. */
export interface ShellOptions {
  /** Prompt and keep going after errors (a terminal), or stop at the first failure (a script). */
  interactive: boolean;
  /** Where commands come from; standard input when absent. */
  input?: NodeJS.ReadableStream;
  /** The history file, for the interactive prompt. */
  historyFile?: string;
  /** The batch file the commands come from (`-b FILE`), named in failures with their line. */
  batchName?: string;
}

/**
 * Runs commands until `logout`, the end of input, or (in a script) the first
 * failure of a line not marked with a leading `-`. Resolves with the exit code.
 *
 * Ctrl-C stops the running command (./stoppable_command.ts) and the shell
 * goes on, on a new connection if the stop closed the old one; at the prompt
 * it clears the line, and at a question it cancels the command. A script
 * stops at a Ctrl-C, with exit code 130.
 *
 * A connection that drops under a command is made again, and the command
 * resumed, repeated or reported as ./resilient_command.ts decides; when it
 * cannot be made again (or Ctrl-C stops the waiting), the shell ends.
 */
export async function runShell(context: CommandContext, options: ShellOptions): Promise<number> {
  const history = options.interactive && options.historyFile
    ? await readHistory(options.historyFile)
    : [];
  /** The running command's Ctrl-C; null at the prompt. */
  let running: CommandInterrupt | null = null;
  /** Cancels the question being asked; null when none is. */
  let cancelQuestion: (() => void) | null = null;
  const onPress = () => {
    if (running?.press() === "insisted") exitInsisted(context, running, () => lines.close());
  };
  // Keys typed while a command runs are dropped, except Ctrl-C, which stops it.
  const gate = options.interactive ? new KeyboardGate(process.stdin, onPress) : null;
  const lines = createInterface({
    input: gate ?? options.input ?? process.stdin,
    output: options.interactive ? process.stdout : undefined,
    terminal: options.interactive,
    historySize: HISTORY_LINES,
    completer: options.interactive
      ? (line: string, callback: (err: null, result: [string[], string]) => void) => {
        complete(context, line).then(
          (result) => callback(null, result),
          () => callback(null, [[], line]),
        );
      }
      : undefined,
  });
  // Pings while the session waits on the user: at the prompt, at a question, under `!COMMAND`.
  const keepalive = new Keepalive(
    context.connection.idleTimeoutMs,
    () => context.connection.ping(),
  );
  if (gate !== null) {
    const ask = async (question: string, yesByDefault: boolean) => {
      gate.open = true;
      // A command asks only between its requests: the connection is idle until the answer.
      keepalive.resume();
      try {
        return await askYesNo(lines, question, yesByDefault, (cancel) => cancelQuestion = cancel);
      } finally {
        await keepalive.pause();
        gate.open = false;
        cancelQuestion = null;
      }
    };
    context.offerResume = (question) => ask(question, true);
    context.confirm = (question) => ask(question, false);
    context.confirmPlan = context.confirm;
    // Ctrl-C reaches the line editor only at the prompt or a question (the gate is open).
    lines.on("SIGINT", () => {
      if (cancelQuestion !== null) return cancelQuestion();
      endLineWithCtrlC(lines);
      lines.prompt();
    });
    // Ctrl-Z suspends the shell as any program's, and fg brings the line back as it was.
    lines.on("SIGTSTP", () => {
      gate.setRawMode(false);
      // Stops this process here; it goes on from here at SIGCONT (fg, bg).
      Deno.kill(Deno.pid, "SIGTSTP");
      gate.setRawMode(true);
      lines.prompt(true);
    });
    // readline keeps history newest first.
    (lines as unknown as { history: string[] }).history = history.slice().reverse();
    console.log(
      `connected to ${terminalSafe(context.connection.serverSoftware)}; type 'help' for commands`,
    );
    lines.setPrompt(promptFor(context));
    lines.prompt();
  }
  keepalive.resume();
  let exitCode = EXIT_OK;
  let ended = false;
  let lineNumber = 0;
  const where = (n: number) => options.batchName !== undefined ? `batch line ${n}` : `line ${n}`;
  try {
    for await (const line of lines) {
      await keepalive.pause();
      lineNumber += 1;
      if (options.interactive && options.historyFile && line.trim() !== "") {
        await appendHistory(options.historyFile, line);
      }
      const trimmed = line.trim();
      const mayFail = trimmed.startsWith("-");
      const words = trimmed === "" || trimmed.startsWith("#")
        ? []
        : safeSplit(mayFail ? trimmed.slice(1) : trimmed);
      if (trimmed.startsWith("!")) {
        if (gate !== null) {
          keepalive.resume();
          await gate.lend(() => runLocalShell(trimmed.slice(1)));
          await keepalive.pause();
        } else {
          printFailure(
            context,
            new UsageError("!COMMAND runs only in the interactive shell"),
            where(lineNumber),
          );
          if (!mayFail) {
            exitCode = EXIT_USAGE;
            break;
          }
        }
      } else if (words.length > 0) {
        running = new CommandInterrupt();
        if (gate !== null) gate.open = false;
        try {
          // Outside a prompt, Ctrl-C arrives as a signal (so does `kill -INT` anywhere).
          using _signals = listenForInterrupts(["SIGINT"], onPress);
          const outcome = await runResilient(context, words, running);
          printOutcome(context, outcome);
          if (outcome.endSession) {
            ended = true;
            break;
          }
          if (outcome.incomplete && !options.interactive && !mayFail) {
            printStoppedIncomplete(where(lineNumber));
            exitCode = EXIT_OPERATION_FAILED;
            break;
          }
        } catch (err) {
          const code = printFailure(context, err, options.interactive ? "" : where(lineNumber));
          // Ctrl-C while waiting to reconnect: the session has no connection to go on with.
          if (err instanceof ReconnectStoppedError) return code;
          if (err instanceof InterruptedError) {
            // A script stops at Ctrl-C, whatever its line allows.
            if (!options.interactive) {
              exitCode = code;
              break;
            }
          } else if (err instanceof ConnectionError) return EXIT_CONNECTION;
          else if (!options.interactive && !mayFail) {
            exitCode = code;
            break;
          }
        } finally {
          running = null;
          if (gate !== null) gate.open = true;
        }
        try {
          await reopenIfClosed(context);
        } catch (err) {
          printFailure(context, err);
          return EXIT_CONNECTION;
        }
      }
      if (options.interactive) {
        lines.setPrompt(promptFor(context));
        lines.prompt();
      }
      keepalive.resume();
    }
    // Ctrl-D at the prompt ends input with the cursor after the prompt: end that line, as sftp does.
    if (options.interactive && !ended) console.log();
  } finally {
    await keepalive.pause();
    lines.close();
    gate?.detach();
  }
  if (!ended) await context.connection.logout().catch(() => context.connection.close());
  return exitCode;
}

/**
 * Runs `command` in `sh` on this machine, its output on the terminal, as
 * sftp's `!`; an empty command opens an interactive `sh`.
 */
async function runLocalShell(command: string): Promise<void> {
  try {
    const args = command.trim() === "" ? [] : ["-c", command];
    const status = await new Deno.Command("sh", {
      args,
      stdin: "inherit",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
    if (!status.success) console.error(`fts: local command exited with status ${status.code}`);
  } catch (err) {
    console.error(`fts: cannot run a local shell: ${(err as Error).message}`);
  }
}

/**
 * Asks a yes-or-no question at the prompt: `[Y/n]` when yes is the default
 * (an empty answer), `[y/N]` when no is. Ctrl-D at the question answers no,
 * and the session then ends; Ctrl-C (the shell calls the function given to
 * `onCancel`) cancels the command: the promise rejects with an
 * {@link InterruptedError}.
 */
function askYesNo(
  lines: Interface,
  question: string,
  yesByDefault: boolean,
  onCancel: (cancel: () => void) => void,
): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const asked = new AbortController();
    const declined = () => resolve(false);
    lines.once("close", declined);
    onCancel(() => {
      lines.off("close", declined);
      showCtrlC(lines);
      asked.abort(); // node:readline ends the question's line and empties its buffer.
      reject(new InterruptedError(null));
    });
    const text = `${terminalSafe(question)} ${yesByDefault ? "[Y/n]" : "[y/N]"} `;
    lines.question(text, { signal: asked.signal }, (answer) => {
      lines.off("close", declined);
      resolve(yesByDefault ? !/^\s*n/i.test(answer) : /^\s*y/i.test(answer));
    });
  });
}

/** Shows a Ctrl-C as a terminal does: `^C` after the line being typed. */
function showCtrlC(lines: Interface): void {
  lines.write(null, { ctrl: true, name: "e" }); // The cursor to the end of the line.
  process.stdout.write("^C");
}

/**
 * Ends the line being typed at a Ctrl-C: `^C` after it, a new line, and
 * nothing of it kept for the next prompt.
 */
function endLineWithCtrlC(lines: Interface): void {
  showCtrlC(lines);
  // node:readline's own end of a line: a new line, and its buffer emptied.
  (lines as unknown as { clearLine(): void }).clearLine();
}

function promptFor(context: CommandContext): string {
  return `fts:/${terminalSafe(context.remoteDir)}> `;
}

function safeSplit(line: string): string[] {
  try {
    return splitArgs(line);
  } catch {
    return line.split(/\s+/); // The command will report the usage error.
  }
}

/**
 * Completes the word under the cursor: a command, a local path, or a remote
 * name. The line is split as {@link splitArgs} splits it, and completions are
 * escaped so that it splits back into the same words (`two\ words.txt`).
 */
export async function complete(context: CommandContext, line: string): Promise<[string[], string]> {
  const { words, raw } = wordsBeingTyped(line);
  const current = words.at(-1) ?? "";
  if (words.length <= 1) {
    const names = COMMANDS.flatMap((command) => command.names);
    return [names.filter((name) => name.startsWith(current.toLowerCase())), raw];
  }
  const command = findCommand(words[0]!);
  if (!command || current.startsWith("-")) return [[], raw];
  // A transfer's second argument names the other side (its target, when there are two).
  const argumentIndex = words.slice(1, -1).filter((w) => !w.startsWith("-")).length;
  let kind = command.completes;
  if (argumentIndex === 1 && ["upload", "download"].includes(command.names[0]!)) {
    kind = kind === "local" ? "remote" : "local";
  }
  const slash = current.lastIndexOf("/");
  const dirPart = slash < 0 ? "" : current.slice(0, slash + 1);
  const prefix = current.slice(slash + 1);
  let candidates: { name: string; dir: boolean }[] = [];
  if (kind === "remote") {
    const dir = resolveRemote(context.remoteDir, dirPart || ".");
    candidates = (await context.connection.list(dir)).map((e) => ({
      name: e.name,
      dir: e.type === "dir",
    }));
  } else if (kind === "local") {
    for await (const entry of Deno.readDir(dirPart || ".")) {
      candidates.push({ name: entry.name, dir: entry.isDirectory });
    }
  } else if (kind === "command") {
    candidates = COMMANDS.flatMap((c) => c.names).map((name) => ({ name, dir: false }));
  }
  // A name that could not be shown as it is (a server's, or one on the disk) is never offered.
  const matches = candidates
    .filter((c) => c.name.startsWith(prefix) && (prefix.startsWith(".") || !c.name.startsWith(".")))
    .filter((c) => terminalSafe(c.name) === c.name)
    .map((c) => escapeWord(dirPart + c.name + (c.dir ? "/" : "")))
    .sort();
  return [matches, raw];
}

async function readHistory(file: string): Promise<string[]> {
  try {
    return (await Deno.readTextFile(file)).split("\n").filter((l) => l !== "").slice(
      -HISTORY_LINES,
    );
  } catch {
    return [];
  }
}

async function appendHistory(file: string, line: string): Promise<void> {
  try {
    await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await Deno.writeTextFile(file, line + "\n", { append: true, mode: 0o600 });
  } catch {
    // History is a comfort; a read-only home must not stop the session.
  }
}

/** `$XDG_CONFIG_HOME/fts/history`, or `~/.config/fts/history`, or null without a home. */
export function historyFile(): string | null {
  const xdg = Deno.env.get("XDG_CONFIG_HOME");
  const home = Deno.env.get("HOME") ?? Deno.env.get("USERPROFILE");
  if (xdg) return join(xdg, "fts", "history");
  return home ? join(home, ".config", "fts", "history") : null;
}
