/**
 * Hostile names over a raw connection: a friendly client might clean a name
 * up before sending it, so these go straight onto the wire. Every one must be
 * refused with BAD_NAME, nothing may be created anywhere, and the connection
 * must go on working. Links inside root that lead out of it are refused too.
 */

import { strict as assert } from "node:assert";
import { createHash } from "node:crypto";
import { basename, dirname, join } from "node:path";
import type { Message } from "../protocol/frames.ts";
import {
  assertFreshClientLists,
  listTree,
  RawClient,
  rawList,
  readWithin,
  type RunningServer,
  serverTmpDir,
  startServer,
} from "./_helpers.ts";

/** Sends a request with an explicit id and returns the next message, bounded in time. */
async function requestWithin(client: RawClient, fields: Message): Promise<Message | null> {
  await client.send({ type: "request", ...fields });
  return await readWithin(client);
}

/** Uploads `bytes` as `name` through the full sequence and asserts it was accepted. */
async function uploadOk(client: RawClient, id: number, name: string, bytes: Uint8Array) {
  const go = await requestWithin(client, {
    id,
    op: "upload",
    name,
    size: bytes.length,
    overwrite: false,
  });
  assert.deepEqual(go, { type: "continue", id, offset: 0 });
  await client.sendBytes(bytes);
  const sha256 = createHash("sha256").update(bytes).digest("hex");
  await client.send({ type: "trailer", id, sha256 });
  const reply = await readWithin(client);
  assert.ok(reply !== null);
  assert.equal(reply.type, "reply");
  assert.equal(reply.id, id);
  assert.equal(reply.ok, true, JSON.stringify(reply));
  assert.equal(reply.sha256, sha256);
  assert.equal(reply.size, bytes.length);
}

/** Asserts that `reply` is an error reply to request `id` with `code`. */
function assertRefused(reply: Message | null, id: number, code: string, what: string) {
  assert.ok(reply !== null, `${what}: connection closed instead of a reply`);
  assert.equal(reply.type, "reply", `${what}: ${JSON.stringify(reply)}`);
  assert.equal(reply.id, id, what);
  assert.equal(reply.ok, false, `${what}: ${JSON.stringify(reply)}`);
  const error = reply.error as { code?: unknown; message?: unknown };
  assert.equal(error.code, code, `${what}: ${JSON.stringify(reply)}`);
  assert.equal(typeof error.message, "string", what);
}

/** A name over 4096 bytes made only of valid, short segments. */
const LONG_NAME = Array.from({ length: 42 }, (_, i) => `${"d".repeat(95)}${i}`).join("/");

/** Hostile names, with a label for messages. */
const HOSTILE_NAMES: [label: string, name: string][] = [
  ["empty", ""],
  ["absolute", "/etc/passwd"],
  ["dot-dot", ".."],
  ["leading dot-dot", "../x"],
  ["dot-dot escaping through a directory", "a/../../x"],
  ["dot segment", "a/./b"],
  ["leading dot segment", "./a"],
  ["empty segment", "a//b"],
  ["trailing slash", "a/"],
  ["NUL", "a\u0000b"],
  ["C0 control", "\u0001"],
  ["DEL", "\u007f"],
  ["C1 control (CSI)", "\u009b"],
  ["newline", "\n"],
  ["backslash", "a\\b"],
  ["backslash dot-dot", "..\\..\\x"],
  ["256-byte segment", "s".repeat(256)],
  ["name over 4096 bytes", LONG_NAME],
  ["reserved state directory", ".fts"],
  ["inside the reserved state directory", ".fts/tmp/x"],
];

/** Every path component the hostile names could turn into, to look for outside root. */
const CANDIDATE_NAMES = new Set(
  HOSTILE_NAMES.flatMap(([, name]) => [name, ...name.split(/[/\\]/)]).filter((n) => n !== ""),
);

Deno.test("server refuses hostile names for upload, download, delete and list with BAD_NAME", async () => {
  assert.ok(new TextEncoder().encode(LONG_NAME).length > 4096);
  // A parent directory of our own, so that "nothing appeared next to the
  // server's directory" can be checked exactly.
  const parent = await Deno.makeTempDir({ prefix: "fts-bad-names-" });
  const savedTmp = Deno.env.get("TMPDIR");
  let server: RunningServer;
  Deno.env.set("TMPDIR", parent);
  try {
    server = await startServer();
  } finally {
    if (savedTmp === undefined) Deno.env.delete("TMPDIR");
    else Deno.env.set("TMPDIR", savedTmp);
  }
  try {
    assert.equal(dirname(server.dir), parent);
    const outerParent = dirname(parent);
    const outerBefore = new Set([...Deno.readDirSync(outerParent)].map((e) => e.name));

    // The untouched root: the server's state directory only (its empty
    // temporary directory, and whatever else it keeps there, such as a lock).
    const emptyRoot = await listTree(server.root);
    assert.ok(emptyRoot.includes(".fts/tmp/"), JSON.stringify(emptyRoot));
    assert.ok(emptyRoot.every((path) => path.startsWith(".fts/")), JSON.stringify(emptyRoot));
    assert.deepEqual(emptyRoot.filter((path) => path.startsWith(".fts/tmp/")), [
      ".fts/tmp/",
      ".fts/tmp/SERVER/",
    ]);

    const client = await RawClient.open(server.port);
    try {
      let id = 0;
      for (const [label, name] of HOSTILE_NAMES) {
        id += 1;
        assertRefused(
          await requestWithin(client, { id, op: "upload", name, size: 5, overwrite: true }),
          id,
          "BAD_NAME",
          `upload of ${label}`,
        );
        id += 1;
        assertRefused(
          await requestWithin(client, { id, op: "download", name }),
          id,
          "BAD_NAME",
          `download of ${label}`,
        );
        id += 1;
        assertRefused(
          await requestWithin(client, { id, op: "delete", name }),
          id,
          "BAD_NAME",
          `delete of ${label}`,
        );
        if (name !== "") { // For list, "" is the root.
          id += 1;
          assertRefused(
            await requestWithin(client, { id, op: "list", name }),
            id,
            "BAD_NAME",
            `list of ${label}`,
          );
        }
      }

      // Nothing was created: not in root, not next to it, not above it.
      assert.deepEqual(await listTree(server.root), emptyRoot);
      assert.deepEqual(
        [...Deno.readDirSync(server.dir)].map((e) => e.name).sort(),
        ["port", "port.json", "root"],
      );
      assert.deepEqual(
        [...Deno.readDirSync(parent)].map((e) => e.name).sort(),
        [basename(server.dir), basename(server.stateHome)].sort(),
      );
      const appeared = [...Deno.readDirSync(outerParent)]
        .map((e) => e.name)
        .filter((n) => !outerBefore.has(n) && CANDIDATE_NAMES.has(n));
      assert.deepEqual(appeared, []);

      // The same connection still works: a full, valid upload.
      const bytes = new TextEncoder().encode("hello");
      await uploadOk(client, id + 1, "ok.txt", bytes);
      assert.equal(await Deno.readTextFile(join(server.root, "ok.txt")), "hello");
      assert.deepEqual(await listTree(server.root), [...emptyRoot, "ok.txt"]);
    } finally {
      client.close();
    }

    // And a separate client can list.
    assert.deepEqual(await assertFreshClientLists(server), ["ok.txt"]);
  } finally {
    await server.stop();
    await Deno.remove(parent, { recursive: true }).catch(() => {});
  }
});

Deno.test("server refuses links inside root that lead outside it with DENIED", async () => {
  const server = await startServer();
  const outside = await Deno.makeTempDir({ prefix: "fts-outside-" });
  try {
    const secret = "top secret content 0123456789";
    const secretPath = join(outside, "secret.txt");
    await Deno.writeTextFile(secretPath, secret);
    await Deno.symlink(secretPath, join(server.root, "filelink"));
    await Deno.symlink(outside, join(server.root, "link"));
    await Deno.symlink(join(server.root, ".fts"), join(server.root, "state"));
    const outsideBefore = await listTree(outside);
    assert.deepEqual(outsideBefore, ["secret.txt"]);

    const client = await RawClient.open(server.port);
    try {
      // A link to a file outside root: refused, and its content is never sent.
      const download = await requestWithin(client, { id: 1, op: "download", name: "filelink" });
      assertRefused(download, 1, "DENIED", "download through a file link");
      assert.ok(!JSON.stringify(download).includes(secret));

      // A link to a directory outside root: nothing goes through it.
      assertRefused(
        await requestWithin(client, { id: 2, op: "upload", name: "link/x", size: 5 }),
        2,
        "DENIED",
        "upload into a directory link",
      );
      assertRefused(
        await requestWithin(client, {
          id: 3,
          op: "upload",
          name: "link/sub/x",
          size: 5,
          overwrite: true,
        }),
        3,
        "DENIED",
        "upload below a directory link",
      );
      const listing = await requestWithin(client, { id: 4, op: "list", name: "link" });
      assertRefused(listing, 4, "DENIED", "list of a directory link");
      assert.ok(!JSON.stringify(listing).includes("secret.txt"));
      const through = await requestWithin(client, {
        id: 5,
        op: "download",
        name: "link/secret.txt",
      });
      assertRefused(through, 5, "DENIED", "download through a directory link");
      assert.ok(!JSON.stringify(through).includes(secret));
      assertRefused(
        await requestWithin(client, { id: 6, op: "delete", name: "link/secret.txt" }),
        6,
        "DENIED",
        "delete through a directory link",
      );

      // A link to the server's own state directory is refused like one leading out.
      assertRefused(
        await requestWithin(client, { id: 7, op: "list", name: "state" }),
        7,
        "DENIED",
        "list of a link to .fts",
      );
      assertRefused(
        await requestWithin(client, { id: 8, op: "upload", name: "state/planted", size: 5 }),
        8,
        "DENIED",
        "upload through a link to .fts",
      );

      // No stray bytes came after the refusals: the stream is still in step.
      const { names, reply } = await rawList(client, 9, "");
      assert.equal(reply.ok, true, JSON.stringify(reply));
      assert.deepEqual(names, ["filelink", "link", "state"]);
    } finally {
      client.close();
    }

    assert.deepEqual(await listTree(outside), outsideBefore);
    assert.equal(await Deno.readTextFile(secretPath), secret);
    assert.deepEqual(await listTree(await serverTmpDir(server)), []);
    assert.deepEqual(await assertFreshClientLists(server), ["filelink", "link", "state"]);
  } finally {
    await server.stop();
    await Deno.remove(outside, { recursive: true }).catch(() => {});
  }
});

Deno.test("look-alike and encoded names are stored literally inside root; Windows device names are refused", async () => {
  const server = await startServer();
  try {
    const client = await RawClient.open(server.port);
    try {
      const literal = ["%2e%2e/x", "\uff0e\uff0e/y", "e\u0301.txt", "\u00e9.txt", "..%2f..%2fz"];
      for (const [i, name] of literal.entries()) {
        await uploadOk(client, 100 + i, name, new TextEncoder().encode(name));
      }
      for (const [i, name] of ["CON", "dir/nul.txt", "Aux.log", "com1", "LPT9.txt"].entries()) {
        assertRefused(
          await requestWithin(client, { id: 200 + i, op: "upload", name, size: 1 }),
          200 + i,
          "BAD_NAME",
          name,
        );
      }
    } finally {
      client.close();
    }
    const tree = await listTree(server.root);
    for (const name of ["%2e%2e/x", "\uff0e\uff0e/y", "e\u0301.txt", "\u00e9.txt", "..%2f..%2fz"]) {
      assert.ok(tree.includes(name), `${name} in ${tree}`);
      assert.equal(await Deno.readTextFile(join(server.root, name)), name);
    }
    assert.deepEqual(
      await listTree(server.dir).then((t) => t.filter((p) => !p.startsWith("root"))),
      [
        "port",
        "port.json",
      ],
    );
  } finally {
    await server.stop();
  }
});
