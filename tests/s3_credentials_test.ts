/**
 * server/s3/credentials.ts and config.ts: keys from the environment, else from
 * a real shared credentials file in a temporary directory (profiles,
 * comments, a session token), and the refusals that name what is missing;
 * the endpoint and region from arguments or the environment.
 */

import assert from "node:assert/strict";
import { rejectionOf } from "./_rejection.ts";
import { join } from "node:path";
import { loadS3Credentials, S3CredentialsError } from "../server/s3/credentials.ts";
import { DEFAULT_S3_REGION, s3Endpoint } from "../server/s3/config.ts";

/** A shared credentials file with two profiles, comments and odd spacing. */
const CREDENTIALS_FILE = [
  "# written by aws configure",
  "[default]",
  "aws_access_key_id = DEFAULTKEY",
  "aws_secret_access_key=default/secret+key",
  "",
  "; a second profile",
  "[ ceph ]",
  "  AWS_ACCESS_KEY_ID =  CEPHKEY  ",
  "aws_secret_access_key = ceph=secret",
  "aws_session_token = session-token",
  "[half]",
  "aws_access_key_id = HALFKEY",
  "",
].join("\r\n");

Deno.test("loadS3Credentials() takes the environment's keys before the file's", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-s3-credentials-" });
  try {
    await Deno.mkdir(join(dir, ".aws"));
    await Deno.writeTextFile(join(dir, ".aws", "credentials"), CREDENTIALS_FILE);
    assert.deepEqual(
      await loadS3Credentials({
        HOME: dir,
        AWS_ACCESS_KEY_ID: "ENVKEY",
        AWS_SECRET_ACCESS_KEY: "envsecret",
        AWS_SESSION_TOKEN: "envtoken",
      }),
      { accessKeyId: "ENVKEY", secretAccessKey: "envsecret", sessionToken: "envtoken" },
    );
    const half = await rejectionOf(
      loadS3Credentials({ HOME: dir, AWS_ACCESS_KEY_ID: "K" }),
      S3CredentialsError,
    );
    assert.match(half.message, /must be set together/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadS3Credentials() reads ~/.aws/credentials under AWS_PROFILE, default 'default'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fts-s3-credentials-" });
  try {
    await Deno.mkdir(join(dir, ".aws"));
    const file = join(dir, ".aws", "credentials");
    await Deno.writeTextFile(file, CREDENTIALS_FILE);
    assert.deepEqual(await loadS3Credentials({ HOME: dir }), {
      accessKeyId: "DEFAULTKEY",
      secretAccessKey: "default/secret+key",
    });
    assert.deepEqual(await loadS3Credentials({ HOME: dir, AWS_PROFILE: "ceph" }), {
      accessKeyId: "CEPHKEY",
      secretAccessKey: "ceph=secret",
      sessionToken: "session-token",
    });
    const half = await rejectionOf(
      loadS3Credentials({ HOME: dir, AWS_PROFILE: "half" }),
      S3CredentialsError,
    );
    assert.match(
      half.message,
      /profile "half" in .* has no aws_access_key_id and aws_secret_access_key/,
    );
    const none = await rejectionOf(
      loadS3Credentials({ HOME: dir, AWS_PROFILE: "nope" }),
      S3CredentialsError,
    );
    assert.match(none.message, /profile "nope"/);
    const elsewhere = join(dir, "other-file");
    await Deno.writeTextFile(
      elsewhere,
      "[default]\naws_access_key_id=O\naws_secret_access_key=S\n",
    );
    assert.deepEqual(
      await loadS3Credentials({ HOME: dir, AWS_SHARED_CREDENTIALS_FILE: elsewhere }),
      { accessKeyId: "O", secretAccessKey: "S" },
    );
    const missing = await rejectionOf(
      loadS3Credentials({ HOME: join(dir, "no-home") }),
      S3CredentialsError,
    );
    assert.match(
      missing.message,
      /AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and .* does not exist/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("s3Endpoint() takes the endpoint and region given, else the environment's", () => {
  const env = { AWS_ENDPOINT_URL: "https://s3.example.net", AWS_REGION: "eu-west-3" };
  assert.deepEqual(
    { ...s3Endpoint({}, env), endpoint: s3Endpoint({}, env).endpoint.href },
    { endpoint: "https://s3.example.net/", region: "eu-west-3" },
  );
  const given = s3Endpoint({ endpoint: "http://127.0.0.1:7480", region: "r1" }, env);
  assert.equal(given.endpoint.host, "127.0.0.1:7480");
  assert.equal(given.region, "r1");
  assert.equal(s3Endpoint({}, { AWS_ENDPOINT_URL: "http://h" }).region, DEFAULT_S3_REGION);
  for (
    const [endpoint, message] of [
      [undefined, /no S3 endpoint/],
      ["not a url", /not a URL/],
      ["ftp://h", /http:\/\/ or https:\/\//],
      ["http://user:secret@h", /must not carry credentials/],
      ["http://h/bucket", /no path or query/],
      ["http://h?x=1", /no path or query/],
    ] as const
  ) {
    assert.throws(() => s3Endpoint({ endpoint }, {}), message, String(endpoint));
  }
  assert.throws(() => s3Endpoint({ endpoint: "http://h", region: "EU West" }, {}), /region/);
});
