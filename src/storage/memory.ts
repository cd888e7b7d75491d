import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { assertValidKey, assertValidRange, StorageNotFoundError, type CallOptions, type GetOptions, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';
import { prefixesByWalking } from './prefix-listing.ts';

interface Stored {
  data: Buffer;
  modifiedAt: Date;
  /** Increases on every write, like a GCS generation: the exact version token. */
  generation: number;
}

/**
 * An in-memory store for unit tests. It passes the same contract suite as the real drivers, so
 * tests that use it exercise the same semantics; its conditional writes are exact (one event loop,
 * no await between compare and swap). Not for production: everything lives in RAM. Every call
 * checks its signal first; nothing here waits, so there is nothing else to abort.
 */
export class MemoryDriver implements StorageDriver {
  readonly location = 'memory:';
  readonly conditionalWrites = true;
  readonly delimiterListing = true;
  readonly objects = new Map<string, Stored>();
  #generation = 0;

  #store(key: string, data: Buffer): string {
    const generation = ++this.#generation;
    this.objects.set(key, { data, modifiedAt: new Date(), generation });
    return String(generation);
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    assertValidKey(key);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(chunk);
        callback();
      },
    });
    await pipeline(body, sink, options.signal ? { signal: options.signal } : {});
    const data = Buffer.concat(chunks);
    this.#store(key, data);
    return { size: data.length };
  }

  #info(key: string, found: Stored): ObjectInfo {
    return { key, size: found.data.length, modifiedAt: found.modifiedAt, etag: String(found.generation) };
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(options.range);
    options.signal?.throwIfAborted();
    const found = this.objects.get(key);
    if (!found) throw new StorageNotFoundError(key);
    const { range } = options;
    return Readable.from([range ? found.data.subarray(range.start, range.end + 1) : found.data]);
  }

  async getVersioned(key: string, options: CallOptions = {}): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    const found = this.objects.get(key);
    return found && { data: Buffer.from(found.data), version: String(found.generation) };
  }

  async stat(key: string, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    const found = this.objects.get(key);
    return found ? this.#info(key, found) : undefined;
  }

  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<ObjectInfo> {
    options.signal?.throwIfAborted();
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      options.signal?.throwIfAborted();
      const found = this.objects.get(key);
      if (found) yield this.#info(key, found);
    }
  }

  /** Computed from the keys (no store to ask), so it counts as delimiter listing. */
  listPrefixes(prefix: string, options: CallOptions = {}): AsyncIterable<string> {
    return prefixesByWalking(this.list(prefix, options), prefix);
  }

  async putIfAbsent(key: string, data: Buffer, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    if (this.objects.has(key)) return undefined;
    return this.#store(key, Buffer.from(data));
  }

  async putIfMatch(key: string, data: Buffer, version: string, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    if (String(this.objects.get(key)?.generation) !== version) return undefined;
    return this.#store(key, Buffer.from(data));
  }

  async deleteIfMatch(key: string, version: string, options: CallOptions = {}): Promise<boolean> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    if (String(this.objects.get(key)?.generation) !== version) return false;
    return this.objects.delete(key);
  }

  /** Nothing is ever left half-written in memory. */
  async abortIncompleteUploads(_prefix: string, _before: Date, _spare?: unknown, options: CallOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted();
    return [];
  }

  async delete(key: string, options: CallOptions = {}): Promise<void> {
    assertValidKey(key);
    options.signal?.throwIfAborted();
    this.objects.delete(key);
  }

  async close(): Promise<void> {}
}
