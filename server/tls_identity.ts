/**
 * The server's TLS certificate and key: from files (`--tls-cert`,
 * `--tls-key`), or generated once and kept in the state directory (`--tls`)
 * so that restarts keep the identity clients have pinned.
 *
 * @module
 */

import { join } from "node:path";
import { UsageError } from "../cli/usage_error.ts";
import { certificateFingerprint } from "../protocol/fingerprint.ts";

/** A loaded identity. */
export interface TlsIdentity {
  /** The certificate (PEM). */
  cert: string;
  /** The certificate's private key (PEM). */
  key: string;
  /** SHA-256 of the certificate (DER), colon-separated hex. */
  fingerprint: string;
}

/** Loads (or for "generate", creates on first use) the TLS identity; null without TLS. */
export async function loadTls(
  source: { certFile: string; keyFile: string } | "generate" | null,
  stateDir: string | null,
): Promise<TlsIdentity | null> {
  if (source === null) return null;
  if (source !== "generate") {
    const cert = await Deno.readTextFile(source.certFile);
    const key = await Deno.readTextFile(source.keyFile);
    return { cert, key, fingerprint: await certificateFingerprint(cert) };
  }
  if (stateDir === null) throw new UsageError("--tls needs --state-dir (no HOME is set)");
  const certFile = join(stateDir, "tls-cert.pem");
  const keyFile = join(stateDir, "tls-key.pem");
  try {
    const cert = await Deno.readTextFile(certFile);
    const key = await Deno.readTextFile(keyFile);
    return { cert, key, fingerprint: await certificateFingerprint(cert) };
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  const { generateSelfSignedCert } = await import("./self_signed_cert.ts");
  const { cert, key } = await generateSelfSignedCert();
  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(keyFile, key, { mode: 0o600 });
  await Deno.writeTextFile(certFile, cert, { mode: 0o644 });
  return { cert, key, fingerprint: await certificateFingerprint(cert) };
}
