import assert from "node:assert/strict";
import { encodeFrame } from "../protocol/frames.ts";
import { PROTOCOL_VERSION } from "../protocol/limits.ts";
import { RawClient, readWithin, type RunningServer, startServer, waitFor } from "./_helpers.ts";

/** A log line the peer would like the server to have written. */
const FORGED_LINE = '2099-01-01T00:00:00.000Z 6.6.6.6:1 [admin] delete "important.txt" ok';

/** Characters that break a line, move the cursor, or reorder text on a terminal. */
const FORGING_CHARACTERS = [
  "\n",
  "\r",
  "\u001b[2K",
  "\u0085",
  "\u2028",
  "\u2029",
  "\u202e",
  "\u2066",
];

/** Every peer-controlled string below carries each of these before a forged line. */
const forged = FORGING_CHARACTERS.map((c) => `x${c}${FORGED_LINE}`).join("");

/** Longer than any log line may be: 60 KB from the peer. */
const HUGE = "A".repeat(60_000);

/** A log line must be at most this long, whatever the peer sent. */
const MAX_LINE_CHARS = 10_000;

const TIMESTAMP = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /;
const JSON_TIMESTAMP = /^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/;

// C0, DEL, C1, line and paragraph separators, bidi embeddings, overrides and isolates.
// deno-lint-ignore no-control-regex
const RAW_DANGEROUS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** Sends each hostile first frame on its own connection, and hostile requests after the handshake. */
async function sendHostileFrames(server: RunningServer): Promise<void> {
  const firstFrames = [
    { type: "hello", protocol: PROTOCOL_VERSION + 1, software: forged },
    { type: "hello", protocol: PROTOCOL_VERSION + 1, software: HUGE },
    { type: forged },
    { type: HUGE },
  ];
  for (const frame of firstFrames) {
    const client = await RawClient.open(server.port, false);
    try {
      await client.sendBytes(encodeFrame(frame));
      await readWithin(client); // VERSION or fatal
    } finally {
      client.close();
    }
  }
  const client = await RawClient.open(server.port, true, server.token!);
  try {
    for (const op of [forged, HUGE]) {
      const reply = await client.request({ op });
      assert.equal((reply?.error as { code: string }).code, "UNSUPPORTED");
    }
    for (const name of [forged, HUGE]) {
      const reply = await client.request({ op: "stat", name });
      assert.equal(reply?.ok, false);
    }
  } finally {
    client.close();
  }
}

/** The log's lines once it has recorded `count` disconnects. */
async function logLines(server: RunningServer, count: number): Promise<string[]> {
  await waitFor(() => (server.log().match(/disconnect/g) ?? []).length >= count);
  return server.log().split("\n").filter((line) => line !== "");
}

Deno.test("text log escapes and truncates peer text: no forged line, no huge line", async () => {
  const server = await startServer(["--token", "T".repeat(32)], { auth: true });
  try {
    await sendHostileFrames(server);
    const lines = await logLines(server, 5);
    assert.ok(lines.length >= 10, server.log());
    for (const line of lines) {
      assert.match(line, TIMESTAMP);
      assert.ok(!line.startsWith("2099-"), line);
      assert.doesNotMatch(line, RAW_DANGEROUS);
      assert.ok(line.length <= MAX_LINE_CHARS, `a line of ${line.length} characters`);
    }
    assert.match(server.log(), /chars cut/);
  } finally {
    await server.stop();
  }
});

Deno.test("JSON log escapes separators, C1 and bidi characters, and truncates", async () => {
  const server = await startServer(["--token", "T".repeat(32), "--log-format", "json"], {
    auth: true,
  });
  try {
    await sendHostileFrames(server);
    const lines = await logLines(server, 5);
    assert.ok(lines.length >= 10, server.log());
    for (const line of lines) {
      assert.match(line, JSON_TIMESTAMP);
      assert.doesNotMatch(line, RAW_DANGEROUS);
      assert.ok(line.length <= MAX_LINE_CHARS, `a line of ${line.length} characters`);
      const event = JSON.parse(line);
      assert.equal(typeof event.time, "string");
    }
    // The escaped text still says what the peer sent.
    assert.ok(lines.some((line) => JSON.parse(line).detail?.includes("\u2028")));
  } finally {
    await server.stop();
  }
});
