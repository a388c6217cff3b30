/**
 * The byte stream under a session: plain TCP, or TLS verified against a CA
 * (`--ca`) or against a pinned certificate fingerprint (`--fingerprint`, or
 * trust on first use remembered in the known-hosts file, as ssh does).
 *
 * @module
 */

import tls from "node:tls";
import { dirname } from "node:path";
import { fingerprintOfDer, normalizeFingerprint } from "../protocol/fingerprint.ts";
import { formatAddress } from "./address.ts";

/** How a TLS server is to be verified. */
export type TlsTrust =
  | { kind: "ca"; caCert: string }
  | { kind: "fingerprint"; fingerprint: string }
  | { kind: "known-hosts"; file: string };

/** The connection could not be made, broke, or the server spoke another protocol. */
export class ConnectionError extends Error {
  /** An error whose message says what failed; `options.cause` is the error under it. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ConnectionError";
  }
}

/**
 * The server was reached and will not have this client: a token not
 * accepted, a certificate not the one trusted, another protocol version.
 * Connecting again gets the same answer, so a reconnect stops at it.
 */
export class RefusedError extends ConnectionError {
  /** A refusal whose message says who refused and why. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RefusedError";
  }
}

/**
 * The two sides are out of step: the server broke the protocol (a message
 * that does not parse, or out of place, a limit exceeded), or ended the
 * session saying this client did (a `fatal` message). The session was
 * closed; a new one would meet the same server, so a reconnect is not tried.
 */
export class OutOfStepError extends ConnectionError {
  /** `message` says what broke the protocol. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "OutOfStepError";
  }
}

/** How long a TLS probe of the server's certificate may take. */
const TLS_PROBE_TIMEOUT_MS = 10_000;

/** Opens the stream to `hostname:port`, plain or TLS. */
export async function openTransport(
  hostname: string,
  port: number,
  trust: TlsTrust | null,
): Promise<Deno.Conn> {
  const where = formatAddress(hostname, port);
  try {
    if (trust === null) {
      const conn = await Deno.connect({ hostname, port });
      conn.setNoDelay(true);
      return conn;
    }
    if (trust.kind === "ca") {
      const conn = await Deno.connectTls({ hostname, port, caCerts: [trust.caCert] });
      await conn.handshake();
      return conn;
    }
    const presented = await probeCertificate(hostname, port);
    const expected = trust.kind === "fingerprint"
      ? trust.fingerprint
      : await knownFingerprint(trust.file, where, presented.fingerprint);
    if (presented.fingerprint !== expected) {
      throw new RefusedError(
        `REFUSING ${where}: its TLS certificate is not the one trusted ` +
          `(expected ${expected}, got ${presented.fingerprint})` +
          (trust.kind === "known-hosts"
            ? `; if it was replaced on purpose, remove the line for ${where} from ${trust.file}`
            : ""),
      );
    }
    // The certificate matched the pin: trust exactly it, so that only the
    // holder of its key can complete this handshake.
    const tcp = await Deno.connect({ hostname, port });
    tcp.setNoDelay(true);
    const conn = await Deno.startTls(tcp, {
      hostname: presented.verifyName,
      caCerts: [presented.pem],
    });
    await conn.handshake();
    return conn;
  } catch (err) {
    if (err instanceof ConnectionError) throw err;
    throw new ConnectionError(`cannot connect to ${where}: ${describe(err, trust !== null)}`, {
      cause: err,
    });
  }
}

function describe(err: unknown, usingTls: boolean): string {
  if (err instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is `fts serve` running there?)";
  }
  const message = err instanceof Error ? err.message : String(err);
  if (usingTls && /corrupt message|wrong version|InvalidContentType/i.test(message)) {
    return `TLS handshake failed (${message}); does the server use TLS?`;
  }
  return message;
}

/** The certificate a TLS server presents, read without trusting it yet. */
interface PresentedCertificate {
  fingerprint: string;
  pem: string;
  /** A name the certificate is valid for, to verify it against itself. */
  verifyName: string;
}

function probeCertificate(hostname: string, port: number): Promise<PresentedCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: hostname, port, rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error("no TLS handshake within the time limit; does the server use TLS?"));
    }, TLS_PROBE_TIMEOUT_MS);
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once("secureConnect", async () => {
      clearTimeout(timer);
      try {
        const certificate = socket.getPeerCertificate(true);
        socket.destroy();
        const der = new Uint8Array(certificate.raw);
        const base64 = btoa(String.fromCharCode(...der)).match(/.{1,64}/g)!.join("\n");
        resolve({
          fingerprint: await fingerprintOfDer(der),
          pem: `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`,
          verifyName: firstName(certificate.subjectaltname ?? "") ?? hostname,
        });
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** The first DNS name or IP address in a subjectAltName string such as "DNS:a, IP Address:1.2.3.4". */
function firstName(subjectAltName: string): string | undefined {
  for (const part of subjectAltName.split(/,\s*/)) {
    const match = /^(?:DNS|IP Address):(.+)$/.exec(part.trim());
    if (match) return match[1];
  }
  return undefined;
}

/**
 * The fingerprint remembered for `where`. A certificate already trusted for
 * another port of the same host is the same server started again on a new
 * port (its certificate is kept across restarts): trusted, nothing written.
 * Otherwise, on first use, remembers `presented` (trust on first use) and
 * says so on stderr.
 */
async function knownFingerprint(file: string, where: string, presented: string): Promise<string> {
  let text = "";
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  let knownOnThisHost = false;
  for (const line of text.split("\n")) {
    const [known, fingerprint] = line.trim().split(/\s+/);
    const normalized = fingerprint ? normalizeFingerprint(fingerprint) : null;
    if (known === undefined || normalized === null) continue;
    if (known === where) return normalized;
    if (hostOf(known) === hostOf(where) && normalized === presented) knownOnThisHost = true;
  }
  if (knownOnThisHost) return presented;
  await Deno.mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(file, `${where} ${presented}\n`, { append: true, mode: 0o600 });
  console.error(
    `fts: trusting ${where} on first use; its certificate fingerprint is ${presented} (saved in ${file})`,
  );
  return presented;
}

/** The host of a `HOST:PORT` or `[V6]:PORT` address. */
function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(":"));
}
