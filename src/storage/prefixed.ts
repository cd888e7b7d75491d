import type { Readable } from 'node:stream';
import type { ObjectInfo, PutOptions, StorageDriver } from './driver.ts';

/**
 * Places every key of a driver under `prefix/` (the `prefix` setting of S3 and GCS storage), so
 * drivers themselves only deal with keys relative to their bucket.
 */
export class PrefixedDriver implements StorageDriver {
  readonly location: string;
  readonly #inner: StorageDriver;
  readonly #prefix: string;

  constructor(inner: StorageDriver, prefix: string) {
    const clean = prefix.replace(/^\/+|\/+$/g, '');
    this.#inner = inner;
    this.#prefix = clean === '' ? '' : `${clean}/`;
    this.location = clean === '' ? inner.location : `${inner.location}/${clean}`;
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

  async abortIncompleteUploads(prefix: string, before: Date): Promise<string[]> {
    const found = (await this.#inner.abortIncompleteUploads?.(this.#prefix + prefix, before)) ?? [];
    return found.map((key) => (key.startsWith(this.#prefix) ? key.slice(this.#prefix.length) : key));
  }

  putIfAbsent(key: string, data: Buffer): Promise<boolean> {
    return this.#inner.putIfAbsent(this.#prefix + key, data);
  }

  async close(): Promise<void> {
    await this.#inner.close?.();
  }
}
