/**
 * The server's connection slots, in all and per peer address, counted in
 * shared memory so that every worker admits against the same counts: one
 * connection more than a limit is refused whichever worker accepted it, and a
 * slot freed on one worker is free at once for all. Across processes
 * (several servers on one root) these counts would need a store of their own;
 * each server would otherwise count only its own connections.
 *
 * The counts per peer are an open-addressing table in a `SharedArrayBuffer`,
 * at least twice as large as the connection limit, so it never fills: a
 * peer's entry exists only while it holds a slot.
 *
 * @module
 */

import { createHash } from "node:crypto";
import { SharedLock } from "./shared_lock.ts";

/**
 * Bytes of a peer address kept as its key: the longest IPv6 address written
 * out, with a zone index, fits. A longer name is keyed by its SHA-256.
 */
const KEY_BYTES = 48;

/** 32-bit cells of one slot: the count, the key's length code, the key. */
const SLOT_CELLS = 2 + KEY_BYTES / 4;

/** Cells before the slots: the connections in all, and the seed of the table's hash. */
const HEADER_CELLS = 2;

/** The least number of slots in the table. */
const MIN_TABLE_SLOTS = 16;

/** The length code of a key that is a SHA-256 of the address: no direct key has it. */
const HASHED_KEY_CODE = KEY_BYTES + 1;

/** Why a connection was refused: the limit it would pass, and the connections already held. */
export type SlotRefusal =
  | { limit: "all"; held: number }
  | { limit: "peer"; held: number };

/** The limits of {@link ConnectionSlots}. */
export interface SlotLimits {
  /** Connections served at once. */
  maxConnections: number;
  /** Connections one peer address may hold at once. */
  maxConnectionsPerPeer: number;
}

/** The shared memory of {@link ConnectionSlots}, made once and posted to every worker. */
export interface ConnectionSlotsBuffers {
  /** The lock every count is changed under. */
  lock: SharedArrayBuffer;
  /** The counts. */
  table: SharedArrayBuffer;
}

/**
 * Connection slots shared by the threads that hold these buffers.
 *
 * @example
 * ```ts
 * import { ConnectionSlots } from "./connection_slots.ts";
 * const limits = { maxConnections: 2, maxConnectionsPerPeer: 1 };
 * const slots = new ConnectionSlots(ConnectionSlots.allocate(limits), limits);
 * console.assert(slots.admit("10.0.0.1") === null);
 * console.assert(slots.admit("10.0.0.1")?.limit === "peer");
 * console.assert(slots.admit("10.0.0.2") === null);
 * console.assert(slots.admit("10.0.0.3")?.limit === "all");
 * slots.release("10.0.0.1");
 * console.assert(slots.admit("10.0.0.3") === null);
 * ```
 */
export class ConnectionSlots {
  readonly #lock: SharedLock;
  readonly #cells: Int32Array;
  readonly #mask: number;
  readonly #limits: SlotLimits;
  /** A key being looked up: its length code, then its bytes as cells. */
  readonly #key = new Int32Array(1 + KEY_BYTES / 4);
  readonly #keyBytes = new Uint8Array(this.#key.buffer, 4);

  /** Shared memory for slots under `limits`, none taken. */
  static allocate(limits: SlotLimits): ConnectionSlotsBuffers {
    let slots = MIN_TABLE_SLOTS;
    while (slots < 2 * limits.maxConnections) slots *= 2;
    const table = new SharedArrayBuffer((HEADER_CELLS + slots * SLOT_CELLS) * 4);
    new Int32Array(table)[1] = crypto.getRandomValues(new Int32Array(1))[0]!;
    return { lock: SharedLock.allocate(), table };
  }

  /** This thread's view of the slots in `buffers`, admitting under `limits` (the same in every thread). */
  constructor(buffers: ConnectionSlotsBuffers, limits: SlotLimits) {
    this.#lock = new SharedLock(buffers.lock);
    this.#cells = new Int32Array(buffers.table);
    this.#mask = (this.#cells.length - HEADER_CELLS) / SLOT_CELLS - 1;
    this.#limits = limits;
  }

  /** Connections held now, in all. */
  get held(): number {
    return this.#lock.hold(() => this.#cells[0]!);
  }

  /** Takes a slot for a connection from `peer` (an address), or says which limit refuses it. */
  admit(peer: string): SlotRefusal | null {
    this.#setKey(peer);
    return this.#lock.hold(() => {
      const total = this.#cells[0]!;
      if (total >= this.#limits.maxConnections) return { limit: "all", held: total } as const;
      const slot = this.#find();
      const fromPeer = this.#cells[slot]!;
      if (fromPeer >= this.#limits.maxConnectionsPerPeer) {
        return { limit: "peer", held: fromPeer } as const;
      }
      if (fromPeer === 0) this.#cells.set(this.#key, slot + 1);
      this.#cells[slot] = fromPeer + 1;
      this.#cells[0] = total + 1;
      return null;
    });
  }

  /** Gives back a slot {@link admit} gave `peer`. */
  release(peer: string): void {
    this.#setKey(peer);
    this.#lock.hold(() => {
      const slot = this.#find();
      const fromPeer = this.#cells[slot]!;
      if (fromPeer === 0) return; // Not held: nothing to give back.
      this.#cells[0] = this.#cells[0]! - 1;
      this.#cells[slot] = fromPeer - 1;
      if (fromPeer === 1) this.#vacate(slot);
    });
  }

  /** Makes `peer` the key being looked up. */
  #setKey(peer: string): void {
    this.#key.fill(0);
    const encoded = new TextEncoder().encode(peer);
    if (encoded.length <= KEY_BYTES) {
      this.#key[0] = encoded.length;
      this.#keyBytes.set(encoded);
    } else {
      this.#key[0] = HASHED_KEY_CODE;
      this.#keyBytes.set(createHash("sha256").update(encoded).digest());
    }
  }

  /** The cell index of the key's slot, or of the empty slot where it would go. */
  #find(): number {
    for (let index = this.#home(this.#key, 0);; index = (index + 1) & this.#mask) {
      const slot = this.#slotCell(index);
      if (this.#cells[slot] === 0 || this.#holdsKey(slot)) return slot;
    }
  }

  /** Whether the slot at cell `slot` holds the key being looked up. */
  #holdsKey(slot: number): boolean {
    for (let i = 0; i < this.#key.length; i++) {
      if (this.#cells[slot + 1 + i] !== this.#key[i]) return false;
    }
    return true;
  }

  /**
   * Empties the slot at cell `slot`, moving later slots of the same probe run
   * back into the gap, so that every key stays reachable from its home slot
   * without markers for deleted keys.
   */
  #vacate(slot: number): void {
    let gap = (slot - HEADER_CELLS) / SLOT_CELLS;
    for (let index = (gap + 1) & this.#mask;; index = (index + 1) & this.#mask) {
      const cell = this.#slotCell(index);
      if (this.#cells[cell] === 0) break;
      const home = this.#home(this.#cells, cell + 1);
      // A key whose home lies cyclically in (gap, index] is reachable where it is.
      const staysReachable = gap <= index
        ? gap < home && home <= index
        : gap < home || home <= index;
      if (staysReachable) continue;
      this.#cells.copyWithin(this.#slotCell(gap), cell, cell + SLOT_CELLS);
      gap = index;
    }
    this.#cells.fill(0, this.#slotCell(gap), this.#slotCell(gap) + SLOT_CELLS);
  }

  /**
   * The home slot of the key stored at `cells[from...]`: its cells mixed
   * into a hash seeded per server (so that a peer cannot choose addresses
   * that pile up on one slot), finished with MurmurHash3's mix so that every
   * bit of the key reaches the low bits the slot is taken from.
   */
  #home(cells: Int32Array, from: number): number {
    let hash = 0x811c9dc5 ^ this.#cells[1]!;
    for (let i = 0; i < 1 + KEY_BYTES / 4; i++) {
      hash = Math.imul(hash ^ cells[from + i]!, 0x01000193);
      hash ^= hash >>> 15;
    }
    hash = Math.imul(hash ^ (hash >>> 16), 0x85ebca6b);
    hash = Math.imul(hash ^ (hash >>> 13), 0xc2b2ae35);
    return ((hash ^ (hash >>> 16)) >>> 0) & this.#mask;
  }

  /** The first cell of slot `index`. */
  #slotCell(index: number): number {
    return HEADER_CELLS + index * SLOT_CELLS;
  }
}
