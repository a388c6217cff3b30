/**
 * The pipeline's scheduling against a fake session: no sockets, only a log
 * of what was prepared, sent, received and disposed of, in order.
 */

import assert from "node:assert/strict";
import {
  type CommitSteps,
  PIPELINE_DEPTH,
  PIPELINE_REPLY_BYTES,
  type PipelineSteps,
  runPipeline,
} from "../client/pipeline.ts";

/** A failure that breaks the session, as a lost connection does. */
class BrokenSession extends Error {}

/** One job: its number, how big its reply is, whether it waits, and how it fails. */
interface FakeJob {
  n: number;
  replyBytes?: number;
  mustWait?: boolean;
  failIn?: "prepare" | "send" | "receive";
  broken?: boolean;
}

/** A session that answers every request in order, and a log of what happened. */
class FakeSession {
  readonly log: string[] = [];
  closed = false;
  inFlight = 0;
  inFlightBytes = 0;
  mostInFlight = 0;
  /** Reply bytes unread just before each send. */
  readonly unreadBeforeSend: number[] = [];

  isBroken(err: unknown): boolean {
    return err instanceof BrokenSession || this.closed;
  }

  close(): void {
    this.closed = true;
    this.log.push("close");
  }

  /** Whether the server's next messages are waiting, as the commit tests set it. */
  waiting = false;

  inputWaiting(): Promise<boolean> {
    this.log.push(`waiting? ${this.waiting}`);
    return Promise.resolve(this.waiting);
  }

  steps(): PipelineSteps<
    FakeJob,
    { job: FakeJob; mustWait: boolean; [Symbol.dispose](): void },
    { job: FakeJob; replyBytes: number },
    number
  > {
    return {
      prepare: (job) => {
        this.log.push(`prepare ${job.n}`);
        this.#maybeFail(job, "prepare");
        return {
          job,
          mustWait: job.mustWait === true,
          [Symbol.dispose]: () => void this.log.push(`dispose ${job.n}`),
        };
      },
      send: async (ready) => {
        await Promise.resolve();
        this.unreadBeforeSend.push(this.inFlightBytes);
        this.log.push(`send ${ready.job.n}`);
        this.#maybeFail(ready.job, "send");
        const replyBytes = ready.job.replyBytes ?? 100;
        this.inFlight += 1;
        this.inFlightBytes += replyBytes;
        this.mostInFlight = Math.max(this.mostInFlight, this.inFlight);
        return { job: ready.job, replyBytes };
      },
      receive: async (sent) => {
        await Promise.resolve();
        this.inFlight -= 1;
        this.inFlightBytes -= sent.replyBytes;
        this.log.push(`receive ${sent.job.n}`);
        this.#maybeFail(sent.job, "receive");
        return sent.job.n * 10;
      },
      onDone: (index, result) => void this.log.push(`done ${index} ${result}`),
    };
  }

  /**
   * Commit steps for the jobs' results (n * 10): a group is full at
   * `groupSize` jobs, job `conflicting` may not be received while others
   * are held, and job `failing` fails to commit.
   */
  commitSteps(
    groupSize: number,
    { conflicting = -1, failing = -1 } = {},
  ): CommitSteps<{ job: FakeJob; replyBytes: number }, number, number> {
    return {
      commit: (held) => {
        this.log.push(`commit ${held.map((result) => result / 10).join(",")}`);
        return Promise.resolve(
          held.map((result) =>
            result === failing * 10
              ? { ok: false, error: new Error(`commit failed at ${failing}`) }
              : { ok: true, result }
          ),
        );
      },
      full: (held) => held.length >= groupSize,
      conflicts: (sent, held) => sent.job.n === conflicting && held.length > 0,
    };
  }

  #maybeFail(job: FakeJob, step: FakeJob["failIn"]): void {
    if (job.failIn !== step) return;
    throw job.broken ? new BrokenSession(`broken at ${job.n}`) : new Error(`failed at ${job.n}`);
  }

  /** The job numbers of the log lines starting with `verb`. */
  numbers(verb: string): number[] {
    return this.log.filter((line) => line.startsWith(`${verb} `)).map((line) =>
      Number(line.split(" ")[1])
    );
  }
}

function jobs(count: number, change: (job: FakeJob) => FakeJob = (job) => job): FakeJob[] {
  return Array.from({ length: count }, (_, n) => change({ n }));
}

Deno.test("runPipeline() sends, receives and reports every job in order", async () => {
  const session = new FakeSession();
  const results = await runPipeline(session, jobs(200), session.steps());
  const all = Array.from({ length: 200 }, (_, n) => n);
  assert.deepEqual(results, all.map((n) => n * 10));
  assert.deepEqual(session.numbers("send"), all);
  assert.deepEqual(session.numbers("receive"), all);
  assert.deepEqual(session.numbers("done"), all);
  assert.deepEqual(session.numbers("dispose"), all);
  assert.equal(session.closed, false);
});

Deno.test("runPipeline() keeps at most PIPELINE_DEPTH requests unanswered", async () => {
  const session = new FakeSession();
  await runPipeline(
    session,
    jobs(PIPELINE_DEPTH * 3, (job) => ({ ...job, replyBytes: 1 })),
    session.steps(),
  );
  assert.equal(session.mostInFlight, PIPELINE_DEPTH);
  // The first reply is read only once the depth is reached.
  assert.equal(
    session.log.indexOf("receive 0"),
    session.log.indexOf(`send ${PIPELINE_DEPTH - 1}`) + 2,
  );
});

Deno.test("runPipeline() keeps unread replies within PIPELINE_REPLY_BYTES", async () => {
  const session = new FakeSession();
  const replyBytes = 10_000;
  await runPipeline(session, jobs(50, (job) => ({ ...job, replyBytes })), session.steps());
  assert.ok(session.unreadBeforeSend.every((bytes) => bytes <= PIPELINE_REPLY_BYTES));
  assert.equal(session.mostInFlight, Math.floor(PIPELINE_REPLY_BYTES / replyBytes) + 1);
});

Deno.test("runPipeline() sends nothing after a failed reply, answers those in flight, then throws it", async () => {
  const session = new FakeSession();
  const run = runPipeline(
    session,
    jobs(200, (job) => job.n === 3 ? { ...job, failIn: "receive" } : job),
    session.steps(),
  );
  await assert.rejects(run, /failed at 3/);
  const sent = session.numbers("send");
  // Job 3's reply is read once job PIPELINE_DEPTH + 2 went out; nothing goes out after it.
  assert.equal(sent.at(-1), PIPELINE_DEPTH + 2);
  assert.deepEqual(session.numbers("receive"), sent);
  assert.deepEqual(session.numbers("done"), sent.filter((n) => n !== 3));
  assert.equal(session.closed, false);
});

Deno.test("runPipeline() stops at a job that fails before it is sent, and answers those in flight", async () => {
  for (const failIn of ["prepare", "send"] as const) {
    const session = new FakeSession();
    const run = runPipeline(
      session,
      jobs(10, (job) => job.n === 5 ? { ...job, failIn } : job),
      session.steps(),
    );
    await assert.rejects(run, /failed at 5/);
    assert.deepEqual(session.numbers("receive"), [0, 1, 2, 3, 4]);
    assert.deepEqual(session.numbers("prepare"), [0, 1, 2, 3, 4, 5]);
    // A job prepared and not sent is disposed of all the same.
    assert.deepEqual(
      session.numbers("dispose"),
      failIn === "send" ? [0, 1, 2, 3, 4, 5] : [0, 1, 2, 3, 4],
    );
    assert.equal(session.closed, false);
  }
});

Deno.test("runPipeline() throws a broken session at once and closes it", async () => {
  for (const failIn of ["send", "receive"] as const) {
    const session = new FakeSession();
    const run = runPipeline(
      session,
      jobs(PIPELINE_DEPTH * 2, (job) => job.n === 2 ? { ...job, failIn, broken: true } : job),
      session.steps(),
    );
    await assert.rejects(run, BrokenSession);
    assert.equal(session.log.at(-1), "close");
    // Nothing after the break: no further send, and the replies in flight are left unread.
    const broke = session.log.indexOf(`${failIn} 2`);
    assert.deepEqual(session.log.slice(broke + 1).filter((line) => !line.startsWith("dispose")), [
      "close",
    ]);
  }
});

Deno.test("runPipeline() reads every earlier reply before a job that must wait", async () => {
  const session = new FakeSession();
  await runPipeline(
    session,
    jobs(5, (job) => job.n === 2 ? { ...job, mustWait: true } : job),
    session.steps(),
  );
  const order = session.log.filter((line) => /^(send|receive)/.test(line));
  assert.deepEqual(order, [
    "send 0",
    "send 1",
    "receive 0",
    "receive 1",
    "send 2",
    "send 3",
    "send 4",
    "receive 2",
    "receive 3",
    "receive 4",
  ]);
});

Deno.test("runPipeline() does not send a job that must wait behind a failure", async () => {
  const session = new FakeSession();
  const run = runPipeline(
    session,
    jobs(
      5,
      (job) =>
        job.n === 1
          ? { ...job, failIn: "receive" }
          : job.n === 2
          ? { ...job, mustWait: true }
          : job,
    ),
    session.steps(),
  );
  await assert.rejects(run, /failed at 1/);
  assert.deepEqual(session.numbers("send"), [0, 1]);
  assert.deepEqual(session.numbers("prepare"), [0, 1, 2]);
  assert.deepEqual(session.numbers("dispose"), [0, 1, 2]);
});

Deno.test("runPipeline() with commit steps holds jobs while input waits and commits them in groups", async () => {
  const session = new FakeSession();
  session.waiting = true;
  const results = await runPipeline(session, jobs(10), session.steps(), session.commitSteps(4));
  assert.deepEqual(results, jobs(10).map(({ n }) => n * 10));
  assert.deepEqual(session.log.filter((line) => /^(commit|done)/.test(line)), [
    "commit 0,1,2,3",
    "done 0 0",
    "done 1 10",
    "done 2 20",
    "done 3 30",
    "commit 4,5,6,7",
    "done 4 40",
    "done 5 50",
    "done 6 60",
    "done 7 70",
    // The last group is committed when the pipeline ends.
    "commit 8,9",
    "done 8 80",
    "done 9 90",
  ]);
});

Deno.test("runPipeline() commits each job as it comes when no input is waiting", async () => {
  const session = new FakeSession();
  await runPipeline(session, jobs(3), session.steps(), session.commitSteps(64));
  assert.deepEqual(session.log.filter((line) => /^(receive|waiting|commit)/.test(line)), [
    "receive 0",
    "waiting? false",
    "commit 0",
    "receive 1",
    "waiting? false",
    "commit 1",
    "receive 2",
    "waiting? false",
    "commit 2",
  ]);
});

Deno.test("runPipeline() commits the held jobs before receiving one that conflicts with them", async () => {
  const session = new FakeSession();
  session.waiting = true;
  await runPipeline(session, jobs(6), session.steps(), session.commitSteps(64, { conflicting: 3 }));
  assert.deepEqual(session.log.filter((line) => /^(receive|commit)/.test(line)), [
    "receive 0",
    "receive 1",
    "receive 2",
    "commit 0,1,2",
    "receive 3",
    "receive 4",
    "receive 5",
    "commit 3,4,5",
  ]);
});

Deno.test("runPipeline() reports every other job of a group in which one failed to commit, then throws", async () => {
  const session = new FakeSession();
  session.waiting = true;
  const run = runPipeline(
    session,
    jobs(6),
    session.steps(),
    session.commitSteps(64, { failing: 2 }),
  );
  await assert.rejects(run, /commit failed at 2/);
  assert.deepEqual(session.numbers("done"), [0, 1, 3, 4, 5]);
  assert.equal(session.closed, false);
});

Deno.test("runPipeline() commits the jobs received before a broken session, then throws it", async () => {
  const session = new FakeSession();
  session.waiting = true;
  const run = runPipeline(
    session,
    jobs(6, (job) => job.n === 3 ? { ...job, failIn: "receive", broken: true } : job),
    session.steps(),
    session.commitSteps(64),
  );
  await assert.rejects(run, BrokenSession);
  assert.deepEqual(session.log.filter((line) => /^(commit|done|close)/.test(line)), [
    "commit 0,1,2",
    "done 0 0",
    "done 1 10",
    "done 2 20",
    "close",
  ]);
});
