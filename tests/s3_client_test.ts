/**
 * server/s3's client against a real S3 server: Ceph's RADOS Gateway, one
 * node started for this file (tests/_ceph.ts). Every operation the gateway
 * needs, the conditional create and its race, ranges, multipart, listings
 * with a delimiter, the refusals (wrong secret, unknown key, missing bucket),
 * and keys that SigV4's canonical encoding has to get right. Without Ceph (or
 * root) it skips with a line saying why; in CI (CI=true, as `.ci/run` sets it,
 * having installed Ceph) it fails instead.
 */

import assert from "node:assert/strict";
import { rejectionOf } from "./_rejection.ts";
import { cephMissing, startCeph } from "./_ceph.ts";
import { concat, randomBytes, readAll } from "./_helpers.ts";
import { MAX_S3_KEY_BYTES, S3Client } from "../server/s3/client.ts";
import { S3Error } from "../server/s3/error.ts";

/** S3's smallest part but the last. */
const MIN_PART_BYTES = 5 * 1024 * 1024;

/** Rounds of two conditional PUTs racing for one key. */
const RACE_ROUNDS = 20;

/** Pages a listing test may read before it is wrong (bounds every listing loop). */
const MAX_PAGES = 100;

/**
 * Keys that hand-written signers get wrong: spaces, `+` (form encoding's
 * space), characters `encodeURIComponent` leaves alone (`!'()*`), reserved
 * ones (`?#&=;,:@$`), `%` itself, `~`, unicode in two, three and four UTF-8
 * bytes, a trailing space, runs of spaces, an empty segment.
 */
const AWKWARD_KEYS = [
  "with space.txt",
  "a+b plus.txt",
  "marks !'()*.txt",
  "reserved ?#&=;,:@$.txt",
  "percent %20 %zz.txt",
  "tilde~under_score-dash.txt",
  "dir with space/ünïcødé ñ.txt",
  "日本語/ファイル.txt",
  "emoji 😀 🚀.txt",
  "trailing space ",
  "two  spaces   three",
  "empty//segment",
  'quote"back\\slash<gt>&amp;',
];

const missing = cephMissing();
if (missing !== null && Deno.env.get("CI") !== "true") {
  console.log(`s3_client_test: skipped: ${missing}`);
}

Deno.test({
  name: "S3Client against a real Ceph RADOS Gateway",
  ignore: missing !== null && Deno.env.get("CI") !== "true",
  fn: async (t) => {
    assert.equal(missing, null, `Ceph is needed in CI: ${missing}`);
    await using ceph = await startCeph();
    const credentials = { accessKeyId: ceph.accessKeyId, secretAccessKey: ceph.secretAccessKey };
    const endpoint = new URL(ceph.endpoint);
    const region = "us-east-1";
    const s3 = new S3Client({ endpoint, region, credentials, bucket: "fts-test" });
    await s3.createBucket();

    await t.step("headBucket() succeeds on the bucket", async () => {
      await s3.headBucket();
    });

    await t.step("a missing bucket is NoSuchBucket, from HeadBucket and from a PUT", async () => {
      const other = new S3Client({ endpoint, region, credentials, bucket: "no-such-bucket" });
      for (
        const err of [
          await rejectionOf(other.headBucket(), S3Error),
          await rejectionOf(other.putObject("k", new Uint8Array(1)), S3Error),
        ]
      ) {
        assert.equal(err.code, "NoSuchBucket");
        assert.equal(err.status, 404);
      }
    });

    await t.step(
      "a wrong secret key is SignatureDoesNotMatch; an unknown key InvalidAccessKeyId",
      async () => {
        const wrongSecret = new S3Client({
          endpoint,
          region,
          credentials: { ...credentials, secretAccessKey: credentials.secretAccessKey + "x" },
          bucket: "fts-test",
        });
        const unknownKey = new S3Client({
          endpoint,
          region,
          credentials: { ...credentials, accessKeyId: "NOSUCHACCESSKEY00000" },
          bucket: "fts-test",
        });
        for (
          const [client, code] of [[wrongSecret, "SignatureDoesNotMatch"], [
            unknownKey,
            "InvalidAccessKeyId",
          ]] as const
        ) {
          for (
            const err of [
              await rejectionOf(client.headBucket(), S3Error),
              await rejectionOf(client.putObject("refused", new Uint8Array(1)), S3Error),
              await rejectionOf(client.getObject("refused"), S3Error),
            ]
          ) {
            assert.equal(err.code, code);
            assert.equal(err.status, 403);
          }
        }
        assert.equal((await rejectionOf(s3.headObject("refused"), S3Error)).code, "NoSuchKey");
      },
    );

    await t.step(
      "putObject() then getObject() and headObject(): bytes, length, metadata",
      async () => {
        const bytes = randomBytes(300_001);
        bytes[0] = 0;
        bytes[bytes.length - 1] = 0;
        const etag = await s3.putObject("whole.bin", bytes, {
          metadata: { mtime: "1700000000123", "fts-sha256": "ab" },
        });
        const got = await s3.getObject("whole.bin");
        assert.deepEqual(await readAll(got.body), bytes);
        assert.equal(got.contentLength, bytes.length);
        assert.equal(got.objectSize, bytes.length);
        assert.equal(got.etag, etag);
        const head = await s3.headObject("whole.bin");
        assert.equal(head.contentLength, bytes.length);
        assert.deepEqual(head.metadata, { mtime: "1700000000123", "fts-sha256": "ab" });
        const empty = await s3.putObject("empty.bin", new Uint8Array());
        const gotEmpty = await s3.getObject("empty.bin");
        assert.deepEqual(await readAll(gotEmpty.body), new Uint8Array());
        assert.equal((await s3.headObject("empty.bin")).etag, empty);
      },
    );

    await t.step(
      "If-None-Match: * on an existing key is PreconditionFailed (412), the object kept",
      async () => {
        const first = new TextEncoder().encode("first");
        await s3.putObject("once.txt", first, { ifNoneMatch: true });
        const err = await rejectionOf(
          s3.putObject("once.txt", new TextEncoder().encode("second"), { ifNoneMatch: true }),
          S3Error,
        );
        assert.equal(err.code, "PreconditionFailed");
        assert.equal(err.status, 412);
        assert.deepEqual(await readAll((await s3.getObject("once.txt")).body), first);
      },
    );

    await t.step(
      "two conditional PUTs of one key at once: exactly one wins, its bytes stored",
      async () => {
        for (let round = 0; round < RACE_ROUNDS; round++) {
          const key = `race/${round}`;
          const bodies = [randomBytes(64 * 1024), randomBytes(64 * 1024)];
          const results = await Promise.allSettled(
            bodies.map((body) => s3.putObject(key, body, { ifNoneMatch: true })),
          );
          const won = results.flatMap((result, i) => result.status === "fulfilled" ? [i] : []);
          assert.equal(won.length, 1, `round ${round}: ${won.length} PUTs won`);
          const lost = results[1 - won[0]!]!;
          assert.equal(lost.status, "rejected");
          assert.ok(lost.reason instanceof S3Error, String(lost.reason));
          assert.equal(lost.reason.code, "PreconditionFailed", `round ${round}`);
          assert.deepEqual(await readAll((await s3.getObject(key)).body), bodies[won[0]!]);
        }
      },
    );

    await t.step(
      "getObject() with a range returns exactly those bytes; past the end is InvalidRange",
      async () => {
        const bytes = randomBytes(1024 * 1024 + 5);
        await s3.putObject("ranged.bin", bytes);
        const ranges = [
          { offset: 0, length: 1 },
          { offset: 1, length: 1000 },
          { offset: 123_457, length: 500_000 },
          { offset: 700_001 },
          { offset: bytes.length - 1 },
          { offset: bytes.length - 10, length: 100 },
        ];
        for (const range of ranges) {
          const got = await s3.getObject("ranged.bin", range);
          const end = range.length === undefined
            ? bytes.length
            : Math.min(bytes.length, range.offset + range.length);
          assert.deepEqual(
            await readAll(got.body),
            bytes.slice(range.offset, end),
            JSON.stringify(range),
          );
          assert.equal(got.contentLength, end - range.offset);
          assert.equal(got.objectSize, bytes.length);
        }
        const err = await rejectionOf(
          s3.getObject("ranged.bin", { offset: bytes.length }),
          S3Error,
        );
        assert.equal(err.code, "InvalidRange");
        assert.equal(err.status, 416);
      },
    );

    await t.step("deleteObject() removes a key; the key is then NoSuchKey", async () => {
      await s3.putObject("doomed.txt", new TextEncoder().encode("x"));
      await s3.deleteObject("doomed.txt");
      assert.equal((await rejectionOf(s3.headObject("doomed.txt"), S3Error)).code, "NoSuchKey");
      const err = await rejectionOf(s3.getObject("doomed.txt"), S3Error);
      assert.equal(err.code, "NoSuchKey");
      assert.equal(err.status, 404);
      await s3.deleteObject("doomed.txt");
    });

    await t.step("copyObject() copies bytes and metadata, or replaces the metadata", async () => {
      const bytes = randomBytes(200_000);
      await s3.putObject("copy-source.bin", bytes, { metadata: { mtime: "1" } });
      await s3.copyObject("copy-source.bin", "copy-kept.bin");
      await s3.copyObject("copy-source.bin", "copy-replaced.bin", { mtime: "2" });
      assert.deepEqual(await readAll((await s3.getObject("copy-kept.bin")).body), bytes);
      assert.deepEqual((await s3.headObject("copy-kept.bin")).metadata, { mtime: "1" });
      assert.deepEqual((await s3.headObject("copy-replaced.bin")).metadata, { mtime: "2" });
      assert.equal(
        (await rejectionOf(s3.copyObject("no-such-source", "copy-none"), S3Error)).code,
        "NoSuchKey",
      );
    });

    await t.step(
      "listObjectsV2() with delimiter '/' gives a directory's objects and sub-prefixes",
      async () => {
        const keys = [
          "tree/a",
          "tree/b",
          "tree/sub/c",
          "tree/sub/deeper/d",
          "tree/other/e",
          "tree/top",
        ];
        for (const key of keys) await s3.putObject(key, new TextEncoder().encode(key));
        const top = await s3.listObjectsV2({ prefix: "tree/", delimiter: "/" });
        assert.deepEqual(top.objects.map((object) => object.key), ["tree/a", "tree/b", "tree/top"]);
        assert.deepEqual(top.commonPrefixes, ["tree/other/", "tree/sub/"]);
        assert.equal(top.objects[0]!.size, "tree/a".length);
        assert.equal(top.nextContinuationToken, undefined);
        const sub = await s3.listObjectsV2({ prefix: "tree/sub/", delimiter: "/" });
        assert.deepEqual(sub.objects.map((object) => object.key), ["tree/sub/c"]);
        assert.deepEqual(sub.commonPrefixes, ["tree/sub/deeper/"]);
        const all = await s3.listObjectsV2({ prefix: "tree/" });
        assert.deepEqual(all.objects.map((object) => object.key), [...keys].sort());
        assert.deepEqual(all.commonPrefixes, []);
      },
    );

    await t.step("listObjectsV2() pages with continuation tokens, each key once", async () => {
      const keys = Array.from({ length: 7 }, (_, i) => `paged/${i}`);
      for (const key of keys) await s3.putObject(key, new Uint8Array([1]));
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        assert.ok(++pages <= MAX_PAGES, "listing did not end");
        const page = await s3.listObjectsV2({
          prefix: "paged/",
          maxKeys: 2,
          continuationToken: token,
        });
        assert.ok(page.objects.length <= 2);
        seen.push(...page.objects.map((object) => object.key));
        token = page.nextContinuationToken;
      } while (token !== undefined);
      assert.deepEqual(seen, keys);
      assert.equal(pages, 4);
    });

    await t.step(
      "a 3-part multipart upload: invisible until complete, ListParts, then whole",
      async () => {
        const parts = [
          randomBytes(MIN_PART_BYTES),
          randomBytes(MIN_PART_BYTES),
          randomBytes(1024 * 1024 + 3),
        ];
        const key = "multi/whole.bin";
        const uploadId = await s3.createMultipartUpload(key, { metadata: { mtime: "42" } });
        const etags: string[] = [];
        for (const [i, part] of parts.entries()) {
          etags.push(await s3.uploadPart(key, uploadId, i + 1, part));
        }
        assert.equal((await rejectionOf(s3.headObject(key), S3Error)).code, "NoSuchKey");
        const listed = await s3.listParts(key, uploadId);
        assert.deepEqual(
          listed.parts,
          parts.map((part, i) => ({ partNumber: i + 1, etag: etags[i], size: part.length })),
        );
        assert.equal(listed.nextPartNumberMarker, undefined);
        const page = await s3.listParts(key, uploadId, 1);
        assert.deepEqual(page.parts.map((part) => part.partNumber), [2, 3]);
        const uploads = await s3.listMultipartUploads({ prefix: "multi/" });
        assert.deepEqual(uploads.uploads.map((upload) => [upload.key, upload.uploadId]), [[
          key,
          uploadId,
        ]]);
        await s3.completeMultipartUpload(
          key,
          uploadId,
          etags.map((etag, i) => ({ partNumber: i + 1, etag })),
        );
        const got = await s3.getObject(key);
        assert.deepEqual(await readAll(got.body), concat(parts));
        assert.deepEqual(got.metadata, { mtime: "42" });
        assert.equal(
          (await rejectionOf(s3.listParts(key, uploadId), S3Error)).code,
          "NoSuchUpload",
        );
        assert.deepEqual((await s3.listMultipartUploads({ prefix: "multi/" })).uploads, []);
      },
    );

    await t.step(
      "abortMultipartUpload() removes the upload and its parts; nothing is published",
      async () => {
        const key = "multi/aborted.bin";
        const uploadId = await s3.createMultipartUpload(key);
        await s3.uploadPart(key, uploadId, 1, randomBytes(MIN_PART_BYTES));
        await s3.abortMultipartUpload(key, uploadId);
        assert.equal(
          (await rejectionOf(s3.listParts(key, uploadId), S3Error)).code,
          "NoSuchUpload",
        );
        assert.deepEqual((await s3.listMultipartUploads({ prefix: "multi/" })).uploads, []);
        assert.equal((await rejectionOf(s3.headObject(key), S3Error)).code, "NoSuchKey");
        const err = await rejectionOf(s3.uploadPart(key, uploadId, 2, new Uint8Array(1)), S3Error);
        assert.equal(err.code, "NoSuchUpload");
      },
    );

    await t.step("completing with a part below 5 MiB but the last is EntityTooSmall", async () => {
      const key = "multi/small.bin";
      const uploadId = await s3.createMultipartUpload(key);
      const etags = [
        await s3.uploadPart(key, uploadId, 1, randomBytes(1024)),
        await s3.uploadPart(key, uploadId, 2, randomBytes(1024)),
      ];
      const err = await rejectionOf(
        s3.completeMultipartUpload(
          key,
          uploadId,
          etags.map((etag, i) => ({ partNumber: i + 1, etag })),
        ),
        S3Error,
      );
      assert.equal(err.code, "EntityTooSmall");
      await s3.abortMultipartUpload(key, uploadId);
    });

    await t.step(
      "keys with spaces, unicode and reserved characters round-trip through every operation",
      async () => {
        for (const name of AWKWARD_KEYS) {
          const key = `awkward/${name}`;
          const bytes = new TextEncoder().encode(`bytes of ${name}`);
          await s3.putObject(key, bytes, { ifNoneMatch: true });
          assert.deepEqual(await readAll((await s3.getObject(key)).body), bytes, key);
          assert.deepEqual(
            await readAll((await s3.getObject(key, { offset: 3 })).body),
            bytes.slice(3),
            key,
          );
          assert.equal((await s3.headObject(key)).contentLength, bytes.length, key);
          await s3.copyObject(key, `${key}.copy`);
          assert.deepEqual(await readAll((await s3.getObject(`${key}.copy`)).body), bytes, key);
          const listed = await s3.listObjectsV2({ prefix: key });
          assert.deepEqual(
            listed.objects.map((object) => object.key),
            [key, `${key}.copy`].sort(),
            key,
          );
          const uploadId = await s3.createMultipartUpload(`${key}.multi`);
          const etag = await s3.uploadPart(`${key}.multi`, uploadId, 1, bytes);
          assert.deepEqual(
            (await s3.listParts(`${key}.multi`, uploadId)).parts.map((part) => part.etag),
            [etag],
            key,
          );
          assert.deepEqual(
            (await s3.listMultipartUploads({ prefix: key })).uploads.map((upload) => upload.key),
            [`${key}.multi`],
            key,
          );
          await s3.completeMultipartUpload(`${key}.multi`, uploadId, [{ partNumber: 1, etag }]);
          assert.deepEqual(await readAll((await s3.getObject(`${key}.multi`)).body), bytes, key);
          for (const suffix of ["", ".copy", ".multi"]) await s3.deleteObject(key + suffix);
          assert.equal((await rejectionOf(s3.headObject(key), S3Error)).code, "NoSuchKey", key);
        }
        const listed = await s3.listObjectsV2({ prefix: "awkward/", delimiter: "/" });
        assert.deepEqual(listed.objects, []);
        assert.deepEqual(listed.commonPrefixes, []);
      },
    );

    await t.step("a prefix with awkward characters lists with its delimiter", async () => {
      const keys = ["odd dir+/ü x/1", "odd dir+/ü x/2", "odd dir+/plain", "odd dir+/日本/3"];
      for (const key of keys) await s3.putObject(key, new Uint8Array([2]));
      const listed = await s3.listObjectsV2({ prefix: "odd dir+/", delimiter: "/" });
      assert.deepEqual(listed.objects.map((object) => object.key), ["odd dir+/plain"]);
      assert.deepEqual(listed.commonPrefixes, ["odd dir+/ü x/", "odd dir+/日本/"]);
    });
  },
});

Deno.test("S3Client refuses keys a URL cannot carry before sending anything", async () => {
  // A port nothing listens on: had a request been sent, it would fail as RequestFailed instead.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const s3 = new S3Client({
    endpoint: new URL(`http://127.0.0.1:${port}`),
    region: "us-east-1",
    credentials: { accessKeyId: "AK", secretAccessKey: "SK" },
    bucket: "b",
  });
  for (const key of ["", ".", "..", "a/./b", "a/../b", "../up", "x".repeat(MAX_S3_KEY_BYTES + 1)]) {
    await assert.rejects(s3.putObject(key, new Uint8Array(1)), TypeError, JSON.stringify(key));
  }
  await assert.rejects(s3.copyObject("a/..", "b"), TypeError);
  await assert.rejects(s3.uploadPart("k", "id", 0, new Uint8Array(1)), RangeError);
  await assert.rejects(s3.uploadPart("k", "id", 10_001, new Uint8Array(1)), RangeError);
  await assert.rejects(s3.getObject("k", { offset: -1 }), RangeError);
  await assert.rejects(s3.getObject("k", { offset: 0, length: 0 }), RangeError);
  await assert.rejects(
    s3.putObject("k", new Uint8Array(1), { metadata: { Upper: "x" } }),
    TypeError,
  );
  await assert.rejects(s3.putObject("k", new Uint8Array(1), { metadata: { m: "ü" } }), TypeError);
  const unreachable = await rejectionOf(s3.putObject("a/.../b", new Uint8Array(1)), S3Error);
  assert.equal(unreachable.code, "RequestFailed");
  assert.equal(unreachable.status, 0);
});
