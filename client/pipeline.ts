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

/** What the pipeline needs of a session: to tell a broken one, to close it, and whether more is coming. */
export interface PipelineSession {
  /** Whether `err` left the session unusable: then it is thrown at once. */
  isBroken(err: unknown): boolean;
  /** Closes the session (after it broke). */
  close(): void;
  /**
   * Whether more of the server's messages are already waiting to be read,
   * answered without waiting for the server: a group of received jobs is
   * committed when none are ({@link CommitSteps}).
   */
  inputWaiting(): Promise<boolean>;
}

/**
 * The steps of one job, in the order the pipeline calls them. A job's
 * result is what {@link receive} returns, unless the pipeline is given
 * {@link CommitSteps}.
 */
export interface PipelineSteps<
  Job,
  Ready extends ReadyJob,
  Sent extends SentJob,
  Received,
  Result = Received,
> {
  /** Local work before anything is sent; a failure here stops further jobs. */
  prepare(job: Job): Ready | Promise<Ready>;
  /** Sends the job's request (and its data); the reply stays unread. */
  send(ready: Ready): Promise<Sent>;
  /** Reads the job's reply (and its data) and checks it. */
  receive(sent: Sent): Promise<Received>;
  /** Called as each job completes, in order, with its index in `jobs`. */
  onDone?: (index: number, result: Result) => void;
  /**
   * Called when a job fails and the session is sound: true leaves that job
   * out and goes on with the others; false (or none) makes it the
   * pipeline's failure.
   */
  onRefused?: (index: number, error: unknown) => boolean;
}

/** A committed job's result, or the error that failed it. */
export type JobOutcome<Result> = { ok: true; result: Result } | { ok: false; error: unknown };

/**
 * How jobs received back to back are finished together (downloads: their
 * files fsynced, renamed into place and their directories fsynced as one
 * group, io/commit_group.ts). Received jobs are held while the server's
 * next messages are already waiting, and committed when none are, when
 * {@link full} says so, before a job that {@link conflicts} with them, and
 * before the pipeline ends or fails: never waiting for the server to fill a group.
 */
export interface CommitSteps<Sent, Received, Result> {
  /** Finishes the held jobs: each one's result or error, in order. */
  commit(held: Received[]): Promise<JobOutcome<Result>[]>;
  /** Whether the group `held` takes no more jobs. */
  full(held: readonly Received[]): boolean;
  /** Whether `sent` must not be received while `held` are not committed (they share a local file). */
  conflicts(sent: Sent, held: readonly Received[]): boolean;
}

/**
 * Runs every job in order on `session` and returns their results in order.
 * At most {@link PIPELINE_DEPTH} requests, whose replies take at most
 * {@link PIPELINE_REPLY_BYTES}, wait unread: the replies always fit in the
 * socket's buffers, so neither side can block the other. After the first
 * failure no further job starts; the ones in flight are answered, then the
 * failure is thrown. A failure that breaks the session is thrown at once
 * (once the jobs received before it are committed), and the session closed.
 *
 * @example
 * ```ts
 * import { runPipeline } from "./pipeline.ts";
 * const session = { isBroken: () => false, close() {}, inputWaiting: () => Promise.resolve(false) };
 * const results = await runPipeline(session, [1, 2, 3], {
 *   prepare: (n) => ({ n, mustWait: false, [Symbol.dispose]() {} }),
 *   send: (ready) => Promise.resolve({ n: ready.n, replyBytes: 100 }),
 *   receive: (sent) => Promise.resolve(sent.n * 10),
 * });
 * console.assert(results.join() === "10,20,30");
 * ```
 */
export function runPipeline<Job, Ready extends ReadyJob, Sent extends SentJob, Result>(
  session: PipelineSession,
  jobs: readonly Job[],
  steps: PipelineSteps<Job, Ready, Sent, Result>,
): Promise<Result[]>;
/**
 * {@link runPipeline} with the jobs' results given by `commit` for groups
 * of jobs received back to back (see {@link CommitSteps}).
 */
export function runPipeline<Job, Ready extends ReadyJob, Sent extends SentJob, Received, Result>(
  session: PipelineSession,
  jobs: readonly Job[],
  steps: PipelineSteps<Job, Ready, Sent, Received, Result>,
  commit: CommitSteps<Sent, Received, Result>,
): Promise<Result[]>;
export async function runPipeline<
  Job,
  Ready extends ReadyJob,
  Sent extends SentJob,
  Received,
  Result,
>(
  session: PipelineSession,
  jobs: readonly Job[],
  steps: PipelineSteps<Job, Ready, Sent, Received, Result>,
  // Without commit steps, the overload above makes Received and Result one type.
  commit = EACH_ALONE as CommitSteps<Sent, Received, Result>,
): Promise<Result[]> {
  const results: Result[] = [];
  const inFlight: { index: number; sent: Sent }[] = [];
  /** Received jobs waiting to be committed as one group. */
  const held: { index: number; received: Received }[] = [];
  const heldReceived = () => held.map(({ received }) => received);
  let replyBytes = 0;
  let failure: unknown = null;
  /** Commits the held jobs and reports each, in order; a job's failure is kept. */
  const commitHeld = async () => {
    if (held.length === 0) return;
    const group = held.splice(0);
    const outcomes = await commit.commit(group.map(({ received }) => received));
    for (const [position, { index }] of group.entries()) {
      const outcome = outcomes[position]!;
      if (!outcome.ok) {
        if (!steps.onRefused?.(index, outcome.error)) failure ??= outcome.error;
        continue;
      }
      steps.onDone?.(index, outcome.result);
      results.push(outcome.result);
    }
  };
  /**
   * Reads the oldest reply into the group, which is committed unless more
   * is already waiting: an operation's failure is kept, a broken session's
   * thrown (the jobs received before it committed first).
   */
  const receiveOldest = async () => {
    const { index, sent } = inFlight.shift()!;
    replyBytes -= sent.replyBytes;
    if (commit.conflicts(sent, heldReceived())) await commitHeld();
    let received: Received;
    try {
      received = await steps.receive(sent);
    } catch (err) {
      await commitHeld();
      if (session.isBroken(err)) throw err;
      if (!steps.onRefused?.(index, err)) failure ??= err;
      return;
    }
    held.push({ index, received });
    if (commit.full(heldReceived()) || !await session.inputWaiting()) await commitHeld();
  };
  const drain = async () => {
    while (inFlight.length > 0) await receiveOldest();
    await commitHeld();
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
        if (steps.onRefused?.(index, err)) continue;
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

/** The commit steps of jobs whose result is their reply: each one done as soon as it is received. */
const EACH_ALONE: CommitSteps<unknown, unknown, unknown> = {
  commit: (held) => Promise.resolve(held.map((result) => ({ ok: true, result }))),
  full: () => true,
  conflicts: () => false,
};
