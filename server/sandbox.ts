/**
 * The permission sandbox for the code that faces the network: a Worker that
 * may read and write the served root only, and use the network on the listen
 * address and port only. Deno enforces it; storage.ts adds the checks Deno
 * cannot make (links inside root that lead out of it).
 *
 * @module
 */

import { dirname } from "node:path";

/**
 * The net permission for one address and port. Port 0 (the system chooses)
 * is granted as `HOST:0`: tried with Deno 2.9.6, that lets the worker listen
 * on port 0 and connect nowhere, not even to another port of HOST.
 */
function netGrant(hostname: string, port: number): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

/**
 * The permissions of the server worker, every key spelled out. With
 * `bucketEndpoint` (a bucket-backed server, `http(s)://HOST[:PORT]`) the
 * worker reads and writes no file, and may connect to that host and port
 * besides listening; `root` is then the bucket's name and grants nothing.
 */
export function sandboxPermissions(
  root: string,
  hostname: string,
  port = 0,
  bucketEndpoint: string | null = null,
): Deno.PermissionOptionsObject {
  if (bucketEndpoint !== null) {
    return {
      read: false,
      write: false,
      net: [netGrant(hostname, port), endpointGrant(bucketEndpoint)],
      env: false,
      run: false,
      ffi: false,
      sys: false,
      import: false,
    };
  }
  return {
    read: [root],
    write: [root],
    net: [netGrant(hostname, port)],
    env: false,
    run: false,
    ffi: false,
    sys: ["statfs"],
    import: false,
  };
}

/** The net grant for an S3 endpoint URL: its host and port (the scheme's default if none). */
export function endpointGrant(endpoint: string): string {
  const url = new URL(endpoint);
  const port = url.port !== "" ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  return netGrant(url.hostname.replace(/^\[(.*)\]$/, "$1"), port);
}

/**
 * Starts `moduleUrl` as a Worker confined to `root` and the listen address
 * and port (or, with `bucketEndpoint`, to no file, the listen address and
 * the bucket's endpoint).
 */
export function startSandboxedWorker(
  moduleUrl: URL,
  root: string,
  hostname: string,
  port = 0,
  bucketEndpoint: string | null = null,
): Worker {
  return new Worker(moduleUrl, {
    type: "module",
    deno: { permissions: sandboxPermissions(root, hostname, port, bucketEndpoint) },
  });
}

/**
 * Paths outside any root that the worker must not reach: a grant of any of
 * them, or of the root's parent, would be wider than the root. (Deno cannot
 * list what is granted, so a stray grant elsewhere goes unseen.)
 */
const FORBIDDEN_PATHS = ["/", "/etc", "/tmp", "/home", "/root", "/proc"];

/**
 * A host the worker must never reach: TEST-NET-1, reserved for documentation.
 * Probed with the bare name (any port); a grant of one other host and port
 * cannot be found without knowing it.
 */
const FOREIGN_HOST = "192.0.2.1";

/**
 * Run inside the worker: throws unless its permissions are exactly as narrow
 * as intended, so that a change in Deno's defaults cannot widen them silently.
 * With `listen`, also that the network is granted for that address and port
 * only: not the whole host, not another port, not another host.
 */
export async function assertSandboxed(
  root: string,
  listen?: { hostname: string; port: number },
  bucketEndpoint: string | null = null,
): Promise<void> {
  const wider: string[] = [];
  for (const name of ["read", "write", "net", "env", "run", "ffi", "sys"] as const) {
    const status = await Deno.permissions.query({ name });
    if (status.state === "granted") wider.push(`${name} (everything)`);
  }
  // The binary may run sh (the client's !COMMAND); the worker never may.
  if ((await Deno.permissions.query({ name: "run", command: "sh" })).state === "granted") {
    wider.push("run sh");
  }
  // Of system information the worker may see free disk space only.
  for (const kind of ["hostname", "networkInterfaces", "osRelease", "uid", "gid"] as const) {
    if ((await Deno.permissions.query({ name: "sys", kind })).state === "granted") {
      wider.push(`sys ${kind}`);
    }
  }
  // A bucket-backed worker may read and write no file at all: the root is a bucket's name.
  const outside = bucketEndpoint !== null
    ? FORBIDDEN_PATHS
    : [...FORBIDDEN_PATHS, dirname(root), `${root}-sibling`]
      .filter((path) => path !== root && !path.startsWith(root.endsWith("/") ? root : `${root}/`));
  for (const name of ["read", "write"] as const) {
    if (
      bucketEndpoint === null &&
      (await Deno.permissions.query({ name, path: root })).state !== "granted"
    ) {
      wider.push(`${name} of the root is missing`);
    }
    for (const path of outside) {
      if ((await Deno.permissions.query({ name, path })).state === "granted") {
        wider.push(`${name} ${path}`);
      }
    }
  }
  if (listen) {
    const { hostname, port } = listen;
    const otherPort = port === 65535 ? 1 : port + 1;
    const forbidden = [
      hostname.includes(":") ? `[${hostname}]` : hostname,
      netGrant(hostname, otherPort),
      "localhost",
      FOREIGN_HOST,
    ];
    for (const host of forbidden) {
      if ((await Deno.permissions.query({ name: "net", host })).state === "granted") {
        wider.push(`net ${host}`);
      }
    }
    if (
      (await Deno.permissions.query({ name: "net", host: netGrant(hostname, port) })).state !==
        "granted"
    ) {
      wider.push(`net of the listen address is missing`);
    }
  }
  if (bucketEndpoint !== null) {
    const granted = endpointGrant(bucketEndpoint);
    if ((await Deno.permissions.query({ name: "net", host: granted })).state !== "granted") {
      wider.push("net of the bucket's endpoint is missing");
    }
    const host = new URL(bucketEndpoint).hostname;
    const endpointPort = Number(granted.slice(granted.lastIndexOf(":") + 1));
    const otherPort = endpointPort === 65535 ? 1 : endpointPort + 1;
    for (const other of [host, `${granted.slice(0, granted.lastIndexOf(":"))}:${otherPort}`]) {
      if ((await Deno.permissions.query({ name: "net", host: other })).state === "granted") {
        wider.push(`net ${other}`);
      }
    }
  }
  if (wider.length > 0) {
    throw new Error(`refusing to serve: sandbox permissions are wrong: ${wider.join(", ")}`);
  }
}
