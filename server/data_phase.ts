/**
 * The raw data phase of a request, as the handlers and the dispatcher share
 * it: the rate floor engaged only while data flows, the trailer after an
 * upload's data, reading past the data of a request that is refused, and
 * what an error means once the server has started sending data.
 *
 * @module
 */

import { readData } from "../io/read_data.ts";
import { ProtocolError } from "../protocol/errors.ts";
import type { FrameReader } from "../protocol/frames.ts";
import { type ChecksumName, decodeClientMessage, type Trailer } from "../protocol/messages.ts";
import type { RateFloor } from "./rate_floor.ts";

/**
 * What a data phase reads from and is measured by: the connection's framing
 * and rate floor, and the session's checksum, which trailers are of.
 */
export interface DataPhaseContext {
  /** The connection's frames, and the raw data after them. */
  readonly reader: FrameReader;
  /** The checksum the session's hello negotiated. */
  readonly checksum: ChecksumName;
  /** Engaged while data flows (see {@link atMinRate}). */
  readonly rateFloor: Pick<RateFloor, "engage" | "disengage">;
}

/**
 * Thrown by a handler that fails after it has announced raw data to the
 * peer (a download's data header): the peer is counting bytes, so the error
 * cannot be a reply, and the session closes the connection instead.
 *
 * @example
 * ```ts
 * import { DataStreamBrokenError } from "./data_phase.ts";
 * const err = new DataStreamBrokenError(new Error("file shrank by 5 bytes while being sent"));
 * console.assert(err.cause instanceof Error);
 * ```
 */
export class DataStreamBrokenError extends Error {
  /** An error saying that `cause` broke the data stream. */
  constructor(cause: unknown) {
    super(`the data stream broke off: ${cause}`, { cause });
    this.name = "DataStreamBrokenError";
  }
}

/**
 * Runs a data phase with the connection's rate floor engaged: only there, so
 * that the hashing of held bytes, the fsyncs and the time between requests
 * never count as a slow peer.
 *
 * @example
 * ```ts
 * import { atMinRate } from "./data_phase.ts";
 * const floor = { engage() {}, disengage() {} };
 * console.assert(await atMinRate(floor, () => Promise.resolve(3)) === 3);
 * ```
 */
export async function atMinRate<T>(
  rateFloor: DataPhaseContext["rateFloor"],
  phase: () => Promise<T>,
): Promise<T> {
  rateFloor.engage();
  try {
    return await phase();
  } finally {
    rateFloor.disengage();
  }
}

/**
 * Reads the trailer that follows the data of upload request `id`. Anything
 * else (the end of the connection, another message, another request's
 * trailer, a digest of another checksum than the session's) is a
 * {@link ProtocolError}.
 */
export async function readTrailer(context: DataPhaseContext, id: number): Promise<Trailer> {
  const message = await context.reader.readMessage();
  if (message === null) throw new ProtocolError("connection closed before the trailer");
  const trailer = decodeClientMessage(message, "trailer", context.checksum);
  if (trailer.id !== id) throw new ProtocolError(`expected the trailer of request ${id}`);
  return trailer;
}

/**
 * Reads past the `bytes` of raw data and the trailer that follow request
 * `id` without waiting to be asked (an eager upload), when the request is
 * refused: so that the stream stays in step and the session goes on with the
 * next request, as sftp-server discards the rest of a packet it refuses.
 */
export async function drainCarriedData(
  context: DataPhaseContext,
  id: number,
  bytes: number,
): Promise<void> {
  await atMinRate(context.rateFloor, async () => {
    await readData(context.reader, bytes, () => {});
    await readTrailer(context, id);
  });
}
