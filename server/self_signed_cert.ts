/**
 * Generates the server's own TLS identity for `--tls`: an ECDSA P-256 key and
 * a self-signed certificate (not a CA) that clients pin by fingerprint.
 * Loaded only when needed, so other commands do not pay for the library.
 *
 * @module
 */

import "reflect-metadata";
import * as x509 from "@peculiar/x509";

/** How long a generated certificate is valid: clients pin it, so it should outlive the host. */
const CERT_VALIDITY_DAYS = 3650;

/** Names every generated certificate carries; clients verify a pinned certificate against the first. */
export const GENERATED_CERT_NAMES = ["fts-server", "localhost"];

const ALGORITHM = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;

/** A new key and self-signed certificate, both PEM. */
export async function generateSelfSignedCert(): Promise<{ cert: string; key: string }> {
  const keys = await crypto.subtle.generateKey(ALGORITHM, true, ["sign", "verify"]);
  const serial = Array.from(crypto.getRandomValues(new Uint8Array(16)))
    .map((b) => b.toString(16).padStart(2, "0")).join("").replace(/^[89a-f]/, "7");
  const now = Date.now();
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial,
    name: "CN=fts-server",
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + CERT_VALIDITY_DAYS * 86_400_000),
    keys,
    signingAlgorithm: ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.SubjectAlternativeNameExtension([
        ...GENERATED_CERT_NAMES.map((value) => ({ type: "dns" as const, value })),
        { type: "ip" as const, value: "127.0.0.1" },
        { type: "ip" as const, value: "::1" },
      ]),
    ],
  });
  const pkcs8 = new Uint8Array(await crypto.subtle.exportKey("pkcs8", keys.privateKey));
  return { cert: certificate.toString("pem"), key: pem("PRIVATE KEY", pkcs8) };
}

function pem(label: string, der: Uint8Array): string {
  const base64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN ${label}-----\n${
    base64.match(/.{1,64}/g)!.join("\n")
  }\n-----END ${label}-----\n`;
}
