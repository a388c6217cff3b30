/**
 * The accept loop: every connection becomes its own {@link Session} task, so
 * a slow, stuck or failing client never delays another.
 *
 * @module
 */

import { Session, type SessionOptions } from "./session.ts";

/** Serves sessions from one listener until shut down. */
export class FtsServer {
  readonly #listener: Deno.TcpListener;
  readonly #options: SessionOptions;
  readonly #sessions = new Map<Session, Promise<void>>();
  #accepting: Promise<void> | null = null;

  constructor(listener: Deno.TcpListener, options: SessionOptions) {
    this.#listener = listener;
    this.#options = options;
  }

  /** Starts accepting connections. */
  start(): void {
    this.#accepting = this.#acceptLoop();
  }

  /**
   * Stops accepting, closes idle sessions, lets requests in flight finish for
   * up to `graceMs`, then closes whatever is left.
   */
  async shutdown(graceMs: number): Promise<void> {
    try {
      this.#listener.close();
    } catch {
      // Already closed.
    }
    await this.#accepting;
    for (const session of this.#sessions.keys()) session.stopWhenIdle();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const graceOver = new Promise<void>((resolve) => timer = setTimeout(resolve, graceMs));
    await Promise.race([Promise.all(this.#sessions.values()), graceOver]);
    clearTimeout(timer);
    for (const session of this.#sessions.keys()) session.forceClose();
    await Promise.all(this.#sessions.values());
  }

  async #acceptLoop(): Promise<void> {
    while (true) {
      let conn: Deno.TcpConn;
      try {
        conn = await this.#listener.accept();
      } catch (err) {
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) {
          return; // The listener was closed: shutting down.
        }
        // A failed accept (out of file descriptors, a reset before accept)
        // affects that connection only; keep serving the others.
        console.error(`fts: accept failed: ${err}`);
        continue;
      }
      try {
        conn.setNoDelay(true);
      } catch {
        // The peer already left; the session will notice.
      }
      const session = new Session(conn, this.#options);
      const done = session.run().finally(() => this.#sessions.delete(session));
      this.#sessions.set(session, done);
    }
  }
}
