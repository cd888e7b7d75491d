import type { Readable } from 'node:stream';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import type { CallOptions, ObjectInfo, PutOptions, StorageDriver, VersionedObject } from '../../src/storage/driver.ts';

/**
 * A test decorator that counts what a caller asks of a store, so tests assert the number of store
 * requests an operation makes (stable on a busy machine) instead of its wall time. A listing
 * (list, listPrefixes) is counted as the pages an S3 or GCS listing would take: one request per
 * 1,000 entries read, at least one; a caller that stops early is charged only for what it read.
 */
export class CountingDriver extends ForwardingDriver {
  readonly calls = new Map<string, number>();
  /** Keys returned by listings, summed over every listing. */
  listedKeys = 0;
  /** Sub-directories returned by listPrefixes, summed over every listing. */
  listedPrefixes = 0;

  constructor(inner: StorageDriver) {
    super(inner);
  }

  private count(method: string, n = 1): void {
    this.calls.set(method, (this.calls.get(method) ?? 0) + n);
  }

  /** Every request counted so far (list pages included). */
  get requests(): number {
    let total = 0;
    for (const n of this.calls.values()) total += n;
    return total;
  }

  /** Requests that read one object's content or metadata: get, getVersioned, stat. */
  get objectReads(): number {
    return (this.calls.get('get') ?? 0) + (this.calls.get('getVersioned') ?? 0) + (this.calls.get('stat') ?? 0);
  }

  reset(): void {
    this.calls.clear();
    this.listedKeys = 0;
    this.listedPrefixes = 0;
  }

  override put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    this.count('put');
    return super.put(key, body, options);
  }

  override get(key: string, options?: CallOptions): Promise<Readable> {
    this.count('get');
    return super.get(key, options);
  }

  override getVersioned(key: string, options?: CallOptions): Promise<VersionedObject | undefined> {
    this.count('getVersioned');
    return super.getVersioned(key, options);
  }

  override stat(key: string, options?: CallOptions): Promise<ObjectInfo | undefined> {
    this.count('stat');
    return super.stat(key, options);
  }

  override async *list(prefix: string, options?: CallOptions): AsyncIterable<ObjectInfo> {
    let n = 0;
    try {
      for await (const object of super.list(prefix, options)) {
        n++;
        this.listedKeys++;
        yield object;
      }
    } finally {
      this.count('list', Math.max(1, Math.ceil(n / 1000)));
    }
  }

  override async *listPrefixes(prefix: string, options?: CallOptions): AsyncIterable<string> {
    let n = 0;
    try {
      for await (const dir of super.listPrefixes(prefix, options)) {
        n++;
        this.listedPrefixes++;
        yield dir;
      }
    } finally {
      this.count('listPrefixes', Math.max(1, Math.ceil(n / 1000)));
    }
  }

  override delete(key: string, options?: CallOptions): Promise<void> {
    this.count('delete');
    return super.delete(key, options);
  }

  override putIfAbsent(key: string, data: Buffer, options?: CallOptions): Promise<string | undefined> {
    this.count('putIfAbsent');
    return super.putIfAbsent(key, data, options);
  }

  override putIfMatch(key: string, data: Buffer, version: string, options?: CallOptions): Promise<string | undefined> {
    this.count('putIfMatch');
    return super.putIfMatch(key, data, version, options);
  }

  override deleteIfMatch(key: string, version: string, options?: CallOptions): Promise<boolean> {
    this.count('deleteIfMatch');
    return super.deleteIfMatch(key, version, options);
  }

  override abortIncompleteUploads(prefix: string, before: Date, spare?: (key: string, startedAt: Date) => boolean, options?: CallOptions): Promise<string[]> {
    this.count('abortIncompleteUploads');
    return super.abortIncompleteUploads(prefix, before, spare, options);
  }
}
