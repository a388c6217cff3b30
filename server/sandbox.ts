/**
 * The permission sandbox for the code that faces the network: a Worker that
 * may read and write the served root only, and use the network on the listen
 * address only. Deno enforces it; storage.ts adds the checks Deno cannot make
 * (links inside root that lead out of it).
 *
 * @module
 */

/** The permissions of the server worker, every key spelled out. */
export function sandboxPermissions(root: string, hostname: string): Deno.PermissionOptionsObject {
  return {
    read: [root],
    write: [root],
    net: [hostname.includes(":") ? `[${hostname}]` : hostname],
    env: false,
    run: false,
    ffi: false,
    sys: ["statfs"],
    import: false,
  };
}

/** Starts `moduleUrl` as a Worker confined to `root` and the listen address. */
export function startSandboxedWorker(moduleUrl: URL, root: string, hostname: string): Worker {
  return new Worker(moduleUrl, {
    type: "module",
    deno: { permissions: sandboxPermissions(root, hostname) },
  });
}

/**
 * Run inside the worker: throws unless its permissions are exactly as narrow
 * as intended, so that a change in Deno's defaults cannot widen them silently.
 */
export async function assertSandboxed(root: string): Promise<void> {
  const wider: string[] = [];
  for (const name of ["read", "write", "net", "env", "run", "ffi", "sys"] as const) {
    const status = await Deno.permissions.query({ name });
    if (status.state === "granted") wider.push(`${name} (everything)`);
  }
  // Of system information the worker may see free disk space only.
  for (const kind of ["hostname", "networkInterfaces", "osRelease", "uid", "gid"] as const) {
    if ((await Deno.permissions.query({ name: "sys", kind })).state === "granted") {
      wider.push(`sys ${kind}`);
    }
  }
  for (const name of ["read", "write"] as const) {
    if ((await Deno.permissions.query({ name, path: root })).state !== "granted") {
      wider.push(`${name} of the root is missing`);
    }
  }
  if (wider.length > 0) {
    throw new Error(`refusing to serve: sandbox permissions are wrong: ${wider.join(", ")}`);
  }
}
