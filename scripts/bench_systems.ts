/**
 * The systems the benchmark compares, each started by the bench on
 * 127.0.0.1 with throw-away configuration, each offering the operations it
 * has a reasonable way to do: fts (at its defaults, and with `--checksum
 * sha256` where the server has that flag), raw TCP through socat, a tar
 * stream through socat, OpenSSH scp and sftp, and an rsync daemon. Each can
 * be started behind a relay that delays every byte ({@link StartOptions}).
 *
 * @module
 */

import { join } from "node:path";
import { FtsConnection } from "../client/connection.ts";
import { type DelayRelay, startDelayRelay } from "./bench_relay.ts";
import { ftsTaskFlags } from "./compile.ts";

const PROJECT_DIR = new URL("..", import.meta.url).pathname;

/**
 * What a system can do once started; an operation it has no reasonable way
 * to do is absent, and the workloads that need it skip the system. Remote
 * names are relative to its root.
 */
export interface RunningSystem {
  /**
   * The server process, for its peak memory and CPU (its children included);
   * null when each transfer has its own.
   */
  serverPid: number | null;
  /** Uploads one file. */
  upload?(local: string, remote: string): Promise<void>;
  /** Downloads one file. */
  download?(remote: string, local: string): Promise<void>;
  /** Uploads the files of `localDir` (a tree of `names`) as `remoteDir`, in one session. */
  uploadMany?(localDir: string, names: string[], remoteDir: string): Promise<void>;
  /** Downloads the tree `remoteDir` (of `names`) as `localDir`, in one session. */
  downloadMany?(remoteDir: string, names: string[], localDir: string): Promise<void>;
  /** Lists a directory, returning how many entries were listed. */
  list?(remoteDir: string): Promise<number>;
  /** One connection per local file, all at once, each uploading it as `remoteDir/I.bin`. */
  manyConnections?(locals: string[], remoteDir: string): Promise<void>;
  /** Stops the server and every relay started for it. */
  stop(): Promise<void>;
}

/** How a system is started. */
export interface StartOptions {
  /**
   * Put a relay in front of the server that holds each chunk this long in
   * each direction (a round trip of twice this); clients connect to the relay.
   * @default 0 (no relay)
   */
  linkDelayMs?: number;
  /**
   * The root as another mount of a shared file system shows it, for a
   * system that runs a second server on it ({@link FTS_TWO}).
   * @default the root itself
   */
  secondRoot?: string;
}

/** The optional operations of {@link RunningSystem}. */
export type Operation =
  | "upload"
  | "download"
  | "uploadMany"
  | "downloadMany"
  | "list"
  | "manyConnections";

/** A system the bench can start. */
export interface BenchSystem {
  /** Its name in the table and in `--systems`. */
  name: string;
  /** Whether it is fts (the system measured) rather than a peer it is compared with. */
  isFts: boolean;
  /** What its running instances offer: a workload needing anything else skips it, unstarted. */
  operations: readonly Operation[];
  /** Why it cannot run here, or null. */
  unavailable(): Promise<string | null>;
  /** Starts its server with `root` as the served directory and `work` for its own files. */
  start(root: string, work: string, options?: StartOptions): Promise<RunningSystem>;
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

/**
 * The port clients use to reach `port`: a delaying relay in front of it when
 * `options` asks for one, else `port` itself.
 */
async function clientPort(
  port: number,
  options: StartOptions,
): Promise<{ port: number; relay: DelayRelay | null }> {
  if (!options.linkDelayMs) return { port, relay: null };
  const relay = await startDelayRelay(port, options.linkDelayMs);
  return { port: relay.port, relay };
}

function stopProcess(child: Deno.ChildProcess): Promise<unknown> {
  try {
    child.kill("SIGTERM");
  } catch {
    // Already gone.
  }
  return child.status;
}

/** The text of `fts serve --help`, once asked for. */
let serveHelp: Promise<string> | undefined;

/** Runs `fts serve --help` once; its text tells which flags this fts has. */
function ftsServeHelp(): Promise<string> {
  serveHelp ??= run(Deno.execPath(), [
    "run",
    ...ftsTaskFlags(),
    join(PROJECT_DIR, "main.ts"),
    "serve",
    "--help",
  ]).catch((err) => String(err));
  return serveHelp;
}

/**
 * fts as `deno task fts serve` runs it ({@link startFtsServer}), clients as
 * `fts connect`, with `flags` given to both.
 */
function ftsSystem(name: string, flags: string[], needs: string | null): BenchSystem {
  return {
    name,
    isFts: true,
    // In this process, with the client's defaults: only fts at its defaults runs (d).
    operations: [
      "upload",
      "download",
      "uploadMany",
      "downloadMany",
      "list",
      ...(flags.length ? [] : ["manyConnections" as const]),
    ],
    unavailable: async () =>
      needs === null || (await ftsServeHelp()).includes(needs)
        ? null
        : `fts serve --help does not mention ${needs}`,
    async start(root, work, options = {}) {
      const server = await startFtsServer(root, join(work, "fts-port"), flags);
      try {
        const { port: reached, relay } = await clientPort(server.port, options);
        return {
          serverPid: server.pid,
          ...ftsOperations(ftsClient(reached, flags), reached),
          stop: async () => {
            await relay?.close();
            await server.stop();
          },
        };
      } catch (err) {
        await server.stop();
        throw err;
      }
    },
  };
}

/** An fts server this bench started. */
interface FtsServer {
  pid: number;
  port: number;
  stop(): Promise<unknown>;
}

/**
 * Starts `deno task fts serve` on `root` (with `flags`) at its defaults but
 * for limits the workloads would otherwise hit: connections at once and per
 * peer (1000 in (d)), and no free-space reserve.
 */
async function startFtsServer(root: string, portFile: string, flags: string[]): Promise<FtsServer> {
  const server = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...ftsTaskFlags(),
      join(PROJECT_DIR, "main.ts"),
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
      ...flags,
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
  return { pid: server.pid, port, stop: () => stopProcess(server) };
}

/** `fts connect 127.0.0.1:PORT --quiet` with `flags`, then the command's arguments. */
function ftsClient(port: number, flags: string[]): (...args: string[]) => Promise<string> {
  return (...args) =>
    run(Deno.execPath(), [
      "run",
      ...ftsTaskFlags(),
      join(PROJECT_DIR, "main.ts"),
      "connect",
      `127.0.0.1:${port}`,
      "--quiet",
      ...flags,
      ...args,
    ]);
}

/** What fts does for each operation, through `client`; (d)'s connections go to `port`. */
function ftsOperations(
  client: (...args: string[]) => Promise<string>,
  port: number,
): Omit<RunningSystem, "serverPid" | "stop"> {
  return {
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
  };
}

/** fts at its defaults. */
export const FTS: BenchSystem = ftsSystem("fts", [], null);

/**
 * Two fts servers on one root (README's "Several servers on one root"): the
 * first on the root, the second on {@link StartOptions.secondRoot} (the same
 * root through another mount of a shared file system, or the root itself),
 * and each command goes to the next server in turn: (a)'s upload through the
 * first and its download through the second, (b)'s put -r through the first
 * and get -r through the second, (c)'s clients split between them. The CPU
 * and memory figures are the first server's.
 */
export const FTS_TWO: BenchSystem = {
  name: "fts-two",
  isFts: true,
  operations: ["upload", "download", "uploadMany", "downloadMany", "list"],
  unavailable: () => Promise.resolve(null),
  async start(root, work, options = {}) {
    const servers: FtsServer[] = [];
    const relays: DelayRelay[] = [];
    const stop = async () => {
      for (const relay of relays) await relay.close();
      for (const server of servers) await server.stop();
    };
    try {
      for (const [i, served] of [root, options.secondRoot ?? root].entries()) {
        servers.push(await startFtsServer(served, join(work, `fts-port-${i}`), []));
      }
      const each: Omit<RunningSystem, "serverPid" | "stop">[] = [];
      for (const server of servers) {
        const { port, relay } = await clientPort(server.port, options);
        if (relay) relays.push(relay);
        each.push(ftsOperations(ftsClient(port, []), port));
      }
      let turn = 0;
      const next = () => each[turn++ % each.length]!;
      return {
        serverPid: servers[0]!.pid,
        upload: (local, remote) => next().upload!(local, remote),
        download: (remote, local) => next().download!(remote, local),
        uploadMany: (localDir, names, remoteDir) => next().uploadMany!(localDir, names, remoteDir),
        downloadMany: (remoteDir, names, localDir) =>
          next().downloadMany!(remoteDir, names, localDir),
        list: (remoteDir) => next().list!(remoteDir),
        stop,
      };
    } catch (err) {
      await stop();
      throw err;
    }
  },
};

/** fts verifying with SHA-256 (`--checksum sha256` to both sides), where fts has that flag. */
export const FTS_SHA256: BenchSystem = ftsSystem(
  "fts-sha256",
  ["--checksum", "sha256"],
  "--checksum",
);

/** socat's socket buffers: 1 MiB each way. */
const SOCAT_BUFFERS = "rcvbuf=1048576,sndbuf=1048576";

/**
 * One socat transfer: a receiver listening on a fresh port (its `LISTEN`
 * replaced by the listening address), then a sender connecting to it (or to
 * a relay in front of it); each a socat command, or a shell line when it
 * pipes through tar.
 */
async function socatTransfer(
  receiver: { shell: boolean; args: string[] },
  sender: { shell: boolean; args: (connect: string) => string[] },
  options: StartOptions,
): Promise<void> {
  const port = await freePort();
  const listen = `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,${SOCAT_BUFFERS}`;
  const receiving = new Deno.Command(receiver.shell ? "sh" : "socat", {
    args: receiver.shell
      ? ["-c", receiver.args.join(" ").replace("LISTEN", listen)]
      : receiver.args.map((a) => a.replace("LISTEN", listen)),
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let relay: DelayRelay | null = null;
  let failure: unknown = null;
  try {
    await waitForPortListening(port);
    const reached = await clientPort(port, options);
    relay = reached.relay;
    const args = sender.args(`TCP:127.0.0.1:${reached.port},${SOCAT_BUFFERS}`);
    await (sender.shell ? run("sh", ["-c", args.join(" ")]) : run("socat", args));
  } catch (err) {
    failure = err;
    // Without its sender the receiver would wait for a connection for ever.
    try {
      receiving.kill("SIGTERM");
    } catch {
      // Already gone.
    }
  }
  const status = await receiving.output();
  await relay?.close();
  if (failure !== null) throw failure;
  if (!status.success) {
    throw new Error(`socat receiver failed: ${new TextDecoder().decode(status.stderr)}`);
  }
}

/** Raw TCP: socat with 1 MiB buffers, one file to one file, a connection each. */
export const SOCAT: BenchSystem = {
  name: "socat",
  isFts: false,
  operations: ["upload", "download"],
  unavailable: async () => (await hasCommand("socat")) ? null : "socat is not installed",
  start(root, _work, options = {}) {
    const oneFile = (from: string, to: string) =>
      socatTransfer(
        { shell: false, args: ["-u", "LISTEN", `CREATE:${to}`] },
        { shell: false, args: (connect) => ["-u", `OPEN:${from}`, connect] },
        options,
      );
    return Promise.resolve({
      serverPid: null,
      upload: (local, remote) => oneFile(local, join(root, remote)),
      download: (remote, local) => oneFile(join(root, remote), local),
      stop: () => Promise.resolve(),
    });
  },
};

/**
 * Many files as one tar stream through socat (`tar c | socat` to a socat
 * listener `| tar x`): the limit for many small files, with no per-file
 * request, check or acknowledgement at all.
 */
export const TAR_SOCAT: BenchSystem = {
  name: "tar|socat",
  isFts: false,
  operations: ["uploadMany", "downloadMany"],
  unavailable: async () =>
    (await hasCommand("socat")) && (await hasCommand("tar"))
      ? null
      : "socat or tar is not installed",
  start(root, _work, options = {}) {
    const tree = (fromDir: string, toDir: string) =>
      socatTransfer(
        {
          shell: true,
          args: [`mkdir -p '${toDir}' && socat -u LISTEN - | tar -C '${toDir}' -xf -`],
        },
        { shell: true, args: (connect) => [`tar -C '${fromDir}' -cf - . | socat -u - ${connect}`] },
        options,
      );
    return Promise.resolve({
      serverPid: null,
      uploadMany: (localDir, _names, remoteDir) => tree(localDir, join(root, remoteDir)),
      downloadMany: (remoteDir, _names, localDir) => tree(join(root, remoteDir), localDir),
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
  isFts: false,
  operations: ["upload", "download", "uploadMany", "downloadMany", "list"],
  unavailable: async () => (await hasCommand("rsync")) ? null : "rsync is not installed",
  async start(root, work, options = {}) {
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
    const { port: reached, relay } = await clientPort(port, options);
    const url = (name: string) => `rsync://127.0.0.1:${reached}/bench/${name}`;
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
      stop: async () => {
        await relay?.close();
        await stopProcess(daemon);
      },
    };
  },
};

/** OpenSSH: an sshd on 127.0.0.1 with throw-away keys, driven by scp or sftp. */
function openSsh(tool: "scp" | "sftp"): BenchSystem {
  return {
    name: tool,
    isFts: false,
    operations: [
      "upload",
      "download",
      "uploadMany",
      "downloadMany",
      ...(tool === "sftp" ? ["list" as const] : []),
    ],
    unavailable: async () =>
      (await hasCommand(tool)) && (await Deno.stat("/usr/sbin/sshd").then(() => true, () => false))
        ? null
        : "OpenSSH (sshd, scp, sftp) is not installed",
    async start(root, work, options = {}) {
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
      const { port: reached, relay } = await clientPort(port, options);
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
        run("sftp", ["-P", String(reached), ...common, "-b", "-", "root@127.0.0.1"], {
          stdin: commands.join("\n") + "\n",
        });
      const scp = (...args: string[]) =>
        run("scp", ["-P", String(reached), ...common, "-q", ...args]);
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
        // Both copy a directory in one session with -r. sftp's put -r and get -r put the
        // tree under an existing target directory, so only scp's target is made first.
        uploadMany: async (localDir, _names, remoteDir) => {
          if (tool === "scp") {
            await Deno.mkdir(join(root, remoteDir), { recursive: true });
            await scp("-r", `${localDir}/.`, remote(remoteDir));
          } else await sftp([`put -r ${q(localDir)} ${q(join(root, remoteDir))}`]);
        },
        downloadMany: async (remoteDir, _names, localDir) => {
          if (tool === "scp") {
            await Deno.mkdir(localDir, { recursive: true });
            await scp("-r", `${remote(remoteDir)}/.`, localDir);
          } else await sftp([`get -r ${q(join(root, remoteDir))} ${q(localDir)}`]);
        },
        list: async (remoteDir) => {
          const out = await sftp([`ls -l ${q(join(root, remoteDir))}`]);
          return out.trim().split("\n").length - 1;
        },
        stop: async () => {
          await relay?.close();
          await stopProcess(daemon);
        },
      };
    },
  };
}

/** OpenSSH's scp (over the SFTP protocol, as OpenSSH 9 does by default). */
export const SCP: BenchSystem = openSsh("scp");
/** OpenSSH's sftp, commands given in batch mode. */
export const SFTP: BenchSystem = openSsh("sftp");

/**
 * `cp` onto the storage and off it, no network at all: on a shared file
 * system's mount, what the file system itself allows (the bench times it to
 * a `sync` of the files, as every peer on a disk).
 */
export const CP: BenchSystem = {
  name: "cp",
  isFts: false,
  operations: ["upload", "download", "uploadMany", "downloadMany"],
  unavailable: async () => (await hasCommand("cp")) ? null : "cp is not installed",
  start(root) {
    const copy = (from: string, to: string) => run("cp", ["-r", from, to]).then(() => {});
    return Promise.resolve({
      serverPid: null,
      upload: (local, remote) => copy(local, join(root, remote)),
      download: (remote, local) => copy(join(root, remote), local),
      uploadMany: (localDir, _names, remoteDir) => copy(localDir, join(root, remoteDir)),
      downloadMany: (remoteDir, _names, localDir) => copy(join(root, remoteDir), localDir),
      stop: () => Promise.resolve(),
    });
  },
};

/** Every system, in the order the table lists them. */
export const SYSTEMS: BenchSystem[] = [
  FTS,
  FTS_SHA256,
  FTS_TWO,
  SOCAT,
  TAR_SOCAT,
  RSYNC,
  SCP,
  SFTP,
  CP,
];

/** The systems `--storage glusterfs` runs unless `--systems` names others. */
export const GLUSTERFS_SYSTEMS: string[] = ["fts", "fts-two", "rsync", "tar|socat", "cp"];
