/**
 * server/s3/signing.ts against the worked examples of AWS's SigV4 documentation
 * for S3 ("Examples: Signature Calculations", header-based authentication):
 * the same request, keys and time give the same signature, byte for byte.
 * The canonical URI encoding (where hand-written signers break) is checked
 * case by case against RFC 3986's unreserved set.
 */

import assert from "node:assert/strict";
import { canonicalQuery, sha256Hex, signRequest, uriEncode } from "../server/s3/signing.ts";

/** The documentation's example keys (not real credentials). */
const EXAMPLE_CREDENTIALS = {
  accessKeyId: "AKIAIOSFODNN7EXAMPLE",
  secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
};

/** The documentation's examples are all signed at this time. */
const EXAMPLE_TIME = new Date("2013-05-24T00:00:00Z");

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** The signature and signed headers an Authorization header names. */
function signatureOf(headers: Record<string, string>): { signed: string; signature: string } {
  const match = /SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/.exec(headers["authorization"]!);
  assert.ok(match, headers["authorization"]);
  return { signed: match[1]!, signature: match[2]! };
}

Deno.test("signRequest() gives AWS's example signature for a ranged GET Object", () => {
  const headers = signRequest(
    {
      method: "GET",
      host: "examplebucket.s3.amazonaws.com",
      canonicalPath: "/test.txt",
      query: {},
      headers: { Range: "bytes=0-9" },
      payloadHash: EMPTY_SHA256,
    },
    EXAMPLE_CREDENTIALS,
    "us-east-1",
    EXAMPLE_TIME,
  );
  assert.deepEqual(signatureOf(headers), {
    signed: "host;range;x-amz-content-sha256;x-amz-date",
    signature: "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
  });
  assert.ok(
    headers["authorization"]!.startsWith(
      "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, ",
    ),
  );
  assert.equal(headers["x-amz-date"], "20130524T000000Z");
});

Deno.test("signRequest() gives AWS's example signature for a PUT Object of a key with '$'", () => {
  const body = new TextEncoder().encode("Welcome to Amazon S3.");
  const headers = signRequest(
    {
      method: "PUT",
      host: "examplebucket.s3.amazonaws.com",
      canonicalPath: `/${uriEncode("test$file.text", true)}`,
      query: {},
      headers: {
        Date: "Fri, 24 May 2013 00:00:00 GMT",
        "x-amz-storage-class": "REDUCED_REDUNDANCY",
      },
      payloadHash: sha256Hex(body),
    },
    EXAMPLE_CREDENTIALS,
    "us-east-1",
    EXAMPLE_TIME,
  );
  assert.deepEqual(signatureOf(headers), {
    signed: "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
    signature: "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
  });
});

Deno.test("signRequest() gives AWS's example signatures for sub-resource and listing queries", () => {
  const sign = (query: Record<string, string>) =>
    signatureOf(signRequest(
      {
        method: "GET",
        host: "examplebucket.s3.amazonaws.com",
        canonicalPath: "/",
        query,
        headers: {},
        payloadHash: EMPTY_SHA256,
      },
      EXAMPLE_CREDENTIALS,
      "us-east-1",
      EXAMPLE_TIME,
    )).signature;
  assert.equal(
    sign({ lifecycle: "" }),
    "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
  );
  assert.equal(
    sign({ prefix: "J", "max-keys": "2" }),
    "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
  );
});

Deno.test("signRequest() signs a session token and trims header values as it sends them", () => {
  const headers = signRequest(
    {
      method: "GET",
      host: "127.0.0.1:7480",
      canonicalPath: "/b/k",
      query: {},
      headers: { "X-Amz-Meta-Note": "  two   spaces " },
      payloadHash: EMPTY_SHA256,
    },
    { ...EXAMPLE_CREDENTIALS, sessionToken: "token/with+chars=" },
    "eu-west-1",
    EXAMPLE_TIME,
  );
  assert.equal(headers["x-amz-security-token"], "token/with+chars=");
  assert.equal(headers["x-amz-meta-note"], "two spaces");
  assert.equal(
    signatureOf(headers).signed,
    "host;x-amz-content-sha256;x-amz-date;x-amz-meta-note;x-amz-security-token",
  );
  assert.match(headers["authorization"]!, /\/20130524\/eu-west-1\/s3\/aws4_request, /);
});

Deno.test("uriEncode() leaves only RFC 3986 unreserved characters (and a key's '/') as they are", () => {
  const cases: [string, boolean, string][] = [
    ["AZaz09-_.~", false, "AZaz09-_.~"],
    ["a b", true, "a%20b"],
    ["a+b", true, "a%2Bb"],
    ["!'()*", true, "%21%27%28%29%2A"],
    ["?#&=;,:@$", true, "%3F%23%26%3D%3B%2C%3A%40%24"],
    ["%20", true, "%2520"],
    ["dir/file", true, "dir/file"],
    ["dir/file", false, "dir%2Ffile"],
    ["ü", true, "%C3%BC"],
    ["日", true, "%E6%97%A5"],
    ["😀", true, "%F0%9F%98%80"],
    ["\u0000\u007f", true, "%00%7F"],
  ];
  for (const [text, keepSlash, encoded] of cases) {
    assert.equal(uriEncode(text, keepSlash), encoded, JSON.stringify(text));
  }
});

Deno.test("canonicalQuery() sorts by encoded name, then value, and encodes both", () => {
  assert.equal(
    canonicalQuery({ uploads: "", prefix: "a b/ü", "list-type": "2", Zeta: "1" }),
    "Zeta=1&list-type=2&prefix=a%20b%2F%C3%BC&uploads=",
  );
});
