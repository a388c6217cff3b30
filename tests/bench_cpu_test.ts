import assert from "node:assert/strict";
import { busiestThread, measureCpu } from "../scripts/bench_cpu.ts";

/** CPU seconds the busy processes below spend: enough to stand well above a 10 ms clock tick. */
const BUSY_SECONDS = 0.3;

/** A shell line that spends BUSY_SECONDS of CPU (not of wall time) in one thread of a Deno child. */
const busyLine = `${Deno.execPath()} eval "import { cpuUsage } from 'node:process'; ` +
  `let x = 0; while (cpuUsage().user < ${BUSY_SECONDS * 1e6}) x++;"`;

Deno.test("measureCpu() counts a client's CPU, and its busiest thread, after the client is gone", async () => {
  const { cpu } = await measureCpu(
    () => new Deno.Command("sh", { args: ["-c", busyLine] }).output(),
    { serverPid: null },
  );
  assert.ok(cpu.clientSeconds >= BUSY_SECONDS - 0.02, `clients: ${cpu.clientSeconds}`);
  assert.equal(cpu.serverSeconds, 0);
  // Sampled: the last up to 20 ms of the thread can be missed.
  const busiest = busiestThread(cpu.clients);
  assert.ok(busiest, "no client thread was seen");
  assert.ok(busiest.seconds >= BUSY_SECONDS - 0.1, `busiest thread: ${busiest.seconds}`);
  assert.ok(busiest.seconds <= cpu.clientSeconds + 0.02);
});

Deno.test("measureCpu() counts a server's forked children, reaped during the operation", async () => {
  // A server that, for each line on its stdin, forks a busy child, waits for it and answers,
  // as an rsync daemon or sshd forks per connection.
  const server = new Deno.Command("sh", {
    args: ["-c", `while read line; do ${busyLine}; echo done; done`],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const writer = server.stdin.getWriter();
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const { cpu } = await measureCpu(async () => {
      await writer.write(new TextEncoder().encode("go\n"));
      let answer = "";
      for (let i = 0; i < 100 && !answer.includes("done"); i++) {
        const { value, done } = await reader.read();
        if (done) break;
        answer += value;
      }
      assert.match(answer, /done/);
    }, { serverPid: server.pid });
    assert.ok(cpu.serverSeconds >= BUSY_SECONDS - 0.02, `server: ${cpu.serverSeconds}`);
    assert.ok(cpu.clientSeconds < 0.1, `clients: ${cpu.clientSeconds}`);
    assert.ok(cpu.wallSeconds > 0);
    assert.ok(cpu.server.some((p) => p.pid === server.pid));
  } finally {
    await writer.close();
    await reader.cancel();
    await server.status;
  }
});

Deno.test("measureCpu() without sampling still gives exact totals", async () => {
  const { result, cpu } = await measureCpu(async () => {
    await new Deno.Command("sh", { args: ["-c", busyLine] }).output();
    return 7;
  }, { serverPid: null, sampleThreads: false });
  assert.equal(result, 7);
  assert.ok(cpu.clientSeconds >= BUSY_SECONDS - 0.02);
  assert.deepEqual(cpu.clients, []);
});
