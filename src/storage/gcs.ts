import { Storage, type Bucket } from '@google-cloud/storage';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GcsStorageConfig } from '../config/schema.ts';
import { CountingStream } from '../pipeline/digest.ts';
import { abortable } from './abortable.ts';
import { assertValidKey, assertValidRange, StorageNotFoundError, type CallOptions, type GetOptions, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';
import { prefixesByWalking } from './prefix-listing.ts';

export function createGcsBucket(config: GcsStorageConfig): Bucket {
  const storage = new Storage({
    ...(config.endpoint ? { apiEndpoint: config.endpoint } : {}),
    ...(config.project_id ? { projectId: config.project_id } : {}),
    ...(config.credentials_file ? { keyFilename: config.credentials_file } : {}),
    // Retries live in one place, the RetryingDriver around every driver, so attempts never multiply.
    retryOptions: { autoRetry: false },
  });
  return storage.bucket(config.bucket);
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

/** What a listing knows of a file: the generation is its etag (it changes only with the content). */
function infoOf(name: string, meta: { size?: string | number; updated?: string; generation?: string | number }): ObjectInfo {
  const generation = meta.generation === undefined ? undefined : String(meta.generation);
  return { key: name, size: Number(meta.size ?? 0), modifiedAt: new Date(meta.updated ?? 0), ...(generation ? { etag: generation } : {}) };
}

/** 412: the generation precondition did not hold. */
function isPreconditionFailure(err: unknown): boolean {
  return (err as { code?: number }).code === 412;
}

/**
 * Google Cloud Storage. put is one resumable upload session fed from the stream (no chunkSize, so
 * nothing is buffered beyond the stream's own high-water marks). GCS creates the object only when
 * the session is finalised at the end of the stream: a failed or aborted upload leaves no object.
 * The client's metadata calls take no signal: an abort releases the caller at once (abortable.ts)
 * while the request runs out; streams are destroyed by the signal.
 */
export class GcsDriver implements StorageDriver {
  readonly location: string;
  /** GCS honours generation preconditions; an emulator or a compatible store may not (config: conditional_writes). */
  readonly conditionalWrites: boolean;
  /** GCS lists with delimiter "/" (apiResponse.prefixes); the emulator does too. */
  readonly delimiterListing: boolean;
  readonly #bucket: Bucket;
  readonly #storageClass: string | undefined;

  constructor(bucket: Bucket, options: { storageClass?: string | undefined; conditionalWrites?: boolean | undefined; delimiterListing?: boolean | undefined } = {}) {
    this.#bucket = bucket;
    this.#storageClass = options.storageClass;
    this.conditionalWrites = options.conditionalWrites ?? true;
    this.delimiterListing = options.delimiterListing ?? true;
    this.location = `gs://${bucket.name}`;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    assertValidKey(key);
    const counter = new CountingStream();
    const out = this.#bucket.file(key).createWriteStream({
      resumable: true,
      contentType: options.contentType ?? 'application/octet-stream',
      ...(this.#storageClass ? { metadata: { storageClass: this.#storageClass } } : {}),
    });
    await pipeline(body, counter, out, options.signal ? { signal: options.signal } : {});
    return { size: counter.bytes };
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(options.range);
    const { range } = options;
    const file = this.#bucket.file(key);
    // createReadStream reports a missing object only once read; check first so callers get a
    // StorageNotFoundError up front.
    let size: number;
    try {
      const [meta] = await abortable(file.getMetadata(), options.signal);
      size = Number(meta.size ?? 0);
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(key, { cause: err });
      throw err;
    }
    if (range && range.start >= size) return Readable.from([]);
    const stream = file.createReadStream({ validation: false, ...(range ? { start: range.start, end: Math.min(range.end, size - 1) } : {}) });
    if (options.signal) {
      const signal = options.signal;
      const onAbort = () => stream.destroy(signal.reason as Error);
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
    return stream;
  }

  async stat(key: string, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const [meta] = await abortable(this.#bucket.file(key).getMetadata(), options.signal);
      return infoOf(key, meta);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** One page of 1,000 per step of the iteration: the next is requested only when the caller reads past this one. */
  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      const [files, next] = await abortable(this.#bucket.getFiles({ prefix, autoPaginate: false, maxResults: 1000, ...(pageToken ? { pageToken } : {}) }), options.signal);
      for (const file of files) yield infoOf(file.name, file.metadata);
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  /** Delimiter "/": the page's `prefixes`, a page at a time. */
  async *listPrefixes(prefix: string, options: CallOptions = {}): AsyncIterable<string> {
    if (!this.delimiterListing) {
      yield* prefixesByWalking(this.list(prefix, options), prefix);
      return;
    }
    let pageToken: string | undefined;
    do {
      const [, next, response] = await abortable(
        this.#bucket.getFiles({ prefix, delimiter: '/', autoPaginate: false, maxResults: 1000, ...(pageToken ? { pageToken } : {}) }),
        options.signal,
      );
      // Sorted here too: the JSON API returns them in order, an emulator need not.
      yield* [...((response as { prefixes?: string[] } | undefined)?.prefixes ?? [])].sort();
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  async delete(key: string, options: CallOptions = {}): Promise<void> {
    assertValidKey(key);
    await abortable(this.#bucket.file(key).delete({ ignoreNotFound: true }), options.signal);
  }

  async getVersioned(key: string, options: CallOptions = {}): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    try {
      const [meta] = await abortable(this.#bucket.file(key).getMetadata(), options.signal);
      const generation = String(meta.generation ?? '');
      // Read exactly the generation the token names, not whatever is current by then.
      const [data] = await abortable(this.#bucket.file(key, generation ? { generation } : {}).download({ validation: false }), options.signal);
      return { data, version: generation };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Saves a small object under `ifGenerationMatch` (0: only if absent) and returns its generation. */
  async #saveSmall(key: string, data: Buffer, ifGenerationMatch: number | string | undefined, options: CallOptions): Promise<string | undefined> {
    const file = this.#bucket.file(key);
    try {
      await abortable(
        file.save(data, {
          resumable: false,
          contentType: 'application/json',
          ...(ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch } }),
        }),
        options.signal,
      );
    } catch (err) {
      if (isPreconditionFailure(err)) return undefined;
      throw err;
    }
    const generation = (file.metadata as { generation?: string | number } | undefined)?.generation;
    return String(generation ?? (await abortable(file.getMetadata(), options.signal))[0].generation ?? '');
  }

  async putIfAbsent(key: string, data: Buffer, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    // Without conditional writes: look, then write (a racing writer can slip in between).
    if (!this.conditionalWrites) return (await this.stat(key, options)) ? undefined : this.#saveSmall(key, data, undefined, options);
    return this.#saveSmall(key, data, 0, options);
  }

  async putIfMatch(key: string, data: Buffer, version: string, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    if (!this.conditionalWrites) return (await this.getVersioned(key, options))?.version === version ? this.#saveSmall(key, data, undefined, options) : undefined;
    if (!/^\d+$/.test(version)) return undefined;
    return this.#saveSmall(key, data, version, options); // a string: generations can pass 2^53
  }

  async deleteIfMatch(key: string, version: string, options: CallOptions = {}): Promise<boolean> {
    assertValidKey(key);
    if (!this.conditionalWrites) {
      if ((await this.getVersioned(key, options))?.version !== version) return false;
      await this.delete(key, options);
      return true;
    }
    if (!/^\d+$/.test(version)) return false;
    try {
      await abortable(this.#bucket.file(key).delete({ ifGenerationMatch: version }), options.signal);
      return true;
    } catch (err) {
      if (isPreconditionFailure(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /** A resumable upload that is never finalised creates no object, and GCS expires its session. */
  async abortIncompleteUploads(_prefix: string, _before: Date, _spare?: unknown, options: CallOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted();
    return [];
  }

  /** The client holds no connection of its own beyond Node's agent: nothing to release. */
  async close(): Promise<void> {}
}
