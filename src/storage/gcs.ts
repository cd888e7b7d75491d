import { Storage, type Bucket } from '@google-cloud/storage';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { GcsStorageConfig } from '../config/schema.ts';
import { CountingStream } from '../pipeline/digest.ts';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver } from './driver.ts';

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

/**
 * Google Cloud Storage. put is one resumable upload session fed from the stream (no chunkSize, so
 * nothing is buffered beyond the stream's own high-water marks). GCS creates the object only when
 * the session is finalised at the end of the stream: a failed or aborted upload leaves no object.
 */
export class GcsDriver implements StorageDriver {
  readonly location: string;
  readonly #bucket: Bucket;
  readonly #storageClass: string | undefined;

  constructor(bucket: Bucket, options: { storageClass?: string | undefined } = {}) {
    this.#bucket = bucket;
    this.#storageClass = options.storageClass;
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

  async putIfAbsent(key: string, data: Buffer): Promise<boolean> {
    assertValidKey(key);
    try {
      await this.#bucket.file(key).save(data, { resumable: false, contentType: 'application/json', preconditionOpts: { ifGenerationMatch: 0 } });
      return true;
    } catch (err) {
      if ((err as { code?: number }).code === 412) return false;
      throw err;
    }
  }
}
