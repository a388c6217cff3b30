/**
 * Many transfers on one session without a round trip each: requests go out
 * ahead while the replies, which the server sends one at a time and in
 * order, are read in the same order. Pure scheduling: the I/O is the
 * caller's `prepare`, `send` and `receive`; control only flows from here to
 * them.
 *
 * @module
 */

/**
 * Requests a many-file transfer keeps in flight before reading the oldest
 * reply: enough to hide the round trip behind the next files' data, few
 * enough that their replies (a few hundred bytes each) never fill a socket buffer.
 */
export const PIPELINE_DEPTH = 64;

/**
 * Most bytes the replies (or, for downloads, the requests) of a pipeline
 * may take while unread: well inside the smallest socket buffer on either
 * end, so the side that writes never waits for the side that is writing too.
 */
export const PIPELINE_REPLY_BYTES = 32 * 1024;

const utf8 = new TextEncoder();

/**
 * The most a reply about `name` (or a request for it) takes: an error
 * message quotes the name, and JSON escapes each character at most twice.
 *
 * @example
 * ```ts
 * import { replyBytesFor } from "./pipeline.ts";
 * console.assert(replyBytesFor("a.bin") === 4 * 5 + 512);
 * ```
 */
export function replyBytesFor(name: string): number {
  return 4 * utf8.encode(name).length + 512;
}

/** A job made ready on this side (a file opened, local checks done), disposed once sent or skipped. */
export interface ReadyJob extends Disposable {
  /**
   * Its request is answered by a message it must read before it sends more
   * (an upload's go-ahead): every earlier reply is read first, and after a
   * failure among them it is not sent.
   */
  readonly mustWait: boolean;
}

/** A job whose request (and data) went out and whose reply is still unread. */
export interface SentJob {
  /** Most bytes its reply (or its request, unread by the server) takes. */
  readonly replyBytes: number;
}

/** What the pipeline needs of a session: to tell a broken one, and to close it. */
export interface PipelineSession {
  /** Whether `err` left the session unusable: then it is thrown at once. */
  isBroken(err: unknown): boolean;
  /** Closes the session (after it broke). */
  close(): void;
}

/** The steps of one job, in the order the pipeline calls them. */
export interface PipelineSteps<Job, Ready extends ReadyJob, Sent extends SentJob, Result> {
  /** Local work before anything is sent; a failure here stops further jobs. */
  prepare(job: Job): Ready | Promise<Ready>;
  /** Sends the job's request (and its data); the reply stays unread. */
  send(ready: Ready): Promise<Sent>;
  /** Reads the job's reply (and its data) and checks it. */
  receive(sent: Sent): Promise<Result>;
  /** Called as each job completes, in order, with its index in `jobs`. */
  onDone?: (index: number, result: Result) => void;
}

/**
 * Runs every job in order on `session` and returns their results in order.
 * At most {@link PIPELINE_DEPTH} requests, whose replies take at most
 * {@link PIPELINE_REPLY_BYTES}, wait unread: the replies always fit in the
 * socket's buffers, so neither side can block the other. After the first
 * failure no further job starts; the ones in flight are answered, then the
 * failure is thrown. A failure that breaks the session is thrown at once,
 * and the session closed.
 *
 * @example
 * ```ts
 * import { runPipeline } from "./pipeline.ts";
 * const session = { isBroken: () => false, close() {} };
 * const results = await runPipeline(session, [1, 2, 3], {
 *   prepare: (n) => ({ n, mustWait: false, [Symbol.dispose]() {} }),
 *   send: (ready) => Promise.resolve({ n: ready.n, replyBytes: 100 }),
 *   receive: (sent) => Promise.resolve(sent.n * 10),
 * });
 * console.assert(results.join() === "10,20,30");
 * ```
 */
export async function runPipeline<Job, Ready extends ReadyJob, Sent extends SentJob, Result>(
  session: PipelineSession,
  jobs: readonly Job[],
  steps: PipelineSteps<Job, Ready, Sent, Result>,
): Promise<Result[]> {
  const results: Result[] = [];
  const inFlight: { index: number; sent: Sent }[] = [];
  let replyBytes = 0;
  let failure: unknown = null;
  /** Reads the oldest reply: an operation's failure is kept, a broken session's thrown. */
  const receiveOldest = async () => {
    const { index, sent } = inFlight.shift()!;
    replyBytes -= sent.replyBytes;
    try {
      const result = await steps.receive(sent);
      steps.onDone?.(index, result);
      results.push(result);
    } catch (err) {
      if (session.isBroken(err)) throw err;
      failure ??= err;
    }
  };
  const drain = async () => {
    while (inFlight.length > 0) await receiveOldest();
  };
  try {
    for (const [index, job] of jobs.entries()) {
      if (failure !== null) break;
      try {
        using ready = await steps.prepare(job);
        if (ready.mustWait) await drain();
        if (failure !== null) break;
        const sent = await steps.send(ready);
        inFlight.push({ index, sent });
        replyBytes += sent.replyBytes;
      } catch (err) {
        if (session.isBroken(err)) throw err;
        // Refused before its data (its reply is read), or a local failure.
        failure ??= err;
        break;
      }
      while (
        inFlight.length >= PIPELINE_DEPTH ||
        (inFlight.length > 0 && replyBytes > PIPELINE_REPLY_BYTES)
      ) {
        await receiveOldest();
      }
    }
    await drain();
  } catch (err) {
    session.close();
    throw err;
  }
  if (failure !== null) throw failure;
  return results;
}
