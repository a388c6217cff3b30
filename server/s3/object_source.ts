/**
 * An object's bytes, as a GetObject answer streams them, read the way
 * io/send_file.ts reads a file: into the caller's buffer, a count at a time.
 *
 * @module
 */

import type { ByteSource } from "../../protocol/frames.ts";

/** A {@link ByteSource} over a response body; `close` cancels what is not read. */
export class ObjectSource implements ByteSource {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  /** What the last chunk held beyond the buffer it was read into. */
  #rest: Uint8Array = new Uint8Array(0);
  #done = false;

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#rest.length === 0) {
      if (this.#done) return null;
      const { done, value } = await this.#reader.read();
      if (done) {
        this.#done = true;
        return null;
      }
      this.#rest = value;
    }
    const count = Math.min(buffer.length, this.#rest.length);
    buffer.set(this.#rest.subarray(0, count));
    this.#rest = this.#rest.subarray(count);
    return count;
  }

  close(): void {
    if (this.#done) return;
    this.#done = true;
    this.#reader.cancel().catch(() => {});
  }
}
