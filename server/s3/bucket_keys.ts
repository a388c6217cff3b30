/**
 * Where an fts name lives in a bucket: `PREFIX/a/b/c.txt` for the file
 * `a/b/c.txt`, and a directory as the keys under `PREFIX/a/b/` (an empty one
 * as the zero-byte marker object `PREFIX/a/b/`). One function each way, so
 * that no other code builds a key.
 *
 * @module
 */

import { FtsError } from "../../protocol/errors.ts";
import { parseName } from "../../protocol/names.ts";
import { MAX_S3_KEY_BYTES } from "./client.ts";

const encoder = new TextEncoder();

/** The keys of one bucket's served prefix. */
export class BucketKeys {
  /** The served prefix, empty or ending in `/`. */
  readonly prefix: string;

  /** `prefix` as given after the bucket in `s3://BUCKET/PREFIX`, without slashes at its ends. */
  constructor(prefix: string) {
    this.prefix = prefix === "" ? "" : `${prefix}/`;
  }

  /** The key of the file `segments`; BAD_NAME when S3 cannot hold a key that long. */
  file(segments: string[]): string {
    return this.#checked(this.prefix + segments.join("/"), segments);
  }

  /** The prefix of directory `segments` (the served prefix for the root), and its marker's key. */
  directory(segments: string[]): string {
    if (segments.length === 0) return this.prefix;
    return this.#checked(`${this.prefix}${segments.join("/")}/`, segments);
  }

  /**
   * The entry name a listed key or common prefix under directory prefix
   * `under` stands for, or null when it is not a name fts can serve (an
   * empty or `..` segment, a control character: written by another S3 client).
   */
  nameUnder(under: string, key: string): string | null {
    const name = key.slice(under.length).replace(/\/$/, "");
    if (name === "" || name.includes("/")) return null;
    try {
      parseName(name);
      return name;
    } catch {
      return null;
    }
  }

  #checked(key: string, segments: string[]): string {
    const bytes = encoder.encode(key).length;
    if (bytes > MAX_S3_KEY_BYTES) {
      throw new FtsError(
        "BAD_NAME",
        `${JSON.stringify(segments.join("/"))} makes an S3 key of ${bytes} bytes, over S3's ` +
          `limit of ${MAX_S3_KEY_BYTES}`,
      );
    }
    return key;
  }
}
