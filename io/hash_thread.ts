/**
 * Entry point of a hash thread: a Worker with no permissions at all that
 * computes the checksums of large transfers, so that the thread moving the
 * bytes only moves them. It is told of each thread it serves by a
 * `MessagePort` (one per such thread, see {@link HashThreadPool}); on each
 * port it computes one hash at a time, over chunks of shared memory the
 * other side has filled. The messages are {@link ToHashThread} and
 * {@link FromHashThread}.
 *
 * @module
 */

import type { ChecksumName } from "../protocol/checksum.ts";
import { createStreamingHash, type StreamingHash } from "./checksum.ts";

/** What the thread that moves the bytes sends on its port. */
export type ToHashThread =
  /** Starts a hash, replacing any unfinished one. */
  | { type: "start"; algorithm: ChecksumName }
  /** Adds `length` bytes at `offset` in `buffer`; answered by `hashed` once they are read. */
  | { type: "update"; buffer: SharedArrayBuffer; offset: number; length: number }
  /** Adds bytes sent as a copy (a chunk not in shared memory); not answered. */
  | { type: "update-copy"; bytes: Uint8Array }
  /** Ends the hash; answered by `digest`. */
  | { type: "digest" };

/** What the hash thread answers on the port. */
export type FromHashThread =
  /** The bytes of the oldest unanswered `update` have been read: their memory may be reused. */
  | { type: "hashed" }
  /** The digest of every byte since `start`. */
  | { type: "digest"; hex: string }
  /** The hash could not be computed (no `start`, an unknown algorithm); the hash is dropped. */
  | { type: "failed"; message: string };

/** What the pool sends to the thread itself. */
export type HashThreadControl = { type: "serve"; port: MessagePort };

/**
 * What the thread tells the pool once it can be sent ports: messages that
 * arrive while its modules still load (io/checksum.ts makes a WebAssembly
 * instance as it loads) would be lost.
 */
export type HashThreadReady = { type: "ready" };

declare const self: Worker;

/** Serves one port: its messages are handled strictly in order, one hash at a time. */
function servePort(port: MessagePort): void {
  let hash: StreamingHash | null = null;
  let failure: string | null = null;
  // Starting a hash is asynchronous (a WebAssembly instance may be made):
  // every message waits for the one before it.
  let previous: Promise<void> = Promise.resolve();
  const reply = (message: FromHashThread) => port.postMessage(message);
  const add = (bytes: Uint8Array) => {
    try {
      hash?.update(bytes);
    } catch (err) {
      failure = err instanceof Error ? err.message : String(err);
      hash = null;
    }
  };

  const handle = async (message: ToHashThread) => {
    switch (message.type) {
      case "start":
        failure = null;
        hash = null;
        try {
          hash = await createStreamingHash(message.algorithm);
        } catch (err) {
          failure = err instanceof Error ? err.message : String(err);
        }
        return;
      case "update":
        // Answered even after a failure: the sender waits for its memory back.
        add(new Uint8Array(message.buffer, message.offset, message.length));
        reply({ type: "hashed" });
        return;
      case "update-copy":
        add(message.bytes);
        return;
      case "digest":
        if (hash === null) {
          reply({ type: "failed", message: failure ?? "no hash was started" });
        } else {
          reply({ type: "digest", hex: hash.hex() });
        }
        hash = null;
        return;
    }
  };
  port.onmessage = (event: MessageEvent<ToHashThread>) => {
    previous = previous.then(() => handle(event.data));
  };
}

/** Permissions a hash thread must not have: it only ever reads memory it is handed. */
const PERMISSION_NAMES = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

const granted = PERMISSION_NAMES.filter((name) =>
  Deno.permissions.querySync({ name } as Deno.PermissionDescriptor).state === "granted"
);
if (granted.length > 0) {
  // Thrown before `ready`: the pool does not start (see io/hash_threads.ts).
  throw new Error(`hash thread started with permissions it must not have: ${granted.join(", ")}`);
}
self.onmessage = (event: MessageEvent<HashThreadControl>) => {
  if (event.data.type === "serve") servePort(event.data.port);
};
self.postMessage({ type: "ready" } satisfies HashThreadReady);
