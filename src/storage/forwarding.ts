import type { Readable } from 'node:stream';
import type { CallOptions, GetOptions, ObjectInfo, PutOptions, StorageDriver, VersionedObject } from './driver.ts';

/**
 * A driver that hands every call to another: the base of decorators around any backend (the
 * retrying driver, a fault-injecting or counting double in tests), which override only the calls
 * they change.
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

  get delimiterListing(): boolean {
    return this.inner.delimiterListing;
  }

  put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    return this.inner.put(key, body, options);
  }

  get(key: string, options?: GetOptions): Promise<Readable> {
    return this.inner.get(key, options);
  }

  getVersioned(key: string, options?: CallOptions): Promise<VersionedObject | undefined> {
    return this.inner.getVersioned(key, options);
  }

  stat(key: string, options?: CallOptions): Promise<ObjectInfo | undefined> {
    return this.inner.stat(key, options);
  }

  list(prefix: string, options?: CallOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }

  listPrefixes(prefix: string, options?: CallOptions): AsyncIterable<string> {
    return this.inner.listPrefixes(prefix, options);
  }

  delete(key: string, options?: CallOptions): Promise<void> {
    return this.inner.delete(key, options);
  }

  putIfAbsent(key: string, data: Buffer, options?: CallOptions): Promise<string | undefined> {
    return this.inner.putIfAbsent(key, data, options);
  }

  putIfMatch(key: string, data: Buffer, version: string, options?: CallOptions): Promise<string | undefined> {
    return this.inner.putIfMatch(key, data, version, options);
  }

  deleteIfMatch(key: string, version: string, options?: CallOptions): Promise<boolean> {
    return this.inner.deleteIfMatch(key, version, options);
  }

  abortIncompleteUploads(prefix: string, before: Date, spare?: (key: string, startedAt: Date) => boolean, options?: CallOptions): Promise<string[]> {
    return this.inner.abortIncompleteUploads(prefix, before, spare, options);
  }

  close(options?: CallOptions): Promise<void> {
    return this.inner.close(options);
  }
}
