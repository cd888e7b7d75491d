import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver } from './driver.ts';

/**
 * An in-memory store for unit tests. It passes the same contract suite as the real drivers, so
 * tests that use it exercise the same semantics. Not for production: everything lives in RAM.
 */
export class MemoryDriver implements StorageDriver {
  readonly location = 'memory:';
  readonly objects = new Map<string, { data: Buffer; modifiedAt: Date }>();

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
    this.objects.set(key, { data, modifiedAt: new Date() });
    return { size: data.length };
  }

  async get(key: string): Promise<Readable> {
    assertValidKey(key);
    const found = this.objects.get(key);
    if (!found) throw new StorageNotFoundError(key);
    return Readable.from([found.data]);
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

  async putIfAbsent(key: string, data: Buffer): Promise<boolean> {
    assertValidKey(key);
    if (this.objects.has(key)) return false;
    this.objects.set(key, { data: Buffer.from(data), modifiedAt: new Date() });
    return true;
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.objects.delete(key);
  }
}
