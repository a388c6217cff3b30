/**
 * What a download finds on the local disk cannot turn it against the user:
 * it never writes through a link at its own temporary file or below the
 * destination, two listed names never land on one file, long names get a
 * temporary file that fits, and an empty tree is a success. Driven against
 * the real `fts connect` process, with a fake server (and the real server
 * for uploads).
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { EXIT_CONNECTION, EXIT_OK } from "../cli/exit_codes.ts";
import type { Message } from "../protocol/frames.ts";
import { runAgainstFake, treeServer } from "./_fake_server.ts";
import { listTree, runCommand, startServer } from "./_helpers.ts";

const PAYLOAD = new TextEncoder().encode("server data\n");
const VICTIM = "victim contents\n";

/** A file entry as a server lists it. */
function file(name: string): Message {
  return { name, type: "file", size: PAYLOAD.length, mtime: 0 };
}

function dir(name: string): Message {
  return { name, type: "dir", size: 0, mtime: 0 };
}

Deno.test("get of a pattern never writes through a link at its temporary file", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("plain")] }, PAYLOAD),
    ["get", "d/pl*", "out"],
    {
      async prepare(cwd) {
        await Deno.writeTextFile(join(cwd, "victim"), VICTIM);
        await Deno.mkdir(join(cwd, "out"));
        await Deno.symlink(join(cwd, "victim"), join(cwd, "out", ".plain.fts-partial"));
      },
    },
  );
  try {
    assert.notEqual(run.code, EXIT_OK, run.stdout);
    assert.match(run.stderr, /\.plain\.fts-partial.*link/, run.stderr);
    assert.equal(await Deno.readTextFile(join(run.cwd, "victim")), VICTIM);
    assert.deepEqual(run.tree, ["cwd/", "cwd/out/", "cwd/out/.plain.fts-partial", "cwd/victim"]);
    assert.equal(Deno.lstatSync(join(run.cwd, "out", ".plain.fts-partial")).isSymlink, true);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get --resume never reads or truncates through a link at its temporary file", async () => {
  const run = await runAgainstFake(
    treeServer({}, PAYLOAD),
    ["get", "--resume", "d/plain", "out"],
    {
      async prepare(cwd) {
        await Deno.writeTextFile(join(cwd, "victim"), VICTIM);
        await Deno.mkdir(join(cwd, "out"));
        await Deno.symlink(join(cwd, "victim"), join(cwd, "out", ".plain.fts-partial"));
      },
    },
  );
  try {
    assert.notEqual(run.code, EXIT_OK, run.stdout);
    assert.match(run.stderr, /link/, run.stderr);
    assert.equal(await Deno.readTextFile(join(run.cwd, "victim")), VICTIM);
    assert.equal(Deno.lstatSync(join(run.cwd, "out", ".plain.fts-partial")).isSymlink, true);
    assert.equal(run.tree.includes("cwd/out/plain"), false);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get replaces a stale partial file that is a regular file", async () => {
  const run = await runAgainstFake(
    treeServer({}, PAYLOAD),
    ["get", "d/plain", "out"],
    {
      async prepare(cwd) {
        await Deno.mkdir(join(cwd, "out"));
        await Deno.writeTextFile(join(cwd, "out", ".plain.fts-partial"), "stale bytes of old\n");
      },
    },
  );
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.deepEqual(await Deno.readFile(join(run.cwd, "out", "plain")), PAYLOAD);
    assert.deepEqual(run.tree, ["cwd/", "cwd/out/", "cwd/out/plain"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r refuses to write through a link to a directory below the destination", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("a.txt"), dir("link")], "d/link": [file("f")] }, PAYLOAD),
    ["get", "-r", "d", "out"],
    {
      // out is there already, so the tree lands in out/d (as scp -r puts it).
      async prepare(cwd) {
        await Deno.mkdir(join(cwd, "outside"));
        await Deno.mkdir(join(cwd, "out", "d"), { recursive: true });
        await Deno.symlink(join(cwd, "outside"), join(cwd, "out", "d", "link"));
      },
    },
  );
  try {
    assert.notEqual(run.code, EXIT_OK, run.stdout);
    assert.match(run.stderr, /DENIED: .*out\/d\/link.* symbolic link/, run.stderr);
    // Refused before anything was written, inside the destination or through the link.
    assert.deepEqual(run.tree, [
      "cwd/",
      "cwd/out/",
      "cwd/out/d/",
      "cwd/out/d/link",
      "cwd/outside/",
    ]);
    assert.deepEqual(run.messages.filter((m) => m.op === "download"), []);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r refuses a link deeper below the destination too", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [dir("sub")], "d/sub": [dir("deep")], "d/sub/deep": [file("f")] }, PAYLOAD),
    ["get", "-r", "d", "out"],
    {
      async prepare(cwd) {
        await Deno.mkdir(join(cwd, "outside"));
        await Deno.mkdir(join(cwd, "out", "d", "sub"), { recursive: true });
        await Deno.symlink(join(cwd, "outside"), join(cwd, "out", "d", "sub", "deep"));
      },
    },
  );
  try {
    assert.notEqual(run.code, EXIT_OK, run.stdout);
    assert.match(run.stderr, /out\/d\/sub\/deep.* symbolic link/, run.stderr);
    assert.deepEqual(await listTree(join(run.cwd, "outside")), []);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r into a destination that is itself a link writes into the directory it names", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [dir("sub")], "d/sub": [file("f")] }, PAYLOAD),
    ["get", "-r", "d", "chosen"],
    {
      async prepare(cwd) {
        await Deno.mkdir(join(cwd, "real"));
        await Deno.symlink(join(cwd, "real"), join(cwd, "chosen"));
      },
    },
  );
  try {
    assert.equal(run.code, EXIT_OK, run.stderr);
    // chosen is a directory (through the link), so the tree lands inside it as chosen/d.
    assert.deepEqual(await Deno.readFile(join(run.cwd, "real", "d", "sub", "f")), PAYLOAD);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get -r refuses a listing that names one entry twice", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("x"), file("x")] }, PAYLOAD),
    ["get", "-r", "d", "out"],
  );
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr);
    assert.match(run.stderr, /listed "x" twice/, run.stderr);
    assert.doesNotMatch(run.stdout, /verified/);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

Deno.test("get of a pattern refuses a listing that names one file twice", async () => {
  const run = await runAgainstFake(
    treeServer({ d: [file("x"), file("x")] }, PAYLOAD),
    ["get", "d/*", "out"],
  );
  try {
    assert.equal(run.code, EXIT_CONNECTION, run.stderr);
    assert.match(run.stderr, /listed "x" twice/, run.stderr);
    assert.deepEqual(run.tree, ["cwd/"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

// (A pattern cannot match both: a wildcard never matches the leading `.` of a temporary name.)
for (const listed of [[file(".x.fts-partial"), file("x")], [dir(".x.fts-partial"), file("x")]]) {
  Deno.test(`get -r refuses a listed ${listed[0]!.type} that is another's temporary file`, async () => {
    const run = await runAgainstFake(treeServer({ d: listed }, PAYLOAD), ["get", "-r", "d", "out"]);
    try {
      assert.notEqual(run.code, EXIT_OK, run.stdout);
      assert.match(run.stderr, /"\.x\.fts-partial".*temporary file/, run.stderr);
      assert.doesNotMatch(run.stdout, /verified/);
      assert.deepEqual(run.tree, ["cwd/"]);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  });
}

Deno.test("get never takes a file this session downloaded as another's temporary file", async () => {
  const run = await runAgainstFake(
    treeServer({}, PAYLOAD),
    [],
    {
      stdin: "get d/.x.fts-partial out\nget d/x out\n",
      prepare: (cwd) => Deno.mkdir(join(cwd, "out")),
    },
  );
  try {
    assert.notEqual(run.code, EXIT_OK, run.stdout);
    assert.match(run.stderr, /DENIED: .*a file this session downloaded/, run.stderr);
    assert.deepEqual(await Deno.readFile(join(run.cwd, "out", ".x.fts-partial")), PAYLOAD);
    assert.deepEqual(run.tree, ["cwd/", "cwd/out/", "cwd/out/.x.fts-partial"]);
  } finally {
    await Deno.remove(run.base, { recursive: true });
  }
});

for (const bytes of [242, 243, 250, 255]) {
  Deno.test(`get -r downloads a name of ${bytes} bytes`, async () => {
    const name = "n".repeat(bytes);
    const run = await runAgainstFake(
      treeServer({ d: [file(name)] }, PAYLOAD),
      ["get", "-r", "d", "out"],
    );
    try {
      assert.equal(run.code, EXIT_OK, run.stderr);
      assert.deepEqual(await Deno.readFile(join(run.cwd, "out", name)), PAYLOAD);
      assert.deepEqual(run.tree, ["cwd/", "cwd/out/", `cwd/out/${name}`]);
    } finally {
      await Deno.remove(run.base, { recursive: true });
    }
  });
}

Deno.test("an interrupted download of a 250-byte name resumes from its temporary file", async () => {
  const name = "r".repeat(250);
  const bytes = new Uint8Array(64 * 1024).map((_, i) => i % 251);
  let offsetAsked = -1;
  const interrupted = await runAgainstFake({
    async answer(request, peer) {
      // Half the data, then the connection ends.
      await peer.send({ type: "data", id: request.id, size: bytes.length, offset: 0, mtime: 0 });
      await peer.sendBytes(bytes.subarray(0, bytes.length / 2));
      peer.end();
      return "stop";
    },
  }, ["get", name]);
  try {
    assert.equal(interrupted.code, EXIT_CONNECTION, interrupted.stderr);
    const held = interrupted.tree.filter((path) => path.startsWith("cwd/.fts-partial-"));
    assert.equal(held.length, 1, interrupted.tree.join("\n"));
    const resumed = await runAgainstFake(
      {
        async answer(request, peer) {
          offsetAsked = Number(request.offset);
          const { createHash } = await import("node:crypto");
          const sha256 = createHash("sha256").update(bytes).digest("hex");
          const id = request.id;
          await peer.send({ type: "data", id, size: bytes.length, offset: offsetAsked, mtime: 0 });
          await peer.sendBytes(bytes.subarray(offsetAsked));
          await peer.send({ type: "reply", id, ok: true, size: bytes.length, sha256 });
        },
      },
      ["get", "--resume", name],
      {
        async prepare(cwd) {
          const partial = held[0]!.slice("cwd/".length);
          await Deno.copyFile(join(interrupted.cwd, partial), join(cwd, partial));
        },
      },
    );
    try {
      assert.equal(resumed.code, EXIT_OK, resumed.stderr);
      assert.equal(offsetAsked, bytes.length / 2);
      assert.match(resumed.stdout, /resumed at 32\.0 KiB/);
      assert.deepEqual(await Deno.readFile(join(resumed.cwd, name)), bytes);
      assert.deepEqual(resumed.tree, ["cwd/", `cwd/${name}`]);
    } finally {
      await Deno.remove(resumed.base, { recursive: true });
    }
  } finally {
    await Deno.remove(interrupted.base, { recursive: true });
  }
});

Deno.test("get -r of a remote directory with no files makes the directory and says so", async () => {
  const script = treeServer({ d: [{ name: "l", type: "link", size: 0, mtime: 0 }] }, PAYLOAD);
  const text = await runAgainstFake(script, ["get", "-r", "d", "out"]);
  const json = await runAgainstFake(script, ["--json", "get", "-r", "d", "out"]);
  try {
    assert.equal(text.code, EXIT_OK, text.stderr);
    assert.match(text.stdout, /^downloaded 0 files/m);
    assert.deepEqual(text.tree, ["cwd/", "cwd/out/"]);
    assert.equal(json.code, EXIT_OK, json.stderr);
    const reported = JSON.parse(json.stdout);
    assert.equal(reported.op, "download");
    assert.deepEqual(reported.files, []);
    assert.equal(reported.bytes, 0);
  } finally {
    await Deno.remove(text.base, { recursive: true });
    await Deno.remove(json.base, { recursive: true });
  }
});

Deno.test("put -r and get -r of empty directories succeed and make the directory", async () => {
  const server = await startServer();
  try {
    await Deno.mkdir(join(server.dir, "empty"));
    const put = await runCommand(server, ["put", "-r", "empty", "e"]);
    assert.equal(put.code, EXIT_OK, put.stderr);
    assert.match(put.stdout, /^uploaded 0 files/m);
    assert.equal(Deno.statSync(join(server.root, "e")).isDirectory, true);
    const putJson = await runCommand(server, ["--json", "put", "-r", "empty", "e"]);
    assert.equal(putJson.code, EXIT_OK, putJson.stderr);
    assert.deepEqual(JSON.parse(putJson.stdout).files, []);
    const get = await runCommand(server, ["get", "-r", "e", "back"]);
    assert.equal(get.code, EXIT_OK, get.stderr);
    assert.match(get.stdout, /^downloaded 0 files/m);
    assert.equal(Deno.statSync(join(server.dir, "back")).isDirectory, true);
  } finally {
    await server.stop();
  }
});

Deno.test("get --resume never writes through a hard link at its temporary file", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, "t.txt"), "the server's whole file\n");
    const victim = join(server.dir, "victim");
    await Deno.writeTextFile(victim, "the server"); // A prefix of it: a resume would continue.
    await Deno.mkdir(join(server.dir, "out"));
    await Deno.link(victim, join(server.dir, "out", ".t.txt.fts-partial"));
    const run = await runCommand(server, ["get", "--resume", "t.txt", "out/"]);
    assert.equal(await Deno.readTextFile(victim), "the server");
    assert.equal(run.code, EXIT_OK, run.stderr);
    assert.equal(
      await Deno.readTextFile(join(server.dir, "out", "t.txt")),
      "the server's whole file\n",
    );
  } finally {
    await server.stop();
  }
});

Deno.test("get -r of a remote file refuses before writing anything; a directory holding a file of its own name still works", async () => {
  const server = await startServer();
  try {
    await Deno.writeTextFile(join(server.root, "t.txt"), "a file\n");
    await Deno.mkdir(join(server.root, "d"));
    await Deno.writeTextFile(join(server.root, "d", "d"), "inside\n");
    const before = await listTree(server.dir);
    const refused = await runCommand(server, ["get", "-r", "t.txt"]);
    assert.notEqual(refused.code, EXIT_OK);
    assert.match(refused.stderr, /WRONG_TYPE: "t\.txt" is not a directory/);
    assert.deepEqual(await listTree(server.dir), before);
    const got = await runCommand(server, ["get", "-r", "d", "copy"]);
    assert.equal(got.code, EXIT_OK, got.stderr);
    assert.equal(await Deno.readTextFile(join(server.dir, "copy", "d")), "inside\n");
  } finally {
    await server.stop();
  }
});
