/**
 * Where the S3 keys come from, the way the AWS tools look for them: the
 * environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN),
 * else the shared credentials file (AWS_SHARED_CREDENTIALS_FILE, default
 * ~/.aws/credentials) under the profile AWS_PROFILE (default "default").
 * Never from the command line, where every user of the machine could read them.
 */

/** The keys a request is signed with. */
export interface S3Credentials {
  /** The access key id (not secret: it is sent in every request). */
  accessKeyId: string;
  /** The secret access key. */
  secretAccessKey: string;
  /** A temporary credential's session token, sent as x-amz-security-token. */
  sessionToken?: string;
}

/**
 * The shared credentials file is a few lines a profile; a file far larger is
 * not one, and is not read into memory.
 */
const MAX_CREDENTIALS_FILE_BYTES = 1024 * 1024;

/** Why no credentials could be found; the message names where they were looked for. */
export class S3CredentialsError extends Error {
  override name = "S3CredentialsError";
}

/**
 * The credentials from `env` (the process's environment unless given), else
 * from the shared credentials file; throws {@link S3CredentialsError} when
 * neither has a complete pair.
 *
 * @example
 * ```ts
 * import { loadS3Credentials } from "./credentials.ts";
 * const keys = await loadS3Credentials({ AWS_ACCESS_KEY_ID: "AK", AWS_SECRET_ACCESS_KEY: "SK" });
 * console.assert(keys.accessKeyId === "AK" && keys.sessionToken === undefined);
 * ```
 */
export async function loadS3Credentials(
  env: Record<string, string | undefined> = Deno.env.toObject(),
): Promise<S3Credentials> {
  const fromEnv = credentialsIn(
    env["AWS_ACCESS_KEY_ID"],
    env["AWS_SECRET_ACCESS_KEY"],
    env["AWS_SESSION_TOKEN"],
  );
  if (fromEnv) return fromEnv;
  if (env["AWS_ACCESS_KEY_ID"] || env["AWS_SECRET_ACCESS_KEY"]) {
    throw new S3CredentialsError(
      "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together",
    );
  }
  const home = env["HOME"];
  const file = env["AWS_SHARED_CREDENTIALS_FILE"] ??
    (home ? `${home}/.aws/credentials` : undefined);
  const profile = env["AWS_PROFILE"] || "default";
  if (file === undefined) {
    throw new S3CredentialsError(
      "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or HOME for ~/.aws/credentials",
    );
  }
  let text: string;
  try {
    const info = await Deno.stat(file);
    if (info.size > MAX_CREDENTIALS_FILE_BYTES) {
      throw new S3CredentialsError(
        `${file} is larger than ${MAX_CREDENTIALS_FILE_BYTES} bytes: not a credentials file`,
      );
    }
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new S3CredentialsError(
        `no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and ${file} does not exist`,
      );
    }
    throw err;
  }
  const section = iniSection(text, profile);
  const fromFile = section &&
    credentialsIn(
      section.get("aws_access_key_id"),
      section.get("aws_secret_access_key"),
      section.get("aws_session_token"),
    );
  if (!fromFile) {
    throw new S3CredentialsError(
      `no S3 credentials: profile "${profile}" in ${file} has no aws_access_key_id and aws_secret_access_key`,
    );
  }
  return fromFile;
}

/** The credentials when both keys are present and not empty, else null. */
function credentialsIn(
  accessKeyId: string | undefined,
  secretAccessKey: string | undefined,
  sessionToken: string | undefined,
): S3Credentials | null {
  if (!accessKeyId || !secretAccessKey) return null;
  return sessionToken
    ? { accessKeyId, secretAccessKey, sessionToken }
    : { accessKeyId, secretAccessKey };
}

/**
 * The `key = value` lines of section `[name]` of an INI text (as the AWS
 * shared credentials file is written: `#` and `;` start comments, names are
 * matched without surrounding spaces), or null if there is no such section.
 */
function iniSection(text: string, name: string): Map<string, string> | null {
  let current: Map<string, string> | null = null;
  let found: Map<string, string> | null = null;
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[\s*(.+?)\s*\]$/.exec(line);
    if (header) {
      current = header[1] === name ? (found ??= new Map()) : null;
      continue;
    }
    const equals = line.indexOf("=");
    if (current && equals > 0) {
      current.set(line.slice(0, equals).trim().toLowerCase(), line.slice(equals + 1).trim());
    }
  }
  return found;
}
