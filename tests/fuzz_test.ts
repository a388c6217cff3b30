import assert from "node:assert/strict";
import { join } from "node:path";
import { readData } from "../io/read_data.ts";
import { FtsError } from "../protocol/errors.ts";
import { type ByteSource, FrameReader } from "../protocol/frames.ts";
import { decodeClientMessage, decodeServerMessage } from "../protocol/messages.ts";
import { parseName } from "../protocol/names.ts";
import { fuzzInput, prng } from "./_fuzz_inputs.ts";
import {
  assertFreshClientLists,
  EMPTY_ROOT,
  listTree,
  RawClient,
  runCommand,
  startServer,
} from "./_helpers.ts";

const PARSER_INPUTS = 100_000;
const LIVE_INPUTS = 400;
/** Every this many live inputs, a fresh client must still be served. */
const LIVE_CHECK_EVERY = 25;
const LIVE_CONCURRENCY = 50;
const FUZZER_TOKEN = "fuzzer-token-0123456789";
/** How long one live connection may take before the test gives up on it (bounded). */
const LIVE_CONNECTION_MS = 1_500;

function chunked(bytes: Uint8Array, random: () => number): ByteSource {
  let offset = 0;
  return {
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, bytes.length - offset, 1 + Math.floor(random() * 64));
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** Runs everything that parses peer input over `bytes`; throws only what it must not. */
async function parseAll(bytes: Uint8Array, random: () => number): Promise<void> {
  const reader = new FrameReader(chunked(bytes, random));
  // At most as many messages as there are bytes: the loop cannot run away.
  for (let i = 0; i <= bytes.length; i++) {
    const message = await reader.readMessage();
    if (message === null) return;
    for (const decode of [decodeClientMessage, decodeServerMessage]) {
      try {
        decode(message);
      } catch (err) {
        if (!(err instanceof FtsError)) throw err;
      }
    }
    if (typeof message.name === "string") {
      try {
        parseName(message.name);
      } catch (err) {
        if (!(err instanceof FtsError)) throw err;
      }
    }
    if (typeof message.size === "number" && message.size >= 0 && message.size < 1e6) {
      await readData(reader, message.size, () => {});
    }
  }
}

Deno.test(`the parser survives ${PARSER_INPUTS} generated hostile inputs with only protocol errors`, async () => {
  const random = prng(20261124);
  let protocolErrors = 0;
  for (let index = 0; index < PARSER_INPUTS; index++) {
    const input = fuzzInput(random);
    try {
      await parseAll(input, random);
    } catch (err) {
      if (!(err instanceof FtsError)) {
        assert.fail(`input ${index} (${Array.from(input.slice(0, 64))}) threw ${err}`);
      }
      protocolErrors += 1;
    }
  }
  // The corpus must actually reach the error paths, not only the happy one.
  assert.ok(protocolErrors > PARSER_INPUTS / 10, `${protocolErrors} protocol errors`);
});

Deno.test(`the live server survives ${LIVE_INPUTS} hostile inputs and keeps serving`, async () => {
  // The fuzzer's token has the write role: its random requests may upload and
  // delete, but a random `terminate` must not end the test early.
  const tokens = await Deno.makeTempFile();
  await Deno.writeTextFile(tokens, `write fuzzer ${FUZZER_TOKEN}\n`);
  const server = await startServer(["--tokens", tokens], { auth: true });
  try {
    // Beside the root: whatever the inputs do, nothing here may change.
    const outside = join(server.dir, "outside");
    await Deno.mkdir(join(outside, "sub"), { recursive: true });
    await Deno.writeTextFile(join(outside, "secret.txt"), "not for the network");
    const besideRoot = async () =>
      (await listTree(server.dir)).filter((path) => !path.startsWith("root/"));
    const before = await besideRoot();
    const random = prng(7);
    const inputs = Array.from({ length: LIVE_INPUTS }, () => fuzzInput(random));
    let next = 0;
    const worker = async () => {
      while (next < inputs.length) {
        const index = next++;
        const input = inputs[index]!;
        if (index % LIVE_CHECK_EVERY === 0) {
          // Along the way, not only at the end: other clients are still served.
          await assertFreshClientLists(server);
        }
        const client = await RawClient.open(server.port, random() < 0.8, FUZZER_TOKEN);
        const timer = setTimeout(() => client.close(), LIVE_CONNECTION_MS);
        try {
          await client.sendBytes(input).catch(() => {});
          // Read whatever comes back until the server closes or the time is up.
          for (let i = 0; i < 100; i++) {
            const message = await client.reader.readMessage().catch(() => null);
            if (message === null || message.type === "fatal") break;
          }
        } finally {
          clearTimeout(timer);
          client.close();
        }
      }
    };
    await Promise.all(Array.from({ length: LIVE_CONCURRENCY }, worker));
    const ls = await runCommand(server, ["ls"]);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(await listTree(server.root), EMPTY_ROOT);
    assert.deepEqual(await besideRoot(), before, "nothing outside the root was written");
    assert.equal(await Deno.readTextFile(join(outside, "secret.txt")), "not for the network");
    assert.doesNotMatch(server.log(), /INTERNAL/);
  } finally {
    await server.stop();
    await Deno.remove(tokens);
  }
});
