/**
 * Protocol constants and limits shared by client and server.
 *
 * Each side announces its limits in the handshake; a peer uses the smaller of
 * its own and the other side's.
 *
 * @module
 */

/** Version of the wire protocol; both sides must speak the same one. */
export const PROTOCOL_VERSION = 1;

/** Version of the fts software, reported in the handshake and by `--version`. */
export const SOFTWARE_VERSION = "0.1.0";

/**
 * Largest control frame body in bytes. A request carries at most one 4096-byte
 * name; 64 KiB leaves room for that with any escaping, and for batched list
 * entries, while bounding what a peer can make us buffer.
 */
export const MAX_CONTROL_BYTES = 64 * 1024;

/**
 * Smallest control limit either side may announce: room for a request with
 * a 4096-byte name, and for a listing's frame of entries.
 */
export const MIN_CONTROL_BYTES = 8 * 1024;

/**
 * Smallest control limit a peer's hello may announce for the frames it
 * reads; less counts as this much. The largest frame fts sends is an error
 * reply quoting a 4096-byte name, each character escaped twice at worst.
 */
export const MIN_ANNOUNCED_CONTROL_BYTES = 32 * 1024;

/** Largest file size in bytes: the largest integer a JSON number carries exactly. */
export const MAX_FILE_BYTES: number = Number.MAX_SAFE_INTEGER;

/** Largest name in bytes (UTF-8), the common PATH_MAX. */
export const MAX_NAME_BYTES = 4096;

/** Largest single path segment in bytes (UTF-8), the common NAME_MAX. */
export const MAX_SEGMENT_BYTES = 255;

/**
 * Size of the buffers file data moves through, in bytes. At 1 MiB a
 * gigabyte costs a thousand reads and writes, so the per-call overhead
 * (a thread hand-off for files) stays small next to hashing the bytes.
 */
export const DATA_CHUNK_BYTES = 1024 * 1024;

/**
 * Pairs of {@link DATA_CHUNK_BYTES} buffers a process lends to its
 * transfers at most (32 MiB): enough for every transfer at full speed when
 * sixteen run at once; past that, transfers use smaller buffers of their own
 * rather than wait, so a stalled peer holding a pair never stops another.
 */
export const POOLED_BUFFER_PAIRS = 16;

/**
 * Size of the buffers a transfer gets when the pool is all lent out, and
 * the most a small file's buffers take: small enough that a thousand
 * transfers at once cost 32 MiB, large enough to keep a socket busy.
 */
export const FALLBACK_CHUNK_BYTES = 16 * 1024;

/**
 * Smallest file that borrows the large pooled buffers: smaller ones move
 * in a few calls anyway, and leave the pool to the transfers it speeds up.
 */
export const MIN_POOLED_FILE_BYTES = 4 * DATA_CHUNK_BYTES;

/**
 * Budget in bytes for the entries carried by one `entries` frame, well under
 * {@link MAX_CONTROL_BYTES} so that the frame's envelope always fits.
 */
export const LIST_FRAME_BUDGET_BYTES = 48 * 1024;

/**
 * Room kept in an `entries` frame for everything but the entries (type, id,
 * brackets): far more than it takes, so a frame never outgrows the peer's limit.
 */
export const LIST_FRAME_ENVELOPE_BYTES = 1024;

/**
 * The hello feature that lets an upload's data follow its request without
 * waiting for `continue`: many small files then stream back to back on one
 * connection instead of costing a round trip each.
 */
export const EAGER_UPLOAD_FEATURE = "eager-upload";

/**
 * The hello feature that says the server answers `ping` and names its idle
 * timeout (`idleTimeoutMs`), so that a client left waiting can keep the
 * session open.
 */
export const KEEPALIVE_FEATURE = "keepalive";

/**
 * The hello feature that says the server honours an upload's `ifUnchanged`
 * (replace the file only if it is still the version the client saw, else
 * `CHANGED`): a server without it would drop the field and overwrite
 * whatever is there, so a client asked for the check refuses to send it one.
 */
export const IF_UNCHANGED_FEATURE = "if-unchanged";

/** Length in bytes of a frame header: the body length as a big-endian uint32. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Largest distance of a modification time from the epoch, in ms, either way:
 * the range of a JavaScript `Date` (100,000,000 days), so every accepted
 * time can be set on a file and shown.
 */
export const MAX_MTIME_MS = 8.64e15;

/**
 * Longest access token a server accepts in its configuration: far above any
 * sane token. A longer one in a hello matches nothing and is DENIED.
 */
export const MAX_TOKEN_CHARS = 512;

/**
 * How long the data of a broken transfer is kept for resuming, on the
 * server (uploads) and on the client (downloads): a day covers a lost
 * connection or a reboot, and stale data does not pile up.
 */
export const PARTIAL_EXPIRY_MS = 24 * 60 * 60 * 1000;

/**
 * The largest mode a client may set (`chmod`, an upload's `mode`): the
 * permission bits only; set-user-ID, set-group-ID and sticky bits are never
 * set by a peer.
 */
export const MAX_PERMISSION_BITS = 0o777;
