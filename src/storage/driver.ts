import type { Readable } from 'node:stream';

/** What a listing or stat returns about one object. */
export interface ObjectInfo {
  /** The key relative to the driver's root (never starts with "/"). */
  key: string;
  size: number;
  /** Last modification time as reported by the store. */
  modifiedAt: Date;
  /**
   * Identifies this version of the object's content where the store reports one: S3 ETag, GCS
   * generation, memory generation, local `<size>-<mtimeMs>`. Compare for equality only (a cache
   * keyed on key + size + etag); undefined when the store has none.
   */
  etag?: string;
}

export interface VersionedObject {
  data: Buffer;
  /** Opaque: compare for equality and pass back to putIfMatch/deleteIfMatch, nothing else. */
  version: string;
}

/** What every call takes last: a signal that cancels it (the call then rejects with its reason). */
export interface CallOptions {
  signal?: AbortSignal;
}

/** Bytes `start` to `end` of an object, both inclusive (the convention of HTTP's Range header). */
export interface ByteRange {
  start: number;
  end: number;
}

export interface GetOptions extends CallOptions {
  /**
   * Read only these bytes. An `end` past the object's last byte reads to its end; a `start` past
   * it reads nothing (an empty stream). A negative, fractional or reversed range is a RangeError.
   */
  range?: ByteRange;
}

/** Throws a RangeError for a range no driver can read (checked by every driver before a request). */
export function assertValidRange(range: ByteRange | undefined): void {
  if (range === undefined) return;
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) throw new RangeError(`invalid byte range ${start}-${end}`);
}

export interface PutOptions extends CallOptions {
  contentType?: string;
}

/**
 * The storage contract every backend implements. A driver only moves bytes: it knows nothing of
 * backups, manifests or MariaDB. Keys are "/"-separated relative paths. The same contract suite
 * (test/storage/contract.ts) runs against every driver.
 */
export interface StorageDriver {
  /** A human description of where objects go, e.g. "s3://bucket/prefix". Holds no secret. */
  readonly location: string;

  /**
   * Whether the store honours conditional writes, so putIfAbsent, putIfMatch and deleteIfMatch
   * are atomic. When false (an S3- or GCS-compatible store configured with
   * `conditional_writes: false`), the driver emulates them by reading, comparing and writing:
   * right when one writer acts at a time, but two writers racing within one round trip can both
   * succeed. Callers that need exclusion say so to the user (docs: leases).
   */
  readonly conditionalWrites: boolean;

  /**
   * Whether listPrefixes asks the store for the sub-directories (S3 Delimiter, GCS delimiter, a
   * local readdir): its cost then grows with the directories, not with the keys below them. When
   * false, listPrefixes is emulated by walking every key under the prefix.
   */
  readonly delimiterListing: boolean;

  /**
   * Stores the whole `body` at `key`, replacing any object there, and resolves with the number of
   * bytes stored once the object is durable. If `body` errors, `signal` aborts or the store fails,
   * it rejects and no object (and no partial upload the driver can remove) is left at `key`.
   * The object becomes visible only complete: readers never see a prefix of it.
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }>;

  /**
   * Opens `key` for reading, whole or (with `range`) the bytes of the range. Rejects with
   * StorageNotFoundError when it does not exist.
   */
  get(key: string, options?: GetOptions): Promise<Readable>;

  /** Size, time and etag of `key`, or undefined when it does not exist. */
  stat(key: string, options?: CallOptions): Promise<ObjectInfo | undefined>;

  /**
   * Every object whose key starts with `prefix`, in ascending key order, fetched lazily: a caller
   * that stops iterating (break) stops the requests (S3/GCS fetch one page of 1,000 keys at a time).
   */
  list(prefix: string, options?: CallOptions): AsyncIterable<ObjectInfo>;

  /**
   * The distinct sub-directories directly below `prefix` (which normally ends in "/"), each as
   * `prefix + name + "/"`, in ascending order: the directories that hold at least one key. Lazy
   * like list. Emulated by walking keys where delimiterListing is false.
   */
  listPrefixes(prefix: string, options?: CallOptions): AsyncIterable<string>;

  /** Removes `key`. Removing a missing object succeeds. */
  delete(key: string, options?: CallOptions): Promise<void>;

  /**
   * Reads a small object whole with its version token, or undefined when it does not exist. The
   * token changes whenever the object is replaced: S3 ETag, GCS generation, local SHA-256 of the
   * content (equal content is the same version, which is harmless for compare-and-swap).
   */
  getVersioned(key: string, options?: CallOptions): Promise<VersionedObject | undefined>;

  /**
   * Creates a small object only if no object exists at `key`: resolves with its version token when
   * this call created it, undefined when one was already there (local O_EXCL link, S3
   * If-None-Match, GCS ifGenerationMatch=0). The object is visible only complete.
   */
  putIfAbsent(key: string, data: Buffer, options?: CallOptions): Promise<string | undefined>;

  /**
   * Replaces `key` only if its current version is `version`: resolves with the new version, or
   * undefined when the object changed or is gone (S3 If-Match, GCS ifGenerationMatch).
   */
  putIfMatch(key: string, data: Buffer, version: string, options?: CallOptions): Promise<string | undefined>;

  /** Removes `key` only if its current version is `version`: true when removed, false when it changed or is gone. */
  deleteIfMatch(key: string, version: string, options?: CallOptions): Promise<boolean>;

  /**
   * Removes what uploads that never finished left behind under `prefix` and started before
   * `before` (S3: multipart uploads; local: temp files of a crashed writer and the empty
   * directories it left), except under a key `spare` says to keep (a running backup's), and
   * returns a description of each. Stores that leave nothing behind (GCS) return [].
   */
  abortIncompleteUploads(prefix: string, before: Date, spare?: (key: string, startedAt: Date) => boolean, options?: CallOptions): Promise<string[]>;

  /** Releases clients and sockets; a driver that holds none resolves at once. */
  close(options?: CallOptions): Promise<void>;
}

export class StorageNotFoundError extends Error {
  readonly key: string;

  constructor(key: string, options?: { cause?: unknown }) {
    super(`object not found: ${key}`, options);
    this.name = 'StorageNotFoundError';
    this.key = key;
  }
}

/** Rejects keys that could escape a root or mean different things to different stores. */
export function assertValidKey(key: string): void {
  if (key === '' || key.startsWith('/') || key.endsWith('/') || key.split('/').some((s) => s === '' || s === '.' || s === '..')) {
    throw new Error(`invalid object key "${key}"`);
  }
}
