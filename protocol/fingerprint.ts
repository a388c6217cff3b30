/**
 * Certificate fingerprints as fts shows and pins them: SHA-256 of the DER
 * certificate in colon-separated uppercase hex, as `openssl x509 -fingerprint
 * -sha256` prints it.
 *
 * @module
 */

/** The fingerprint of a PEM certificate (the first one in the text). */
export function certificateFingerprint(pem: string): Promise<string> {
  const body = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!body) throw new Error("no PEM certificate found");
  const der = Uint8Array.from(atob(body[1]!.replace(/\s+/g, "")), (c) => c.charCodeAt(0));
  return fingerprintOfDer(der);
}

/** The fingerprint of a DER certificate. */
export async function fingerprintOfDer(der: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0").toUpperCase()).join(":");
}

/** Normalises a fingerprint a user typed: case and separators do not matter. */
export function normalizeFingerprint(text: string): string | null {
  const hex = text.replace(/^sha256:/i, "").replace(/[:\s-]/g, "").toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return null;
  return hex.match(/../g)!.join(":");
}
