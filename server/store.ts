/**
 * What the handlers and the session ask of the place files are kept: the
 * served root's {@link Storage} (storage.ts) or a bucket's S3Store
 * (s3/s3_store.ts). A client cannot tell which one it talks to, except
 * where README says so ("Serving an S3 bucket").
 *
 * @module
 */

import type { CommitMember } from "../io/commit_group.ts";
import type { TransferHash } from "../io/checksum.ts";
import type { ChecksumName, Digest } from "../protocol/checksum.ts";
import type { ByteSource } from "../protocol/frames.ts";
import type { DfFields, Entry } from "../protocol/messages.ts";
import type { DroppedPartials, ListedPartial } from "./partials.ts";
import type { UploadOptions } from "./pending_upload.ts";

/** A file open for reading, ready to be streamed to a client. */
export interface StoredFile {
  /** Its bytes from the start; the caller closes it. */
  file: (ByteSource & { close(): void }) | Deno.FsFile;
  /** Its size in bytes when opened. */
  size: number;
  /** Its modification time, ms since the epoch. */
  mtime: number;
  /** Its permission bits. */
  mode: number;
}

/**
 * An upload on its way, until published (a member of its connection's
 * commit group, io/commit_group.ts), discarded, or broken off.
 */
export interface StoreUpload extends CommitMember {
  /** Bytes already held from a resumed upload: the client sends the rest. */
  readonly offset: number;
  /** Publishing it makes directories: its group commits before later uploads claim space. */
  readonly makesDirectories: boolean;
  /** Feeds the bytes already held to `hash`. */
  hashHeld(hash: TransferHash): Promise<void>;
  /** Takes the next chunk of data, in order; the chunk is only valid until this settles. */
  readonly write: (chunk: Uint8Array) => Promise<void>;
  /**
   * Told the data's digest once it matched the sender's, before the upload
   * is published (a store that keeps digests with its files keeps it).
   */
  received?(digest: Digest): void;
  /** Makes it visible under its name, alone (a group of one). */
  publish(): Promise<void>;
  /** Throws it away; safe more than once and after a failed publish. */
  discard(): Promise<void>;
  /** The upload broke off: keep what arrived for a resume, or throw it away. */
  interrupted(): Promise<void>;
}

/** A digest found for one file of a directory. */
export interface FoundDigest {
  hex: string;
  size: number;
  mtime: number;
  /** Read and hashed now (not kept from before): the caller sends it on at once. */
  hashedNow: boolean;
}

/** The digests of one directory's files, kept where the store can keep them. */
export interface DirectoryDigests {
  /** The digest of file `segments`, or null when it is gone or no longer a file. */
  digestOf(segments: string[]): Promise<FoundDigest | null>;
  /** Forgets the digests of files not named in `names`. */
  keepOnly(names: Set<string>): void;
  /** Keeps what was learnt, for the next time. */
  save(): Promise<void>;
}

/** What `df` reports of a store. */
export interface StoreSpace {
  report(): Promise<DfFields>;
}

/** The operations the handlers run on stored files. */
export interface Store {
  /** What is served, as the log and the start line name it (a path, or `s3://BUCKET/PREFIX`). */
  readonly root: string;
  /** The budget `df` reports. */
  readonly space: StoreSpace;
  /** Lists a directory (or describes one file). */
  list(segments: string[]): Promise<Entry[]>;
  /** Describes one entry. */
  stat(segments: string[]): Entry | Promise<Entry>;
  /** Opens a regular file for reading. */
  openForDownload(segments: string[]): Promise<StoredFile>;
  /** The digests of directory `dir`'s files with `checksum`. */
  directoryDigests(dir: string[], checksum: ChecksumName): Promise<DirectoryDigests>;
  /** Starts an upload; nothing is visible under `segments` until it is published. */
  beginUpload(segments: string[], options: UploadOptions): Promise<StoreUpload>;
  /** Renames; EXISTS if `to` is taken and `overwrite` is not set. */
  rename(from: string[], to: string[], overwrite: boolean): Promise<void>;
  /** Removes a file or an empty directory. */
  remove(segments: string[]): Promise<void>;
  /** Creates a directory and any missing parents; EXISTS if the name is taken. */
  mkdir(segments: string[]): Promise<void>;
  /** Sets the permission bits of an entry. */
  chmod(segments: string[], mode: number): void | Promise<void>;
  /** The partials held for resumes. */
  listPartials(): Promise<ListedPartial[]>;
  /** Bytes held from a broken upload of `segments` with `size` bytes; 0 when none. */
  heldBytes(segments: string[], size: number): number | Promise<number>;
  /** Removes the partials held for `segments`; NOT_FOUND when none is. */
  dropPartials(segments: string[], size: number | null): Promise<DroppedPartials>;
}
