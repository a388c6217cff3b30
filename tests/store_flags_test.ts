/**
 * `fts serve --store`'s flags: what they parse to, and the usage errors
 * (exit 2, one stable line) for every way of getting them wrong, before
 * anything is asked of a bucket.
 */

import assert from "node:assert/strict";
import { UsageError } from "../cli/usage_error.ts";
import { parseServeArgs } from "../server/config.ts";
import { endpointGrant, sandboxPermissions } from "../server/sandbox.ts";

/** An environment with these variables only. */
function envOf(vars: Record<string, string> = {}) {
  return { get: (name: string) => vars[name] };
}

const ENDPOINT = { AWS_ENDPOINT_URL: "http://127.0.0.1:7480" };

Deno.test("parseServeArgs() reads --store s3://BUCKET/PREFIX with the endpoint and region", async () => {
  const setup = await parseServeArgs(
    ["--no-auth", "--store", "s3://files/team/a/", "--s3-region", "eu-west-1"],
    envOf(ENDPOINT),
  );
  assert.ok(setup !== "help");
  assert.equal(setup.config.root, "s3://files/team/a");
  assert.deepEqual(setup.config.store, {
    name: "s3://files/team/a",
    bucket: "files",
    prefix: "team/a",
    endpoint: "http://127.0.0.1:7480",
    region: "eu-west-1",
    credentials: null,
    counts: null,
  });
  const whole = await parseServeArgs(
    ["--no-auth", "--store", "s3://files", "--s3-endpoint", "https://s3.example:9000/"],
    envOf({ AWS_REGION: "ap-south-1" }),
  );
  assert.ok(whole !== "help");
  assert.equal(whole.config.store?.prefix, "");
  assert.equal(whole.config.store?.endpoint, "https://s3.example:9000");
  assert.equal(whole.config.store?.region, "ap-south-1");
  const local = await parseServeArgs(["--no-auth"], envOf(ENDPOINT));
  assert.ok(local !== "help");
  assert.equal(local.config.store, null);
  assert.match(local.config.root, /\/uploads$/);
});

Deno.test("parseServeArgs() refuses a wrong --store as a usage error saying what is wrong", async () => {
  const refused: [string[], Record<string, string>, RegExp][] = [
    [["--store", "s3://files", "--root", "x"], ENDPOINT, /give --root or --store, not both/],
    [["--store", "s3://files"], {}, /--store needs --s3-endpoint URL or AWS_ENDPOINT_URL/],
    [["--store", "files"], ENDPOINT, /--store must be s3:\/\/BUCKET or s3:\/\/BUCKET\/PREFIX/],
    [["--store", "s3://Files"], ENDPOINT, /the bucket name must be 3-63 lower-case/],
    [["--store", "s3://ab"], ENDPOINT, /the bucket name must be 3-63 lower-case/],
    [["--store", "s3://files/a//b"], ENDPOINT, /the prefix is not a valid name/],
    [["--store", "s3://files/../x"], ENDPOINT, /the prefix is not a valid name/],
    [["--store", "s3://files", "--s3-endpoint", "ftp://h"], {}, /http:\/\/ or https:\/\//],
    [["--store", "s3://files", "--s3-endpoint", "http://h/path"], {}, /no path or query/],
    [["--store", "s3://files", "--s3-region", "EU"], ENDPOINT, /region must be lower-case/],
    [["--s3-endpoint", "http://h"], {}, /go with --store s3:\/\/BUCKET/],
  ];
  for (const [args, vars, message] of refused) {
    await assert.rejects(
      parseServeArgs(["--no-auth", ...args], envOf(vars)),
      (err: Error) => err instanceof UsageError && message.test(err.message),
      args.join(" "),
    );
  }
});

Deno.test("sandboxPermissions() for a bucket grants no file and the endpoint's host and port", () => {
  assert.equal(endpointGrant("http://127.0.0.1:7480"), "127.0.0.1:7480");
  assert.equal(endpointGrant("https://s3.example"), "s3.example:443");
  assert.equal(endpointGrant("http://[::1]:9000"), "[::1]:9000");
  const permissions = sandboxPermissions("s3://files", "::", 4000, "http://127.0.0.1:7480");
  assert.equal(permissions.read, false);
  assert.equal(permissions.write, false);
  assert.deepEqual(permissions.net, ["[::]:4000", "127.0.0.1:7480"]);
});
