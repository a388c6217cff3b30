/**
 * A real single-node Ceph for the tests, with its RADOS Gateway as the S3
 * endpoint: one monitor, one OSD on the in-memory object store, radosgw on a
 * free port of 127.0.0.1, and one user whose keys the tests sign with. All
 * of it lives in one temporary directory (configuration, monitor store,
 * logs, sockets); every daemon runs in the foreground as a child of the test,
 * so disposing of it stops each one and removes the directory whatever
 * happened. Starting takes some 10-13 s: a test file starts it once.
 */

import { installedTool } from "./_installed_tool.ts";

/**
 * How long the whole start may take: the monitor, the OSD, the gateway's
 * first answer and the user (about 10-13 s measured here, on a busy machine
 * more).
 */
const CEPH_READY_MS = 90_000;

/** How long one daemon may take to end after SIGTERM before it is killed. */
const DAEMON_END_MS = 10_000;

/** How long one admin command (`ceph`, `radosgw-admin`) may run. */
const ADMIN_COMMAND_MS = 30_000;

/** How often the gateway is asked whether it answers yet while it starts. */
const READY_POLL_MS = 200;

/**
 * The OSD's in-memory store: the tests write some tens of MiB; this bounds
 * what the store may hold (it takes memory only as objects are written).
 */
const MEMSTORE_BYTES = 1024 * 1024 * 1024;

/** The daemons and commands the tests need (Debian ceph-mon, ceph-osd, radosgw, ceph-common). */
const CEPH_TOOLS = ["ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "monmaptool"];

/** A running single-node Ceph and the gateway's S3 endpoint. */
export interface CephGateway extends AsyncDisposable {
  /** The gateway's base URL, `http://127.0.0.1:PORT`. */
  endpoint: string;
  /** The access key of the user created for the tests. */
  accessKeyId: string;
  /** That user's secret key. */
  secretAccessKey: string;
  /** The directory that holds all of this Ceph's state and logs. */
  dir: string;
}

/**
 * Why the Ceph tests cannot run here, or null when they can: they need Linux,
 * root, and the Debian packages ceph-mon, ceph-osd, radosgw and ceph-common
 * (`.ci/run` installs them).
 */
export function cephMissing(): string | null {
  if (Deno.build.os !== "linux") return "Ceph tests need Linux";
  if (Deno.uid() !== 0) return "Ceph tests need root";
  const absent = CEPH_TOOLS.find((tool) => !installedTool(tool));
  if (absent !== undefined) {
    return `${absent} is not installed (apt-get install ceph-mon ceph-osd radosgw ceph-common)`;
  }
  return null;
}

/** A port of 127.0.0.1 free just now (the daemon that takes it binds it a moment later). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Runs an admin command, bounded in time; throws with its output unless it exits 0. */
async function run(args: string[]): Promise<string> {
  const output = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(ADMIN_COMMAND_MS),
  }).output();
  const stdout = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    const stderr = new TextDecoder().decode(output.stderr);
    throw new Error(`${args.join(" ")} failed (${output.code}): ${stdout}${stderr}`);
  }
  return stdout;
}

/** A random key of `length` characters from `alphabet`. */
function randomKey(length: number, alphabet: string): string {
  const bytes = crypto.getRandomValues(new Uint8Array(length));
  return Array.from(bytes, (byte) => alphabet[byte % alphabet.length]).join("");
}

/**
 * The configuration: no authentication between the daemons (one machine,
 * loopback only), and with it every messenger mode `crc`, without which the
 * gateway loops on "get_initial_auth_request returned -13"; pools of one
 * replica, since there is one OSD.
 */
function cephConf(dir: string, fsid: string, monPort: number, rgwPort: number): string {
  return [
    "[global]",
    `fsid = ${fsid}`,
    `mon_host = v2:127.0.0.1:${monPort}`,
    "public_addr = 127.0.0.1",
    "auth_cluster_required = none",
    "auth_service_required = none",
    "auth_client_required = none",
    "ms_mon_client_mode = crc",
    "ms_client_mode = crc",
    "ms_mon_service_mode = crc",
    "ms_mon_cluster_mode = crc",
    "ms_service_mode = crc",
    "ms_cluster_mode = crc",
    `run_dir = ${dir}/run`,
    `admin_socket = ${dir}/run/$name.$pid.asok`,
    `log_file = ${dir}/log/$name.log`,
    "osd_pool_default_size = 1",
    "osd_pool_default_min_size = 1",
    "mon_allow_pool_size_one = true",
    "mon_warn_on_pool_no_redundancy = false",
    "osd_crush_chooseleaf_type = 0",
    "osd_objectstore = memstore",
    `memstore_device_bytes = ${MEMSTORE_BYTES}`,
    "[mon]",
    `mon_data = ${dir}/mon`,
    "[osd]",
    `osd_data = ${dir}/osd`,
    "[client.rgw]",
    // tcp_nodelay: without it an answer written as headers then body waits on the client's
    // delayed ACK (measured here: a GET of 4 KiB 44 ms, a listing 25 ms; with it 2-3 ms).
    `rgw_frontends = beast endpoint=127.0.0.1:${rgwPort} tcp_nodelay=1`,
    `rgw_data = ${dir}/rgw`,
    "",
  ].join("\n");
}

/** Starts a Ceph with its gateway and a user; see the module's description. */
export async function startCeph(): Promise<CephGateway> {
  const dir = await Deno.makeTempDir({ prefix: "fts-ceph-" });
  const conf = `${dir}/ceph.conf`;
  const daemons: {
    name: string;
    process: Deno.ChildProcess;
    ended: Promise<Deno.CommandStatus>;
  }[] = [];
  const monPort = freePort();
  const rgwPort = freePort();
  const endpoint = `http://127.0.0.1:${rgwPort}`;
  const accessKeyId = randomKey(20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
  const secretAccessKey = randomKey(
    40,
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
  );

  const startDaemon = (name: string, args: string[]) => {
    // -f: in the foreground, so the daemon stays this process's child and ends with it.
    const process = new Deno.Command(name, {
      args: ["-f", "-c", conf, ...args],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    daemons.push({ name, process, ended: process.status });
  };

  const cleanUp = async () => {
    for (const daemon of daemons.toReversed()) {
      await stopDaemon(daemon.process, daemon.ended);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    for (const sub of ["run", "log", "mon", "osd", "rgw"]) await Deno.mkdir(`${dir}/${sub}`);
    const fsid = crypto.randomUUID();
    await Deno.writeTextFile(conf, cephConf(dir, fsid, monPort, rgwPort));
    await run([
      "monmaptool",
      "--create",
      "--addv",
      "a",
      `[v2:127.0.0.1:${monPort}]`,
      "--fsid",
      fsid,
      `${dir}/monmap`,
    ]);
    await run(["ceph-mon", "-c", conf, "--mkfs", "-i", "a", "--monmap", `${dir}/monmap`]);
    startDaemon("ceph-mon", ["-i", "a"]);
    const osdUuid = crypto.randomUUID();
    const osdId = (await run([
      "ceph",
      "-c",
      conf,
      "--connect-timeout",
      String(ADMIN_COMMAND_MS / 1000),
      "osd",
      "new",
      osdUuid,
    ])).trim();
    await run(["ceph-osd", "-c", conf, "-i", osdId, "--mkfs", "--osd-uuid", osdUuid]);
    startDaemon("ceph-osd", ["-i", osdId]);
    startDaemon("radosgw", ["-n", "client.rgw"]);
    await waitForGateway(endpoint, daemons);
    await run([
      "radosgw-admin",
      "-c",
      conf,
      "user",
      "create",
      "--uid",
      "fts-test",
      "--display-name",
      "fts-test",
      "--access-key",
      accessKeyId,
      "--secret",
      secretAccessKey,
    ]);
  } catch (err) {
    await cleanUp();
    throw err;
  }
  return { endpoint, accessKeyId, secretAccessKey, dir, [Symbol.asyncDispose]: cleanUp };
}

/**
 * Waits until the gateway answers an HTTP request (bounded by CEPH_READY_MS);
 * fails at once if a daemon has ended, which it does not do while healthy.
 */
async function waitForGateway(
  endpoint: string,
  daemons: { name: string; ended: Promise<Deno.CommandStatus> }[],
): Promise<void> {
  const exited: string[] = [];
  for (const daemon of daemons) {
    daemon.ended.then((status) => exited.push(`${daemon.name} exited ${status.code}`));
  }
  const deadline = Date.now() + CEPH_READY_MS;
  while (Date.now() < deadline) {
    if (exited.length > 0) throw new Error(`Ceph did not start: ${exited.join(", ")}`);
    try {
      const response = await fetch(endpoint, { signal: AbortSignal.timeout(READY_POLL_MS * 5) });
      await response.body?.cancel();
      return;
    } catch {
      // Not listening yet (or not answering yet).
    }
    await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
  }
  throw new Error(`the RADOS Gateway did not answer within ${CEPH_READY_MS} ms`);
}

/** Stops a daemon: SIGTERM, then SIGKILL if it has not ended within DAEMON_END_MS. */
async function stopDaemon(
  process: Deno.ChildProcess,
  ended: Promise<Deno.CommandStatus>,
): Promise<void> {
  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    try {
      process.kill(signal);
    } catch {
      // Ended already.
      await ended;
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const gone = await Promise.race([
      ended.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), DAEMON_END_MS)),
    ]);
    clearTimeout(timer);
    if (gone) return;
  }
  await ended;
}
