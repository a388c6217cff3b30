/**
 * What the server's workers share: several workers serve one root on one
 * port (worker_pool.ts), and every limit holds for the server as a whole,
 * not per worker. The main thread makes this state once, before any worker
 * starts, and posts it to each; the memory is shared, not copied.
 *
 * What is shared, and how:
 *
 * - the root's step lock, the last measurement of free space and the
 *   journal of entries created while a directory move measures, in shared
 *   memory (storage.ts's {@link SharedRootState}); the first worker locks,
 *   cleans and measures the root once, the others attach to it;
 * - the space budget's counts (quota and reserve: claims, partial bytes
 *   held, directory entries), in the root's space ledger, a file every
 *   server of the root shares too (space_ledger.ts);
 * - the connection slots, in all and per peer, in shared memory
 *   (connection_slots.ts);
 * - the transfer buffer pool's count of pairs, and the count of received
 *   uploads held in commit groups, in shared memory (io/pump.ts, session.ts);
 * - the lock that keeps log lines whole (log.ts);
 * - the authentication back-off, kept by the main thread and asked by
 *   message (shared_backoff.ts);
 * - `terminate` and shutdown, by message through the main thread (worker.ts).
 *
 * Several servers on one root (separate processes) share the space ledger;
 * the other parts are each server's: the publish steps that must not
 * interleave across servers take locks on the file system instead
 * (storage.ts), and the connection slots and the back-off would need a
 * store all servers reach.
 *
 * @module
 */

import { SHARED_ALLOCATION_BYTES } from "../io/pump.ts";
import {
  ConnectionSlots,
  type ConnectionSlotsBuffers,
  type SlotLimits,
} from "./connection_slots.ts";
import { SharedLock } from "./shared_lock.ts";
import { type SharedRootState, Storage } from "./storage.ts";

/** Everything the workers share in memory; structured-cloneable (the buffers are shared, not copied). */
export interface SharedServerState {
  /** The root: step lock, budget, creation journal, identities. */
  root: SharedRootState;
  /** The connection slots. */
  connections: ConnectionSlotsBuffers;
  /** The transfer buffer pool's count of pairs allocated. */
  bufferPairs: SharedArrayBuffer;
  /** Received uploads held in commit groups, by every session (session.ts's `MAX_HELD_UPLOADS`). */
  heldUploads: SharedArrayBuffer;
  /** Held while a log line is written. */
  logLock: SharedArrayBuffer;
  /** Refused connections whose BUSY message has not gone out yet, on every worker (an Int32). */
  pendingRefusals: SharedArrayBuffer;
}

/**
 * The shared state of a server with `limits`, before any worker starts.
 *
 * @example
 * ```ts
 * import { allocateSharedState } from "./shared_state.ts";
 * const shared = allocateSharedState({ maxConnections: 1024, maxConnectionsPerPeer: 256 });
 * console.assert(shared.root.stepLock instanceof SharedArrayBuffer);
 * ```
 */
export function allocateSharedState(limits: SlotLimits): SharedServerState {
  return {
    root: Storage.allocateShared(),
    connections: ConnectionSlots.allocate(limits),
    bufferPairs: new SharedArrayBuffer(SHARED_ALLOCATION_BYTES),
    heldUploads: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
    logLock: SharedLock.allocate(),
    pendingRefusals: new SharedArrayBuffer(Int32Array.BYTES_PER_ELEMENT),
  };
}
