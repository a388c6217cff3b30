/**
 * Unit tests of io/verified_transfer.ts: sending from an offset, receiving
 * with a failing sink, the held prefix, publishing; real temporary files and
 * in-memory sources, random binary data full of NULs.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { ProtocolError } from "../protocol/errors.ts";
import { type ByteSource, encodeFrame, FrameReader } from "../protocol/frames.ts";
import { concat } from "./_helpers.ts";
import {
  closeWritten,
  hashHeldPrefix,
  NameTakenError,
  placeFile,
  publishFile,
  receiveData,
  sendFileFrom,
  writeToFile,
} from "../io/verified_transfer.ts";
import { createStreamingHash, type StreamingHash } from "../io/checksum.ts";

/** A fresh SHA-256, the checksum these tests compare with an independent implementation. */
function sha256(): Promise<StreamingHash> {
  return createStreamingHash("sha256");
}

/** SHA-256 by WebCrypto: an implementation independent of the one under test. */
async function referenceSha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes.slice()));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** Random bytes with a NUL every 7th byte and at both ends. */
function randomBytes(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let start = 0; start < size; start += 65_536) {
    crypto.getRandomValues(bytes.subarray(start, Math.min(size, start + 65_536)));
  }
  for (let i = 0; i < size; i += 7) bytes[i] = 0;
  if (size > 0) bytes[size - 1] = 0;
  return bytes;
}

/** Reads `bytes` out in pieces of 1 to `maxPiece` bytes, as a TCP connection might. */
function memorySource(bytes: Uint8Array, maxPiece = 5_000): ByteSource {
  let offset = 0;
  return {
    read(buffer: Uint8Array) {
      if (offset === bytes.length || buffer.length === 0) return Promise.resolve(null);
      const n = Math.min(buffer.length, bytes.length - offset, 1 + (offset * 7919) % maxPiece);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** A sink that keeps a copy of every chunk (chunks are only valid until the call settles). */
function collector(): { sink: (chunk: Uint8Array) => Promise<void>; bytes(): Uint8Array } {
  const parts: Uint8Array[] = [];
  return {
    sink: (chunk) => {
      parts.push(chunk.slice());
      return Promise.resolve();
    },
    bytes: () => concat(parts),
  };
}

/** A connection carrying a header frame, `data`, then a trailer frame: data must stay in step. */
function connectionWith(data: Uint8Array): FrameReader {
  const wire = concat([encodeFrame({ type: "data" }), data, encodeFrame({ type: "trailer" })]);
  return new FrameReader(memorySource(wire));
}

async function withTempDir(test: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fts-verified-transfer-" });
  try {
    await test(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

// Small (read in place), several fallback chunks, and pooled 1 MiB buffers.
for (const size of [1_000, 100_000, 5 * 1024 * 1024 + 3]) {
  Deno.test(`sendFileFrom() sends only the bytes past offset 0, mid and size (${size} bytes)`, async () => {
    await withTempDir(async (dir) => {
      const bytes = randomBytes(size);
      const path = join(dir, "source.bin");
      await Deno.writeFile(path, bytes);
      const whole = await referenceSha256(bytes);
      for (const offset of [0, Math.floor(size / 2) + 1, size]) {
        using file = await Deno.open(path);
        const sent = collector();
        const progress: number[] = [];
        let starts = 0;
        const { digest } = await sendFileFrom(file, size, offset, sent.sink, await sha256(), {
          onProgress: (done, total) => {
            assert.equal(total, size);
            progress.push(done);
          },
          onSendStart: () => void starts++,
        });
        assert.deepEqual(digest, { algorithm: "sha256", hex: whole }, `offset ${offset}`);
        assert.deepEqual(sent.bytes(), bytes.subarray(offset), `offset ${offset}`);
        assert.equal(starts, offset === size ? 0 : 1);
        assert.equal(progress.at(-1), size);
        assert.ok(progress.every((done, i) => i === 0 || done > progress[i - 1]!));
      }
    });
  });
}

Deno.test("sendFileFrom() of an empty file hashes nothing and sends nothing", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "empty");
    await Deno.writeFile(path, new Uint8Array());
    using file = await Deno.open(path);
    const sent = collector();
    const { digest } = await sendFileFrom(file, 0, 0, sent.sink, await sha256());
    assert.equal(digest.hex, await referenceSha256(new Uint8Array()));
    assert.equal(sent.bytes().length, 0);
  });
});

Deno.test("sendFileFrom() throws onShrink when the file shrinks mid-send", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "shrinking.bin");
    await Deno.writeFile(path, randomBytes(200_000));
    using file = await Deno.open(path);
    let calls = 0;
    await assert.rejects(
      sendFileFrom(
        file,
        200_000,
        0,
        () => {
          if (calls++ === 0) Deno.truncateSync(path, 40_000);
          return Promise.resolve();
        },
        await sha256(),
        { onShrink: (missing) => new RangeError(`${missing} missing`) },
      ),
      (err: Error) => {
        assert.ok(err instanceof RangeError);
        const missing = Number(err.message.split(" ")[0]);
        assert.ok(missing >= 200_000 - 40_000 - 16_384 && missing <= 160_000, err.message);
        return true;
      },
    );
  });
});

Deno.test("sendFileFrom() with a source that ends early throws the default error", async () => {
  const sent = collector();
  await assert.rejects(
    sendFileFrom(memorySource(randomBytes(10)), 15, 0, sent.sink, await sha256()),
    /file shrank by 5 bytes while being sent/,
  );
  assert.equal(sent.bytes().length, 10);
});

Deno.test("sendFileFrom() refuses an offset past the size", async () => {
  await assert.rejects(
    sendFileFrom(memorySource(new Uint8Array(3)), 3, 4, () => Promise.resolve(), await sha256()),
    RangeError,
  );
});

Deno.test("receiveData() writes exactly the announced bytes and leaves the next frame in step", async () => {
  const data = randomBytes(70_000);
  const reader = connectionWith(data);
  assert.equal((await reader.readMessage())?.type, "data");
  const hash = await sha256();
  const written = collector();
  const progress: number[] = [];
  const { writeFailure } = await receiveData(reader, data.length, written.sink, hash, {
    onProgress: (received, total) => {
      assert.equal(total, data.length);
      progress.push(received);
    },
  });
  assert.equal(writeFailure, null);
  assert.deepEqual(written.bytes(), data);
  assert.equal(hash.hex(), await referenceSha256(data));
  assert.equal(progress.at(-1), data.length);
  assert.equal((await reader.readMessage())?.type, "trailer");
});

Deno.test("receiveData() with a failing sink keeps reading the rest and reports the failure", async () => {
  const data = randomBytes(70_000);
  const reader = connectionWith(data);
  await reader.readMessage();
  const hash = await sha256();
  const diskFull = new Error("no space left on device");
  let writes = 0;
  let writtenBytes = 0;
  const { writeFailure } = await receiveData(reader, data.length, (chunk) => {
    writes++;
    if (writes === 2) return Promise.reject(diskFull);
    writtenBytes += chunk.length;
    return Promise.resolve();
  }, hash);
  assert.equal(writeFailure, diskFull);
  assert.equal(writes, 2, "no write is tried after the first failure");
  assert.ok(writtenBytes < data.length);
  assert.equal(hash.hex(), await referenceSha256(data), "every byte was still hashed");
  assert.equal((await reader.readMessage())?.type, "trailer", "the stream stays in step");
});

Deno.test("receiveData() with no sink hashes the data and drops it", async () => {
  const data = randomBytes(1_000);
  const reader = connectionWith(data);
  await reader.readMessage();
  const hash = await sha256();
  const { writeFailure } = await receiveData(reader, data.length, null, hash);
  assert.equal(writeFailure, null);
  assert.equal(hash.hex(), await referenceSha256(data));
  assert.equal((await reader.readMessage())?.type, "trailer");
});

Deno.test("receiveData() throws a ProtocolError when the connection closes early", async () => {
  const reader = new FrameReader(memorySource(randomBytes(100)));
  await assert.rejects(
    receiveData(reader, 200, () => Promise.resolve(), await sha256()),
    ProtocolError,
  );
});

Deno.test("hashHeldPrefix() then receiveData() of the rest gives the whole file's SHA-256", async () => {
  await withTempDir(async (dir) => {
    const whole = randomBytes(300_000);
    const held = 123_457;
    const path = join(dir, "partial");
    await Deno.writeFile(path, whole.subarray(0, held));
    const expected = await referenceSha256(whole);

    // By path (as the server resumes an upload).
    const byPath = await sha256();
    await hashHeldPrefix(path, held, byPath);
    const rest = connectionWith(whole.subarray(held));
    await rest.readMessage();
    await receiveData(rest, whole.length - held, () => Promise.resolve(), byPath);
    assert.equal(byPath.hex(), expected);

    // By an open file (as the client resumes a download), appending the rest to it.
    using file = await Deno.open(path, { read: true, write: true });
    const byFile = await sha256();
    await hashHeldPrefix(file, held, byFile);
    assert.equal(await file.seek(0, Deno.SeekMode.Current), held);
    const reader = connectionWith(whole.subarray(held));
    await reader.readMessage();
    const { writeFailure } = await receiveData(
      reader,
      whole.length - held,
      writeToFile(file),
      byFile,
    );
    assert.equal(writeFailure, null);
    assert.equal(byFile.hex(), expected);
    assert.deepEqual(await Deno.readFile(path), whole);
  });
});

Deno.test("hashHeldPrefix() of nothing reads nothing, and of more than the file throws", async () => {
  await withTempDir(async (dir) => {
    const hash = await sha256();
    await hashHeldPrefix(join(dir, "absent"), 0, hash);
    assert.equal(hash.hex(), await referenceSha256(new Uint8Array()));
    const path = join(dir, "short");
    await Deno.writeFile(path, new Uint8Array(10));
    await assert.rejects(hashHeldPrefix(path, 11, await sha256()), /shrank by 1 bytes/);
    await assert.rejects(
      hashHeldPrefix(path, 12, await sha256(), {
        onShrink: (missing) => new RangeError(`${missing}`),
      }),
      (err: Error) => err instanceof RangeError && err.message === "2",
    );
  });
});

Deno.test("publishFile() without overwrite refuses an existing name and leaves it untouched", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "taken");
    const tmp = join(dir, "upload.tmp");
    await Deno.writeTextFile(target, "old");
    const before = await Deno.lstat(target);
    const file = await Deno.open(tmp, { write: true, createNew: true });
    await file.write(new TextEncoder().encode("new"));
    await assert.rejects(
      publishFile(file, tmp, target, { overwrite: false, durable: true }),
      (err: unknown) => err instanceof NameTakenError && err.path === target,
    );
    assert.equal(await Deno.readTextFile(target), "old");
    assert.equal((await Deno.lstat(target)).ino, before.ino);
    assert.equal(await Deno.readTextFile(tmp), "new", "the temporary file is the caller's");
    assert.throws(() => file.close(), Deno.errors.BadResource, "publishFile closed the file");
  });
});

Deno.test("publishFile() with overwrite replaces the file atomically, with its mtime", async () => {
  await withTempDir(async (dir) => {
    const target = join(dir, "report");
    const tmp = join(dir, "report.tmp");
    await Deno.writeTextFile(target, "old contents");
    using reading = await Deno.open(target);
    const file = await Deno.open(tmp, { write: true, createNew: true });
    await file.write(new TextEncoder().encode("new"));
    await publishFile(file, tmp, target, { overwrite: true, mtime: 1_000_000, durable: true });
    assert.equal(await Deno.readTextFile(target), "new");
    assert.equal((await Deno.stat(target)).mtime?.getTime(), 1_000_000);
    await assert.rejects(Deno.lstat(tmp), Deno.errors.NotFound);
    // The name moved to the new file in one step; the old file was never written into.
    assert.equal(
      new TextDecoder().decode(await new Response(reading.readable).bytes()),
      "old contents",
    );
  });
});

Deno.test("publishFile() without overwrite takes a free name and removes the temporary one", async () => {
  await withTempDir(async (dir) => {
    const file = await Deno.open(join(dir, "a.tmp"), { write: true, createNew: true });
    await file.write(new Uint8Array([0]));
    await publishFile(file, join(dir, "a.tmp"), join(dir, "a"), {
      overwrite: false,
      durable: false,
    });
    assert.deepEqual(await Deno.readFile(join(dir, "a")), new Uint8Array([0]));
    await assert.rejects(Deno.lstat(join(dir, "a.tmp")), Deno.errors.NotFound);
  });
});

Deno.test("closeWritten() returns the file's identity and closes it even when it fails", async () => {
  await withTempDir(async (dir) => {
    const path = join(dir, "f");
    const file = await Deno.open(path, { write: true, createNew: true });
    const written = await closeWritten(file, { durable: false });
    assert.equal(written.ino, (await Deno.lstat(path)).ino);
    assert.throws(() => file.close(), Deno.errors.BadResource);
    const failing = await Deno.open(path, { read: true });
    failing.utimeSync = () => {
      throw new Error("utime failed");
    };
    await assert.rejects(closeWritten(failing, { mtime: 0, durable: false }), /utime failed/);
    assert.throws(() => failing.close(), Deno.errors.BadResource);
  });
});

for (const overwrite of [true, false]) {
  Deno.test(`placeFile() verify can undo the move (overwrite ${overwrite})`, async () => {
    await withTempDir(async (dir) => {
      const tmp = join(dir, "x.tmp");
      const target = join(dir, "x");
      await Deno.writeTextFile(tmp, "data");
      const placed = await Deno.lstat(tmp);
      assert.throws(
        () =>
          placeFile(tmp, target, {
            overwrite,
            verify: (undo) => {
              // Called with the name taken: it leads to the file written.
              assert.equal(Deno.lstatSync(target).ino, placed.ino);
              undo();
              throw new Error("swapped");
            },
          }),
        /swapped/,
      );
      await assert.rejects(Deno.lstat(target), Deno.errors.NotFound);
      assert.equal(
        await Deno.readTextFile(tmp),
        "data",
        "the temporary file is left for the caller",
      );
    });
  });
}

for (const size of [0, 1, 5 * 1024 * 1024 + 17]) {
  Deno.test(`a ${size}-byte random binary file round-trips byte-exact, resumed or not`, async () => {
    await withTempDir(async (dir) => {
      const bytes = size === 1 ? new Uint8Array([0]) : randomBytes(size);
      const source = join(dir, "source.bin");
      await Deno.writeFile(source, bytes);
      for (const offset of [0, Math.floor(size / 3)]) {
        // The receiver already holds the first `offset` bytes.
        const tmp = join(dir, "copy.tmp");
        await Deno.writeFile(tmp, bytes.subarray(0, offset));
        using input = await Deno.open(source);
        const wire = collector();
        const sent = await sendFileFrom(input, size, offset, wire.sink, await sha256());

        const reader = connectionWith(wire.bytes());
        await reader.readMessage();
        const file = await Deno.open(tmp, { read: true, write: true });
        const hash = await sha256();
        await hashHeldPrefix(file, offset, hash);
        const { writeFailure } = await receiveData(
          reader,
          size - offset,
          writeToFile(file),
          hash,
        );
        assert.equal(writeFailure, null);
        assert.equal(hash.hex(), sent.digest.hex);
        assert.equal(sent.digest.hex, await referenceSha256(bytes));
        assert.equal((await reader.readMessage())?.type, "trailer");
        await publishFile(file, tmp, join(dir, "copy.bin"), { overwrite: true, durable: true });
        assert.deepEqual(await Deno.readFile(join(dir, "copy.bin")), bytes);
      }
    });
  });
}

Deno.test("a sha256 StreamingHash gives the same digest on every call and refuses bytes after it", async () => {
  const hash = await sha256();
  hash.update(new Uint8Array([0, 0, 0]));
  const hex = hash.hex();
  assert.equal(hex, await referenceSha256(new Uint8Array(3)));
  assert.equal(hash.hex(), hex);
  assert.throws(() => hash.update(new Uint8Array(1)), /already finished/);
});
