import type { Readable } from 'node:stream';
import type { ObjectInfo, PutOptions, StorageDriver, VersionedObject } from './driver.ts';

/**
 * A driver that hands every call to another: the base of decorators around any backend (a retry
 * wrapper, a fault-injecting double in tests), which override only the calls they change.
 */
export class ForwardingDriver implements StorageDriver {
  protected readonly inner: StorageDriver;

  constructor(inner: StorageDriver) {
    this.inner = inner;
  }

  get location(): string {
    return this.inner.location;
  }

  get conditionalWrites(): boolean {
    return this.inner.conditionalWrites;
  }

  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    return this.inner.put(key, body, options);
  }

  get(key: string, options?: { signal?: AbortSignal }): Promise<Readable> {
    return this.inner.get(key, options);
  }

  getVersioned(key: string): Promise<VersionedObject | undefined> {
    return this.inner.getVersioned(key);
  }

  stat(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }

  putIfAbsent(key: string, data: Buffer): Promise<string | undefined> {
    return this.inner.putIfAbsent(key, data);
  }

  putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    return this.inner.putIfMatch(key, data, version);
  }

  deleteIfMatch(key: string, version: string): Promise<boolean> {
    return this.inner.deleteIfMatch(key, version);
  }

  abortIncompleteUploads(prefix: string, before: Date, spare?: (key: string, startedAt: Date) => boolean): Promise<string[]> {
    return this.inner.abortIncompleteUploads(prefix, before, spare);
  }

  async close(): Promise<void> {
    await this.inner.close?.();
  }
}
