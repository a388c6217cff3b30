/**
 * The systems the benchmark compares, each started by the bench on
 * 127.0.0.1 with throw-away configuration, each offering the same
 * operations: fts, raw TCP through socat, OpenSSH scp and sftp, and an
 * rsync daemon.
 *
 * @module
 */

import { join } from "node:path";
import { FtsConnection } from "../client/connection.ts";
import { ftsTaskFlags } from "./compile.ts";

const PROJECT_DIR = new URL("..", import.meta.url).pathname;

/** What every system can do once started. Remote names are relative to its root. */
export interface RunningSystem {
  /** The server process, for its peak memory; null when each transfer has its own. */
  serverPid: number | null;
  upload(local: string, remote: string): Promise<void>;
  download(remote: string, local: string): Promise<void>;
  /** Uploads many files into `remoteDir` in one session. */
  uploadMany(localDir: string, names: string[], remoteDir: string): Promise<void>;
  /** Downloads many files from `remoteDir` in one session. */
  downloadMany(remoteDir: string, names: string[], localDir: string): Promise<void>;
  /** Lists a directory, returning how many entries were listed. */
  list(remoteDir: string): Promise<number>;
  /** 1000-connection uploads; absent where the system has no reasonable way. */
  manyConnections?(locals: string[], remoteDir: string): Promise<void>;
  stop(): Promise<void>;
}

/** A system the bench can start. */
export interface BenchSystem {
  name: string;
  /** Why it cannot run here, or null. */
  unavailable(): Promise<string | null>;
  start(root: string, work: string): Promise<RunningSystem>;
}

/** Runs a command to completion; throws with its stderr when it fails. */
export async function run(
  command: string,
  args: string[],
  options: { stdin?: string; cwd?: string } = {},
): Promise<string> {
  const child = new Deno.Command(command, {
    args,
    cwd: options.cwd,
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(options.stdin));
    await writer.close();
  }
  const output = await child.output();
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `${command} ${args.slice(0, 6).join(" ")} failed: ${
        new TextDecoder().decode(output.stderr).slice(0, 500)
      }`,
    );
  }
  return text;
}

async function hasCommand(name: string): Promise<boolean> {
  return await new Deno.Command("sh", {
    args: ["-c", `command -v ${name}`],
    stdout: "null",
    stderr: "null",
  })
    .output().then((o) => o.success, () => false);
}

/** Ports handed out by this process: two transfers at once must never get the same one. */
const portsHandedOut = new Set<number>();

function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    if (!portsHandedOut.has(port)) {
      portsHandedOut.add(port);
      return Promise.resolve(port);
    }
  }
  return Promise.reject(new Error("no free port found"));
}

/** Waits (bounded) until something accepts connections on the port. */
async function waitForPort(port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
}

function stopProcess(child: Deno.ChildProcess): Promise<unknown> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  return child.status;
}

/** fts itself: the server as `deno task fts serve` runs it, clients as `fts connect`. */
export const FTS: BenchSystem = {
  name: "fts",
  unavailable: () => Promise.resolve(null),
  async start(root, work) {
    const flags = ftsTaskFlags();
    const main = join(PROJECT_DIR, "main.ts");
    const portFile = join(work, "fts-port");
    const server = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...flags,
        main,
        "serve",
        "--no-auth",
        "--host",
        "127.0.0.1",
        "--root",
        root,
        "--port-file",
        portFile,
        "--reserve",
        "0",
        "--max-connections",
        "4096",
        "--max-connections-per-peer",
        "4096",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    let port = 0;
    for (let i = 0; i < 1000 && port === 0; i++) {
      const { value, done } = await reader.read();
      if (done) throw new Error("fts server exited before listening");
      text += value;
      port = Number(/:(\d+)\n/.exec(text)?.[1] ?? 0);
    }
    void (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    const address = `127.0.0.1:${port}`;
    const client = (...args: string[]) =>
      run(Deno.execPath(), ["run", ...flags, main, "connect", address, "--quiet", ...args]);
    return {
      serverPid: server.pid,
      upload: (local, remote) => client("put", "-f", local, remote).then(() => {}),
      download: (remote, local) => client("get", "-f", remote, local).then(() => {}),
      uploadMany: (localDir, _names, remoteDir) =>
        client("put", "-f", "-r", localDir, remoteDir).then(() => {}),
      downloadMany: (remoteDir, _names, localDir) =>
        client("get", "-f", "-r", remoteDir, localDir).then(() => {}),
      list: async (remoteDir) => (await client("ls", remoteDir)).trim().split("\n").length,
      async manyConnections(locals, remoteDir) {
        await Promise.all(locals.map(async (local, i) => {
          const connection = await FtsConnection.open("127.0.0.1", port);
          await connection.upload(local, `${remoteDir}/${i}.bin`, { overwrite: true });
          await connection.logout();
        }));
      },
      stop: () => stopProcess(server).then(() => {}),
    };
  },
};

/** Raw TCP: socat with 1 MiB buffers, file to file; many files as a tar stream. */
export const SOCAT: BenchSystem = {
  name: "socat",
  unavailable: async () => (await hasCommand("socat")) ? null : "socat is not installed",
  start(root) {
    const buffers = "rcvbuf=1048576,sndbuf=1048576";
    /** One transfer: a listener on the receiving side, a sender on the other. */
    const transfer = async (
      receiver: string[],
      sender: (port: number) => string[],
      receiverShell = false,
      senderShell = false,
    ) => {
      const port = await freePort();
      const listen = `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,${buffers}`;
      const receiving = new Deno.Command(receiverShell ? "sh" : "socat", {
        args: receiverShell
          ? ["-c", receiver.join(" ").replace("LISTEN", listen)]
          : receiver.map((a) => a.replace("LISTEN", listen)),
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await waitForPortListening(port);
      const args = sender(port);
      await (senderShell ? run("sh", ["-c", args.join(" ")]) : run("socat", args));
      const status = await receiving.output();
      if (!status.success) {
        throw new Error(`socat receiver failed: ${new TextDecoder().decode(status.stderr)}`);
      }
    };
    const connect = (port: number) => `TCP:127.0.0.1:${port},${buffers}`;
    return Promise.resolve({
      serverPid: null,
      upload: (local, remote) =>
        transfer(
          ["-u", "LISTEN", `CREATE:${join(root, remote)}`],
          (p) => ["-u", `OPEN:${local}`, connect(p)],
        ),
      download: (remote, local) =>
        transfer(
          ["-u", "LISTEN", `CREATE:${local}`],
          (p) => ["-u", `OPEN:${join(root, remote)}`, connect(p)],
        ),
      uploadMany: (localDir, _names, remoteDir) =>
        transfer(
          [`mkdir -p '${join(root, remoteDir)}' && socat -u LISTEN - | tar -C '${
            join(root, remoteDir)
          }' -xf -`],
          (p) => [`tar -C '${localDir}' -cf - . | socat -u - ${connect(p)}`],
          true,
          true,
        ),
      downloadMany: (remoteDir, _names, localDir) =>
        transfer(
          [`mkdir -p '${localDir}' && socat -u LISTEN - | tar -C '${localDir}' -xf -`],
          (p) => [`tar -C '${join(root, remoteDir)}' -cf - . | socat -u - ${connect(p)}`],
          true,
          true,
        ),
      list: () => Promise.reject(new Error("socat has no listing")),
      stop: () => Promise.resolve(),
    });
  },
};

/** Waits for a listener without connecting to it (a connection would be the transfer). */
async function waitForPortListening(port: number, timeoutMs = 10_000): Promise<void> {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const table = await Deno.readTextFile("/proc/net/tcp");
    if (table.split("\n").some((line) => line.includes(`:${hex} 00000000:0000 0A`))) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`socat did not listen on ${port}`);
}

/** An rsync daemon, transfers with --whole-file. */
export const RSYNC: BenchSystem = {
  name: "rsync",
  unavailable: async () => (await hasCommand("rsync")) ? null : "rsync is not installed",
  async start(root, work) {
    const port = await freePort();
    const config = join(work, "rsyncd.conf");
    await Deno.writeTextFile(
      config,
      `pid file = ${join(work, "rsyncd.pid")}\nuse chroot = false\nmax connections = 2000\n` +
        `[bench]\npath = ${root}\nread only = false\nuid = root\ngid = root\n`,
    );
    const daemon = new Deno.Command("rsync", {
      args: [
        "--daemon",
        "--no-detach",
        `--config=${config}`,
        `--port=${port}`,
        "--address=127.0.0.1",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPort(port);
    const url = (name: string) => `rsync://127.0.0.1:${port}/bench/${name}`;
    return {
      serverPid: daemon.pid,
      upload: (local, remote) => run("rsync", ["--whole-file", local, url(remote)]).then(() => {}),
      download: (remote, local) =>
        run("rsync", ["--whole-file", url(remote), local]).then(() => {}),
      uploadMany: (localDir, _names, remoteDir) =>
        run("rsync", ["-r", "--whole-file", `${localDir}/`, url(`${remoteDir}/`)]).then(() => {}),
      downloadMany: (remoteDir, _names, localDir) =>
        run("rsync", ["-r", "--whole-file", url(`${remoteDir}/`), `${localDir}/`]).then(() => {}),
      list: async (remoteDir) =>
        (await run("rsync", ["--list-only", url(`${remoteDir}/`)])).trim().split("\n").length - 1,
      stop: () => stopProcess(daemon).then(() => {}),
    };
  },
};

/** OpenSSH: an sshd on 127.0.0.1 with throw-away keys, driven by scp or sftp. */
function openSsh(tool: "scp" | "sftp"): BenchSystem {
  return {
    name: tool,
    unavailable: async () =>
      (await hasCommand(tool)) && (await Deno.stat("/usr/sbin/sshd").then(() => true, () => false))
        ? null
        : "OpenSSH (sshd, scp, sftp) is not installed",
    async start(root, work) {
      const port = await freePort();
      const hostKey = join(work, "host_key");
      const userKey = join(work, "user_key");
      for (const key of [hostKey, userKey]) {
        await Deno.remove(key).catch(() => {});
        await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", key]);
      }
      await Deno.copyFile(`${userKey}.pub`, join(work, "authorized_keys"));
      const config = join(work, "sshd_config");
      await Deno.writeTextFile(
        config,
        [
          `Port ${port}`,
          "ListenAddress 127.0.0.1",
          `HostKey ${hostKey}`,
          `AuthorizedKeysFile ${join(work, "authorized_keys")}`,
          `PidFile ${join(work, "sshd.pid")}`,
          "PermitRootLogin yes",
          "PasswordAuthentication no",
          "KbdInteractiveAuthentication no",
          "StrictModes no",
          "UsePAM no",
          "MaxStartups 200:30:400",
          "MaxSessions 200",
          "Subsystem sftp internal-sftp",
        ].join("\n") + "\n",
      );
      await Deno.mkdir("/run/sshd", { recursive: true });
      const daemon = new Deno.Command("/usr/sbin/sshd", {
        args: ["-D", "-f", config, "-E", join(work, "sshd.log")],
        stdout: "null",
        stderr: "null",
      }).spawn();
      await waitForPort(port);
      const common = [
        "-i",
        userKey,
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
      ];
      const remote = (path: string) => `root@127.0.0.1:${join(root, path)}`;
      const sftp = (commands: string[]) =>
        run("sftp", ["-P", String(port), ...common, "-b", "-", "root@127.0.0.1"], {
          stdin: commands.join("\n") + "\n",
        });
      const scp = (...args: string[]) => run("scp", ["-P", String(port), ...common, "-q", ...args]);
      const q = (path: string) => `"${path}"`;
      return {
        serverPid: daemon.pid,
        upload: (local, remoteName) =>
          (tool === "scp"
            ? scp(local, remote(remoteName))
            : sftp([`put ${q(local)} ${q(join(root, remoteName))}`])).then(() => {}),
        download: (remoteName, local) =>
          (tool === "scp"
            ? scp(remote(remoteName), local)
            : sftp([`get ${q(join(root, remoteName))} ${q(local)}`])).then(() => {}),
        uploadMany: async (localDir, names, remoteDir) => {
          await Deno.mkdir(join(root, remoteDir), { recursive: true });
          // scp copies a directory in one session with -r.
          if (tool === "scp") await scp("-r", `${localDir}/.`, remote(remoteDir));
          else {await sftp(names.map((n) =>
              `put ${q(join(localDir, n))} ${q(join(root, remoteDir, n))}`
            ));}
        },
        downloadMany: async (remoteDir, names, localDir) => {
          await Deno.mkdir(localDir, { recursive: true });
          if (tool === "scp") await scp("-r", `${remote(remoteDir)}/.`, localDir);
          else {await sftp(names.map((n) =>
              `get ${q(join(root, remoteDir, n))} ${q(join(localDir, n))}`
            ));}
        },
        list: async (remoteDir) => {
          if (tool === "scp") throw new Error("scp has no listing");
          const out = await sftp([`ls -l ${q(join(root, remoteDir))}`]);
          return out.trim().split("\n").length - 1;
        },
        stop: () => stopProcess(daemon).then(() => {}),
      };
    },
  };
}

export const SCP = openSsh("scp");
export const SFTP = openSsh("sftp");

/** Every system, in the order the table lists them. */
export const SYSTEMS: BenchSystem[] = [FTS, SOCAT, RSYNC, SCP, SFTP];
