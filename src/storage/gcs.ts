import { Storage, type Bucket } from '@google-cloud/storage';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GcsStorageConfig } from '../config/schema.ts';
import { CountingStream } from '../pipeline/digest.ts';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';

export function createGcsBucket(config: GcsStorageConfig): Bucket {
  const storage = new Storage({
    ...(config.endpoint ? { apiEndpoint: config.endpoint } : {}),
    ...(config.project_id ? { projectId: config.project_id } : {}),
    ...(config.credentials_file ? { keyFilename: config.credentials_file } : {}),
    retryOptions: { autoRetry: true, maxRetries: 3 },
  });
  return storage.bucket(config.bucket);
}

function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

/** 412: the generation precondition did not hold. */
function isPreconditionFailure(err: unknown): boolean {
  return (err as { code?: number }).code === 412;
}

/**
 * Google Cloud Storage. put is one resumable upload session fed from the stream (no chunkSize, so
 * nothing is buffered beyond the stream's own high-water marks). GCS creates the object only when
 * the session is finalised at the end of the stream: a failed or aborted upload leaves no object.
 */
export class GcsDriver implements StorageDriver {
  readonly location: string;
  /** GCS honours generation preconditions; an emulator or a compatible store may not (config: conditional_writes). */
  readonly conditionalWrites: boolean;
  readonly #bucket: Bucket;
  readonly #storageClass: string | undefined;

  constructor(bucket: Bucket, options: { storageClass?: string | undefined; conditionalWrites?: boolean | undefined } = {}) {
    this.#bucket = bucket;
    this.#storageClass = options.storageClass;
    this.conditionalWrites = options.conditionalWrites ?? true;
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

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    assertValidKey(key);
    const file = this.#bucket.file(key);
    // createReadStream reports a missing object only once read; check first so callers get a
    // StorageNotFoundError up front.
    try {
      await file.getMetadata();
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(key, { cause: err });
      throw err;
    }
    const stream = file.createReadStream({ validation: false });
    if (options.signal) {
      const signal = options.signal;
      signal.addEventListener('abort', () => stream.destroy(signal.reason as Error), { once: true });
    }
    return stream;
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const [meta] = await this.#bucket.file(key).getMetadata();
      return { key, size: Number(meta.size ?? 0), modifiedAt: new Date(meta.updated ?? 0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let pageToken: string | undefined;
    do {
      const [files, next] = await this.#bucket.getFiles({
        prefix,
        autoPaginate: false,
        maxResults: 1000,
        ...(pageToken ? { pageToken } : {}),
      });
      for (const file of files) {
        yield { key: file.name, size: Number(file.metadata.size ?? 0), modifiedAt: new Date(file.metadata.updated ?? 0) };
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken;
    } while (pageToken);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await this.#bucket.file(key).delete({ ignoreNotFound: true });
  }

  async getVersioned(key: string): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    try {
      const [meta] = await this.#bucket.file(key).getMetadata();
      const generation = String(meta.generation ?? '');
      // Read exactly the generation the token names, not whatever is current by then.
      const [data] = await this.#bucket.file(key, generation ? { generation } : {}).download({ validation: false });
      return { data, version: generation };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Saves a small object under `ifGenerationMatch` (0: only if absent) and returns its generation. */
  async #saveSmall(key: string, data: Buffer, ifGenerationMatch: number | string | undefined): Promise<string | undefined> {
    const file = this.#bucket.file(key);
    try {
      await file.save(data, {
        resumable: false,
        contentType: 'application/json',
        ...(ifGenerationMatch === undefined ? {} : { preconditionOpts: { ifGenerationMatch } }),
      });
    } catch (err) {
      if (isPreconditionFailure(err)) return undefined;
      throw err;
    }
    const generation = (file.metadata as { generation?: string | number } | undefined)?.generation;
    return String(generation ?? (await file.getMetadata())[0].generation ?? '');
  }

  async putIfAbsent(key: string, data: Buffer): Promise<string | undefined> {
    assertValidKey(key);
    // Without conditional writes: look, then write (a racing writer can slip in between).
    if (!this.conditionalWrites) return (await this.stat(key)) ? undefined : this.#saveSmall(key, data, undefined);
    return this.#saveSmall(key, data, 0);
  }

  async putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    assertValidKey(key);
    if (!this.conditionalWrites) return (await this.getVersioned(key))?.version === version ? this.#saveSmall(key, data, undefined) : undefined;
    if (!/^\d+$/.test(version)) return undefined;
    return this.#saveSmall(key, data, version); // a string: generations can pass 2^53
  }

  async deleteIfMatch(key: string, version: string): Promise<boolean> {
    assertValidKey(key);
    if (!this.conditionalWrites) {
      if ((await this.getVersioned(key))?.version !== version) return false;
      await this.delete(key);
      return true;
    }
    if (!/^\d+$/.test(version)) return false;
    try {
      await this.#bucket.file(key).delete({ ifGenerationMatch: version });
      return true;
    } catch (err) {
      if (isPreconditionFailure(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  /** A resumable upload that is never finalised creates no object, and GCS expires its session. */
  async abortIncompleteUploads(): Promise<string[]> {
    return [];
  }
}
