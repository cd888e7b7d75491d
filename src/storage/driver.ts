import type { Readable } from 'node:stream';

/** What a listing or stat returns about one object. */
export interface ObjectInfo {
  /** The key relative to the driver's root (never starts with "/"). */
  key: string;
  size: number;
  /** Last modification time as reported by the store. */
  modifiedAt: Date;
}

export interface PutOptions {
  signal?: AbortSignal;
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
   * Stores the whole `body` at `key`, replacing any object there, and resolves with the number of
   * bytes stored once the object is durable. If `body` errors, `signal` aborts or the store fails,
   * it rejects and no object (and no partial upload the driver can remove) is left at `key`.
   * The object becomes visible only complete: readers never see a prefix of it.
   */
  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }>;

  /** Opens `key` for reading. Rejects with StorageNotFoundError when it does not exist. */
  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable>;

  /** Size and time of `key`, or undefined when it does not exist. */
  stat(key: string): Promise<ObjectInfo | undefined>;

  /** Every object whose key starts with `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<ObjectInfo>;

  /** Removes `key`. Removing a missing object succeeds. */
  delete(key: string): Promise<void>;

  /**
   * Creates a small object only if no object exists at `key`: resolves true when this call created
   * it, false when one was already there. Atomic where the store supports conditional writes
   * (local O_EXCL, S3 If-None-Match, GCS ifGenerationMatch=0); used for locks.
   */
  putIfAbsent(key: string, data: Buffer): Promise<boolean>;

  /**
   * Removes what uploads that never finished left behind under `prefix` and started before
   * `before` (S3: multipart uploads; local: temp files of a crashed writer), and returns a
   * description of each. Stores that leave nothing behind (GCS) do not implement it.
   */
  abortIncompleteUploads?(prefix: string, before: Date): Promise<string[]>;

  /** Releases clients and sockets. */
  close?(): Promise<void>;
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
