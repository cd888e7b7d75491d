import type { Readable } from 'node:stream';
import type { ObjectInfo, PutOptions, StorageDriver, VersionedObject } from './driver.ts';

/**
 * Places every key of a driver under `prefix/` (the `prefix` setting of S3 and GCS storage), so
 * drivers themselves only deal with keys relative to their bucket.
 */
export class PrefixedDriver implements StorageDriver {
  readonly location: string;
  readonly conditionalWrites: boolean;
  readonly #inner: StorageDriver;
  readonly #prefix: string;

  constructor(inner: StorageDriver, prefix: string) {
    const clean = prefix.replace(/^\/+|\/+$/g, '');
    this.#inner = inner;
    this.#prefix = clean === '' ? '' : `${clean}/`;
    this.location = clean === '' ? inner.location : `${inner.location}/${clean}`;
    this.conditionalWrites = inner.conditionalWrites;
  }

  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    return this.#inner.put(this.#prefix + key, body, options);
  }

  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable> {
    return this.#inner.get(this.#prefix + key, options);
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    const info = await this.#inner.stat(this.#prefix + key);
    return info && { ...info, key };
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    for await (const info of this.#inner.list(this.#prefix + prefix)) {
      yield { ...info, key: info.key.slice(this.#prefix.length) };
    }
  }

  delete(key: string): Promise<void> {
    return this.#inner.delete(this.#prefix + key);
  }

  async abortIncompleteUploads(prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean = () => false): Promise<string[]> {
    const strip = (key: string) => (key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key);
    const found = await this.#inner.abortIncompleteUploads(this.#prefix + prefix, before, (key, startedAt) => spare(strip(key), startedAt));
    return found.map(strip);
  }

  getVersioned(key: string): Promise<VersionedObject | undefined> {
    return this.#inner.getVersioned(this.#prefix + key);
  }

  putIfAbsent(key: string, data: Buffer): Promise<string | undefined> {
    return this.#inner.putIfAbsent(this.#prefix + key, data);
  }

  putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    return this.#inner.putIfMatch(this.#prefix + key, data, version);
  }

  deleteIfMatch(key: string, version: string): Promise<boolean> {
    return this.#inner.deleteIfMatch(this.#prefix + key, version);
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }
}
