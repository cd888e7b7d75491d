import type { Readable } from 'node:stream';
import type { CallOptions, GetOptions, ObjectInfo, PutOptions, StorageDriver, VersionedObject } from './driver.ts';

/**
 * Places every key of a driver under `prefix/` (the `prefix` setting of S3 and GCS storage), so
 * drivers themselves only deal with keys relative to their bucket.
 */
export class PrefixedDriver implements StorageDriver {
  readonly location: string;
  readonly conditionalWrites: boolean;
  readonly delimiterListing: boolean;
  readonly #inner: StorageDriver;
  readonly #prefix: string;

  constructor(inner: StorageDriver, prefix: string) {
    const clean = prefix.replace(/^\/+|\/+$/g, '');
    this.#inner = inner;
    this.#prefix = clean === '' ? '' : `${clean}/`;
    this.location = clean === '' ? inner.location : `${inner.location}/${clean}`;
    this.conditionalWrites = inner.conditionalWrites;
    this.delimiterListing = inner.delimiterListing;
  }

  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    return this.#inner.put(this.#prefix + key, body, options);
  }

  get(key: string, options?: GetOptions): Promise<Readable> {
    return this.#inner.get(this.#prefix + key, options);
  }

  async stat(key: string, options?: CallOptions): Promise<ObjectInfo | undefined> {
    const info = await this.#inner.stat(this.#prefix + key, options);
    return info && { ...info, key };
  }

  async *list(prefix: string, options?: CallOptions): AsyncIterable<ObjectInfo> {
    for await (const info of this.#inner.list(this.#prefix + prefix, options)) {
      yield { ...info, key: info.key.slice(this.#prefix.length) };
    }
  }

  async *listPrefixes(prefix: string, options?: CallOptions): AsyncIterable<string> {
    for await (const dir of this.#inner.listPrefixes(this.#prefix + prefix, options)) yield dir.slice(this.#prefix.length);
  }

  delete(key: string, options?: CallOptions): Promise<void> {
    return this.#inner.delete(this.#prefix + key, options);
  }

  async abortIncompleteUploads(prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean = () => false, options?: CallOptions): Promise<string[]> {
    const strip = (key: string) => (key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key);
    const found = await this.#inner.abortIncompleteUploads(this.#prefix + prefix, before, (key, startedAt) => spare(strip(key), startedAt), options);
    return found.map(strip);
  }

  getVersioned(key: string, options?: CallOptions): Promise<VersionedObject | undefined> {
    return this.#inner.getVersioned(this.#prefix + key, options);
  }

  putIfAbsent(key: string, data: Buffer, options?: CallOptions): Promise<string | undefined> {
    return this.#inner.putIfAbsent(this.#prefix + key, data, options);
  }

  putIfMatch(key: string, data: Buffer, version: string, options?: CallOptions): Promise<string | undefined> {
    return this.#inner.putIfMatch(this.#prefix + key, data, version, options);
  }

  deleteIfMatch(key: string, version: string, options?: CallOptions): Promise<boolean> {
    return this.#inner.deleteIfMatch(this.#prefix + key, version, options);
  }

  close(options?: CallOptions): Promise<void> {
    return this.#inner.close(options);
  }
}
