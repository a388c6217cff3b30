/**
 * Checksums: XXH3-128 and SHA-256 against reference digests (`xxhsum -H2`,
 * `sha256sum`), the negotiation in the hello for every pairing of flags and
 * with peers from before it, a corrupted byte caught under both, resumes
 * hashing the held prefix with the session's checksum, and the checksum
 * named in `--json` and in the server's log.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { parseServeArgs } from "../server/config.ts";
import { createStreamingHash } from "../io/checksum.ts";
import { readData } from "../io/read_data.ts";
import type { ChecksumName } from "../protocol/checksum.ts";
import type { Message } from "../protocol/frames.ts";
import { runAgainstFake, sendFile, treeServer } from "./_fake_server.ts";
import {
  breakUploadAfter,
  digestOfBytes,
  listTree,
  RawClient,
  readWithin,
  runCommand,
  sha256File,
  startServer,
  writeRandomFile,
  xxh3File,
} from "./_helpers.ts";

/** Bytes `i % 251` for i below `size`: no run of equal bytes, every value, NULs. */
function pattern(size: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => i % 251);
}

/** Reference digests, from `xxhsum -H2` and `sha256sum` (xxhash 0.8, coreutils). */
const VECTORS: { input: Uint8Array; "xxh3-128": string; sha256: string }[] = [
  {
    input: new Uint8Array(),
    "xxh3-128": "99aa06d3014798d86001c324468d497f",
    sha256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  },
  {
    input: new TextEncoder().encode("abc"),
    "xxh3-128": "06b05ab6733a618578af5f94892f3950",
    sha256: "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  },
  // Past XXH3's 240-byte short-input path, and past hash-wasm's 16 KiB copy buffer.
  { input: pattern(200), "xxh3-128": "cb0395310643ba0edd97e9af3609d9f5", sha256: "" },
  {
    input: pattern(100_000),
    "xxh3-128": "54182c58bbb1337c42c23aeead96750d",
    sha256: "cd2df694e424bc7968cc37f47751019e5ca0cd1bdf2e479ea537c3a1c32ee1aa",
  },
];

const CHECKSUMS: ChecksumName[] = ["xxh3-128", "sha256"];

/** The same bytes with one flipped, halfway: what a corrupting link would deliver. */
function corrupted(bytes: Uint8Array): Uint8Array {
  const copy = bytes.slice();
  copy[Math.floor(copy.length / 2)]! ^= 0x01;
  return copy;
}

/** Reads until the server closes; returns the first message (the fatal, for a violation). */
async function readUntilClosed(client: RawClient): Promise<Message | null> {
  const first = await readWithin(client).catch(() => null);
  for (let i = 0; i < 10; i++) {
    if (await readWithin(client).catch(() => null) === null) return first;
  }
  throw new Error("the server kept talking after a protocol violation");
}

/** Uploads `data` over a raw session, with a trailer carrying `digest` under the key `checksum`. */
async function rawUpload(
  client: RawClient,
  id: number,
  name: string,
  data: Uint8Array,
  checksum: string,
  digest: string,
): Promise<Message | null> {
  await client.send({ type: "request", id, op: "upload", name, size: data.length });
  const go = await readWithin(client);
  assert.equal(go?.type, "continue", JSON.stringify(go));
  await client.sendBytes(data);
  await client.send({ type: "trailer", id, [checksum]: digest });
  return await readWithin(client);
}

Deno.test("createStreamingHash() gives xxhsum's XXH3-128 and sha256sum's SHA-256, whole or in pieces", async () => {
  for (const vector of VECTORS) {
    for (const algorithm of CHECKSUMS) {
      const expected = vector[algorithm];
      if (expected === "") continue;
      const whole = await createStreamingHash(algorithm);
      whole.update(vector.input);
      assert.equal(whole.hex(), expected, `${algorithm} of ${vector.input.length} bytes`);
      const pieces = await createStreamingHash(algorithm);
      for (
        let start = 0, step = 1;
        start < vector.input.length;
        start += step, step = step * 3 + 1
      ) {
        pieces.update(vector.input.subarray(start, start + step));
      }
      assert.equal(
        pieces.hex(),
        expected,
        `${algorithm} of ${vector.input.length} bytes, in pieces`,
      );
      assert.equal(pieces.algorithm, algorithm);
    }
  }
});

Deno.test("a reused XXH3-128 hasher starts again from nothing; an abandoned one harms no other", async () => {
  const abc = VECTORS[1]!;
  // Left unfinished, as a transfer cut off would leave it.
  const abandoned = await createStreamingHash("xxh3-128");
  abandoned.update(pattern(5000));
  const first = await createStreamingHash("xxh3-128");
  first.update(pattern(300));
  first.hex();
  // Two at once, each taking a hasher finished before (or a new one).
  const second = await createStreamingHash("xxh3-128");
  const third = await createStreamingHash("xxh3-128");
  second.update(abc.input);
  third.update(VECTORS[3]!.input);
  assert.equal(second.hex(), abc["xxh3-128"]);
  assert.equal(third.hex(), VECTORS[3]!["xxh3-128"]);
  assert.equal(second.hex(), abc["xxh3-128"], "the same on every call, after its hasher went back");
  assert.throws(() => second.update(new Uint8Array(1)), /already finished/);
  const empty = await createStreamingHash("xxh3-128");
  assert.equal(empty.hex(), VECTORS[0]!["xxh3-128"]);
});

Deno.test("a default server and client verify with XXH3-128, named in --json, the transfer line and the log", async () => {
  const server = await startServer(["--log-format", "json"]);
  try {
    const vector = VECTORS[3]!;
    await Deno.writeFile(join(server.dir, "v.bin"), vector.input);
    const put = await runCommand(server, ["--json", "put", "v.bin"]);
    assert.equal(put.code, 0, put.stderr);
    const file = JSON.parse(put.stdout).files[0];
    assert.equal(file.checksum, "xxh3-128");
    assert.equal(file.digest, vector["xxh3-128"]);
    assert.ok(!("sha256" in file), "sha256 is given only when it is the checksum");
    const get = await runCommand(server, ["get", "v.bin", "back.bin"]);
    assert.equal(get.code, 0, get.stderr);
    assert.match(get.stdout, new RegExp(`xxh3-128 ${vector["xxh3-128"].slice(0, 16)}…, verified`));
    assert.deepEqual(await Deno.readFile(join(server.dir, "back.bin")), vector.input);
    const records = server.log().trim().split("\n").map((line) => JSON.parse(line));
    assert.ok(records.some((r) => r.op === "auth" && r.checksum === "xxh3-128"));
    for (const op of ["upload", "download"]) {
      const record = records.find((r) => r.op === op);
      assert.equal(record?.checksum, "xxh3-128", op);
      assert.equal(record?.digest, vector["xxh3-128"], op);
    }
  } finally {
    await server.stop();
  }
});

Deno.test("connect --checksum sha256 verifies with SHA-256 against a default server", async () => {
  const server = await startServer();
  try {
    const vector = VECTORS[3]!;
    await Deno.writeFile(join(server.dir, "v.bin"), vector.input);
    const put = await runCommand(server, ["--checksum", "sha256", "--json", "put", "v.bin"]);
    assert.equal(put.code, 0, put.stderr);
    const file = JSON.parse(put.stdout).files[0];
    assert.equal(file.checksum, "sha256");
    assert.equal(file.digest, vector.sha256);
    assert.equal(file.sha256, vector.sha256, "the field scripts read before negotiation");
    assert.match(server.log(), / auth sha256 admin\n/);
    assert.match(server.log(), new RegExp(`upload "v.bin" 100000B .* sha256:${vector.sha256} ok`));
  } finally {
    await server.stop();
  }
});

Deno.test("serve --checksum sha256 offers only SHA-256: a default client uses it, --checksum xxh3-128 is refused", async () => {
  const server = await startServer(["--checksum", "sha256"]);
  try {
    const probe = await RawClient.open(server.port, false);
    assert.deepEqual(probe.hello.checksums, ["sha256"]);
    probe.close();
    await Deno.writeFile(join(server.dir, "a.txt"), new TextEncoder().encode("abc"));
    const put = await runCommand(server, ["--json", "put", "a.txt"]);
    assert.equal(put.code, 0, put.stderr);
    assert.equal(JSON.parse(put.stdout).files[0].checksum, "sha256");
    const refused = await runCommand(server, ["--checksum", "xxh3-128", "ls"]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /verifies transfers with sha256 only, not xxh3-128/);
    assert.match(refused.stderr, /without --checksum/);
    assert.equal(server.log().match(/ auth /g)?.length, 1, "the refused client never got as far");
  } finally {
    await server.stop();
  }
});

Deno.test("serve --checksum xxh3-128 refuses connect --checksum sha256 and a client that names none", async () => {
  const server = await startServer(["--checksum", "xxh3-128"]);
  try {
    const refused = await runCommand(server, ["--checksum", "sha256", "ls"]);
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /xxh3-128 only, not sha256/);
    // A client from before negotiation names none, which means sha256.
    const old = await RawClient.open(server.port, false);
    await old.send({ type: "hello", protocol: 1, software: "fts/0.0.9" });
    const fatal = await readUntilClosed(old);
    old.close();
    assert.equal(fatal?.type, "fatal", JSON.stringify(fatal));
    assert.equal(fatal?.code, "UNSUPPORTED");
    assert.match(String(fatal?.message), /names no checksum, which means sha256/);
  } finally {
    await server.stop();
  }
});

Deno.test("a client naming a checksum the server did not offer, or one it does not know, gets fatal UNSUPPORTED", async () => {
  const server = await startServer(["--checksum", "xxh3-128"]);
  try {
    for (const checksum of ["sha256", "md5", "XXH3-128"]) {
      const client = await RawClient.open(server.port, false);
      await client.send({ type: "hello", protocol: 1, software: "raw-test", checksum });
      const fatal = await readUntilClosed(client);
      client.close();
      assert.equal(fatal?.type, "fatal", `${checksum}: ${JSON.stringify(fatal)}`);
      assert.equal(fatal?.code, "UNSUPPORTED", checksum);
    }
    assert.match(server.log(), /protocol UNSUPPORTED \(the client chose checksum sha256/);
    // The server goes on serving those that choose what it offers.
    const good = await RawClient.open(server.port, true, undefined, { checksum: "xxh3-128" });
    good.close();
  } finally {
    await server.stop();
  }
});

Deno.test("serve --checksum takes names in order of preference; a wrong or repeated one is a usage error", async () => {
  const env = { get: (_: string) => undefined };
  const preferred = async (args: string[]) => {
    const setup = await parseServeArgs(["--no-auth", ...args], env);
    assert.ok(setup !== "help");
    return setup.config.checksums;
  };
  assert.deepEqual(await preferred([]), ["xxh3-128", "sha256"]);
  assert.deepEqual(await preferred(["--checksum", "sha256,xxh3-128"]), ["sha256", "xxh3-128"]);
  assert.deepEqual(await preferred(["--checksum=sha256"]), ["sha256"]);
  await assert.rejects(preferred(["--checksum", "md5"]), /--checksum takes xxh3-128 or sha256/);
  await assert.rejects(preferred(["--checksum", "sha256,sha256"]), /names sha256 twice/);
  await assert.rejects(preferred(["--checksum", "sha256,"]), /not ''/);
  const server = await startServer();
  try {
    const usage = await runCommand(server, ["--checksum", "sha256,xxh3-128", "ls"]);
    assert.equal(usage.code, 2, usage.stderr);
    const unknown = await runCommand(server, ["--checksum", "crc32", "ls"]);
    assert.equal(unknown.code, 2, unknown.stderr);
  } finally {
    await server.stop();
  }
});

Deno.test("a client hello without checksum (fts before negotiation) gets SHA-256 replies keyed sha256", async () => {
  const server = await startServer();
  try {
    const data = pattern(100_000);
    const client = await RawClient.open(server.port);
    try {
      const stored = await rawUpload(client, 1, "old.bin", data, "sha256", VECTORS[3]!.sha256);
      assert.deepEqual(stored, {
        type: "reply",
        id: 1,
        ok: true,
        size: data.length,
        sha256: VECTORS[3]!.sha256,
      });
      await client.send({ type: "request", id: 2, op: "download", name: "old.bin" });
      assert.equal((await readWithin(client))?.type, "data");
      let received = 0;
      await readData(client.reader, data.length, (chunk) => void (received += chunk.length));
      assert.equal(received, data.length);
      const sent = await readWithin(client);
      assert.equal(sent?.sha256, VECTORS[3]!.sha256);
      assert.ok(!("xxh3-128" in sent!), JSON.stringify(sent));
    } finally {
      client.close();
    }
    assert.match(server.log(), / auth sha256 admin\n/);
  } finally {
    await server.stop();
  }
});

Deno.test("an xxh3-128 session's replies are keyed xxh3-128, and a sha256 trailer in it is a protocol violation", async () => {
  const server = await startServer();
  try {
    const data = pattern(100_000);
    const client = await RawClient.open(server.port, true, undefined, { checksum: "xxh3-128" });
    try {
      const hex = VECTORS[3]!["xxh3-128"];
      const stored = await rawUpload(client, 1, "new.bin", data, "xxh3-128", hex);
      assert.deepEqual(stored, {
        type: "reply",
        id: 1,
        ok: true,
        size: data.length,
        "xxh3-128": hex,
      });
      await client.send({ type: "request", id: 2, op: "upload", name: "b", size: 3 });
      assert.equal((await readWithin(client))?.type, "continue");
      await client.sendBytes(VECTORS[1]!.input);
      await client.send({ type: "trailer", id: 2, sha256: VECTORS[1]!.sha256 });
      const fatal = await readUntilClosed(client);
      assert.equal(fatal?.type, "fatal", JSON.stringify(fatal));
      assert.equal(fatal?.code, "BAD_REQUEST");
      assert.match(String(fatal?.message), /needs string field 'xxh3-128'/);
    } finally {
      client.close();
    }
    assert.ok(!(await listTree(server.root)).includes("b"));
  } finally {
    await server.stop();
  }
});

for (const checksum of CHECKSUMS) {
  Deno.test(`a corrupted byte in an upload is caught under ${checksum}: INTEGRITY, nothing kept`, async () => {
    const server = await startServer();
    try {
      const data = pattern(100_000);
      const client = await RawClient.open(server.port, true, undefined, { checksum });
      try {
        // The sender's digest is of what it meant to send; one byte changed on the way.
        const meant = await digestOfBytes(checksum, data);
        const reply = await rawUpload(client, 1, "c.bin", corrupted(data), checksum, meant);
        assert.equal(reply?.ok, false, JSON.stringify(reply));
        assert.equal((reply?.error as { code: string }).code, "INTEGRITY");
        assert.match((reply?.error as { message: string }).message, /differs from the sender's/);
      } finally {
        client.close();
      }
      assert.ok(!(await listTree(server.root)).includes("c.bin"));
    } finally {
      await server.stop();
    }
  });

  Deno.test(`a corrupted byte in a download is caught under ${checksum}: exit 4, nothing kept`, async () => {
    const data = pattern(100_000);
    const run = await runAgainstFake({
      checksums: [checksum],
      async answer(request, peer) {
        await sendFile(request, peer, corrupted(data), checksum, data);
      },
    }, ["get", "c.bin"]);
    try {
      assert.equal(run.code, 4, run.stderr);
      assert.match(run.stderr, /INTEGRITY/);
      assert.equal(run.messages[0]?.checksum, checksum, "the client chose what was offered");
      assert.deepEqual(run.tree, ["cwd/"]);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  });
}

Deno.test("against a server that offers no checksums the client names none and verifies with SHA-256", async () => {
  const data = pattern(100_000);
  const run = await runAgainstFake(treeServer({}, data), ["--json", "get", "old.bin"]);
  try {
    assert.equal(run.code, 0, run.stderr);
    const hello = run.messages[0]!;
    assert.equal(hello.type, "hello");
    assert.ok(!("checksum" in hello), JSON.stringify(hello));
    const file = JSON.parse(run.stdout).files[0];
    assert.equal(file.checksum, "sha256");
    assert.equal(file.sha256, VECTORS[3]!.sha256);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
  const refused = await runAgainstFake(treeServer({}, data), [
    "--checksum",
    "xxh3-128",
    "get",
    "x",
  ]);
  try {
    assert.equal(refused.code, 3, refused.stderr);
    assert.match(refused.stderr, /verifies transfers with sha256 only, not xxh3-128/);
    assert.ok(!refused.messages.some((m) => m.type === "request"), "no request was sent");
  } finally {
    await Deno.remove(refused.base, { recursive: true });
  }
});

for (const checksum of CHECKSUMS) {
  Deno.test(`get --resume under ${checksum} hashes the held bytes with the session's checksum`, async () => {
    const server = await startServer();
    try {
      const source = join(server.root, "big.bin");
      await writeRandomFile(source, 3 << 20);
      const whole = await Deno.readFile(source);
      await Deno.writeFile(join(server.dir, ".big.bin.fts-partial"), whole.subarray(0, 1_000_000));
      const run = await runCommand(server, [
        "--checksum",
        checksum,
        "--json",
        "get",
        "--resume",
        "big.bin",
      ]);
      assert.equal(run.code, 0, run.stderr);
      const file = JSON.parse(run.stdout).files[0];
      assert.equal(file.resumedFrom, 1_000_000);
      assert.equal(file.checksum, checksum);
      assert.equal(file.digest, await digestOfBytes(checksum, whole));
      assert.deepEqual(await Deno.readFile(join(server.dir, "big.bin")), whole);
    } finally {
      await server.stop();
    }
  });
}

Deno.test("put --resume under XXH3-128 continues what a broken SHA-256 session left", async () => {
  const server = await startServer();
  try {
    const local = join(server.dir, "up.bin");
    const sum = await writeRandomFile(local, 3 << 20);
    const data = await Deno.readFile(local);
    // A client from before negotiation (sha256) breaks off after 1 MB.
    await breakUploadAfter(server, "up.bin", data, 1_000_000);
    const run = await runCommand(server, ["--json", "put", "--resume", "up.bin"]);
    assert.equal(run.code, 0, run.stderr);
    const file = JSON.parse(run.stdout).files[0];
    assert.equal(file.resumedFrom, 1_000_000);
    assert.equal(file.checksum, "xxh3-128");
    assert.equal(file.digest, await xxh3File(local));
    assert.equal(await sha256File(join(server.root, "up.bin")), sum);
  } finally {
    await server.stop();
  }
});
