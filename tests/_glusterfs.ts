/**
 * A real GlusterFS volume for the tests, mounted twice: glusterd runs in a
 * network namespace of its own (every socket on that namespace's loopback,
 * glusterd and the bricks bound to 127.0.0.2, which GlusterFS takes as a
 * brick host where it refuses 127.0.0.1), with a two-brick volume (with
 * {@link GLUSTER_VOLUME_OPTIONS}); each
 * mount is a FUSE client entered into that namespace's network only, so its
 * mount is the machine's and the fts servers (outside) serve through it.
 * Everything is undone when the volume is disposed, whatever happened:
 * mounts, volume, every process in the namespace, the namespace, the files.
 */

/** The address glusterd and the bricks listen on, inside the namespace. */
const GLUSTER_HOST = "127.0.0.2";

/**
 * The mount options README asks for on a shared root: without them each
 * mount's kernel keeps a name's entry for a second, and a file replaced
 * through the other mount then fails to open through this one (ENOENT)
 * while the listing shows it (seen here: two uploads of one name through the
 * two servers).
 */
export const GLUSTER_MOUNT_OPTIONS = "entry-timeout=0,attribute-timeout=0,negative-timeout=0";

/**
 * The volume options README asks for on a shared root: the bricks tell every
 * client of a name's inode that another client changed (an upcall), and each
 * client's metadata cache (md-cache) drops what it held of it. Without them a
 * mount keeps answering a lookup of a name from the inode it held before the
 * other mount's rename onto that name (md-cache's 1 s), the open succeeds
 * (open-behind) and the first read fails with ENOENT: seen here in 11 of 20
 * runs of two uploads of one name with -f through the two servers, 0 of 20
 * with these options. `performance.stat-prefetch off` (no md-cache at all)
 * also passed 20 of 20, but made 300 small uploads 2.6 times slower.
 *
 * The client's data caches and write-behind off: the space ledger
 * (server/space_ledger.ts), read and rewritten by every server under its
 * flock (and synced before the unlock), lost a step of two processes
 * counting through the two mounts now and then with any of them on (8 runs
 * of 600 steps each: cache invalidation alone 2 of 8 runs lost 2 steps;
 * io-cache and quick-read off too, 2 of 8; write-behind off alone, 6 of 8;
 * read-ahead off alone, 1 of 8; all four off, 0 of 8).
 */
export const GLUSTER_VOLUME_OPTIONS: readonly [string, string][] = [
  ["features.cache-invalidation", "on"],
  ["performance.cache-invalidation", "on"],
  ["performance.write-behind", "off"],
  ["performance.io-cache", "off"],
  ["performance.quick-read", "off"],
  ["performance.read-ahead", "off"],
];

/** How long glusterd may take to answer after it starts (1.3 s measured here). */
const GLUSTERD_READY_MS = 20_000;

/** How long the namespace's processes may take to end once told to. */
const PROCESSES_END_MS = 10_000;

/** Two mounts of one GlusterFS volume. */
export interface GlusterVolume extends AsyncDisposable {
  /** The volume as the first mount shows it. */
  mountA: string;
  /** The same volume, through the second mount. */
  mountB: string;
}

/**
 * Why the GlusterFS tests cannot run here, or null when they can: they need
 * Linux, root (namespaces, mounts) and the Debian packages glusterfs-server
 * and glusterfs-client (`.ci/run` installs them).
 */
export function glusterMissing(): string | null {
  if (Deno.build.os !== "linux") return "GlusterFS tests need Linux";
  if (Deno.uid() !== 0) return "GlusterFS tests need root (network namespaces, mounts)";
  for (const tool of ["glusterd", "gluster", "mount.glusterfs", "ip", "nsenter"]) {
    const found = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"].some((dir) => {
      try {
        return Deno.statSync(`${dir}/${tool}`).isFile;
      } catch {
        return false;
      }
    });
    if (!found) {
      return `${tool} is not installed (apt-get install glusterfs-server glusterfs-client)`;
    }
  }
  return null;
}

/** Runs a command; throws with its output unless it exits 0 (or `mayFail`). */
async function run(args: string[], mayFail = false): Promise<string> {
  const output = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
  if (!output.success && !mayFail) throw new Error(`${args.join(" ")} failed: ${text}`);
  return text;
}

/** Creates, starts and mounts (twice) a two-brick volume; see the module's description. */
export async function startGlusterVolume(): Promise<GlusterVolume> {
  const tag = crypto.randomUUID().slice(0, 8);
  const namespace = `fts-gluster-${tag}`;
  const volume = `fts${tag}`;
  const dir = await Deno.makeTempDir({ prefix: "fts-gluster-" });
  const mountA = `${dir}/mount-a`;
  const mountB = `${dir}/mount-b`;
  const mounted: string[] = [];
  let namespaceMade = false;
  let volumeMade = false;
  const inNamespace = (args: string[]) => ["ip", "netns", "exec", namespace, ...args];
  const gluster = (args: string[], mayFail = false) =>
    run(inNamespace(["gluster", "--mode=script", ...args]), mayFail);

  const cleanUp = async () => {
    for (const mount of mounted) {
      if (!(await run(["umount", mount], true)).trim()) continue;
      await run(["umount", "-l", mount], true);
    }
    if (volumeMade) {
      await gluster(["volume", "stop", volume, "force"], true);
      await gluster(["volume", "delete", volume], true);
    }
    if (namespaceMade) {
      await endNamespaceProcesses(namespace);
      await run(["ip", "netns", "del", namespace], true);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    for (const sub of ["work", "brick-1", "brick-2", "mount-a", "mount-b", "log"]) {
      await Deno.mkdir(`${dir}/${sub}`);
    }
    await Deno.writeTextFile(
      `${dir}/glusterd.vol`,
      [
        "volume management",
        "    type mgmt/glusterd",
        `    option working-directory ${dir}/work`,
        "    option transport-type socket",
        `    option transport.socket.bind-address ${GLUSTER_HOST}`,
        "    option transport.socket.listen-port 24007",
        "    option ping-timeout 0",
        "    option event-threads 1",
        "end-volume",
        "",
      ].join("\n"),
    );
    await run(["ip", "netns", "add", namespace]);
    namespaceMade = true;
    await run(["ip", "-n", namespace, "link", "set", "lo", "up"]);
    await run(inNamespace([
      "glusterd",
      "-f",
      `${dir}/glusterd.vol`,
      "-p",
      `${dir}/glusterd.pid`,
      "-l",
      `${dir}/log/glusterd.log`,
    ]));
    const deadline = Date.now() + GLUSTERD_READY_MS;
    while (!(await gluster(["volume", "list"], true)).includes("No volumes present")) {
      if (Date.now() > deadline) {
        throw new Error(`glusterd did not answer within ${GLUSTERD_READY_MS} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await gluster([
      "volume",
      "create",
      volume,
      `${GLUSTER_HOST}:${dir}/brick-1`,
      `${GLUSTER_HOST}:${dir}/brick-2`,
      "force",
    ]);
    volumeMade = true;
    for (const [option, value] of GLUSTER_VOLUME_OPTIONS) {
      await gluster(["volume", "set", volume, option, value]);
    }
    await gluster(["volume", "start", volume]);
    for (const [mount, log] of [[mountA, "mount-a"], [mountB, "mount-b"]]) {
      await run([
        "nsenter",
        `--net=/var/run/netns/${namespace}`,
        "mount",
        "-t",
        "glusterfs",
        "-o",
        `log-file=${dir}/log/${log}.log,${GLUSTER_MOUNT_OPTIONS}`,
        `${GLUSTER_HOST}:/${volume}`,
        mount!,
      ]);
      mounted.push(mount!);
    }
  } catch (err) {
    await cleanUp();
    throw err;
  }
  return { mountA, mountB, [Symbol.asyncDispose]: cleanUp };
}

/** Ends every process in `namespace` (glusterd, bricks, FUSE clients): SIGTERM, then SIGKILL. */
async function endNamespaceProcesses(namespace: string): Promise<void> {
  const pids = async () =>
    (await run(["ip", "netns", "pids", namespace], true)).split(/\s+/).filter((pid) =>
      /^\d+$/.test(pid)
    ).map(Number);
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    for (const pid of await pids()) {
      try {
        Deno.kill(pid, signal);
      } catch {
        // Gone already.
      }
    }
    const deadline = Date.now() + PROCESSES_END_MS;
    while ((await pids()).length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if ((await pids()).length === 0) return;
  }
}
