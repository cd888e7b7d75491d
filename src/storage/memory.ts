import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';

interface Stored {
  data: Buffer;
  modifiedAt: Date;
  /** Increases on every write, like a GCS generation: the exact version token. */
  generation: number;
}

/**
 * An in-memory store for unit tests. It passes the same contract suite as the real drivers, so
 * tests that use it exercise the same semantics; its conditional writes are exact (one event loop,
 * no await between compare and swap). Not for production: everything lives in RAM.
 */
export class MemoryDriver implements StorageDriver {
  readonly location = 'memory:';
  readonly conditionalWrites = true;
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

  async get(key: string): Promise<Readable> {
    assertValidKey(key);
    const found = this.objects.get(key);
    if (!found) throw new StorageNotFoundError(key);
    return Readable.from([found.data]);
  }

  async getVersioned(key: string): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    const found = this.objects.get(key);
    return found && { data: Buffer.from(found.data), version: String(found.generation) };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    const found = this.objects.get(key);
    return found ? { key, size: found.data.length, modifiedAt: found.modifiedAt } : undefined;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    const keys = [...this.objects.keys()].filter((k) => k.startsWith(prefix)).sort();
    for (const key of keys) {
      const found = this.objects.get(key);
      if (found) yield { key, size: found.data.length, modifiedAt: found.modifiedAt };
    }
  }

  async putIfAbsent(key: string, data: Buffer): Promise<string | undefined> {
    assertValidKey(key);
    if (this.objects.has(key)) return undefined;
    return this.#store(key, Buffer.from(data));
  }

  async putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    assertValidKey(key);
    if (String(this.objects.get(key)?.generation) !== version) return undefined;
    return this.#store(key, Buffer.from(data));
  }

  async deleteIfMatch(key: string, version: string): Promise<boolean> {
    assertValidKey(key);
    if (String(this.objects.get(key)?.generation) !== version) return false;
    return this.objects.delete(key);
  }

  /** Nothing is ever left half-written in memory. */
  async abortIncompleteUploads(): Promise<string[]> {
    return [];
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.objects.delete(key);
  }
}
