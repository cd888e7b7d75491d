// A segment goes from the spooled file to the store through one reused buffer: the stored object
// decompresses to exactly the file's bytes, a short file or a failing store is an error (never a
// short segment, never a hang), and failed attempts are reported before each retry.
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { zstdDecompressSync } from 'node:zlib';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { SegmentDraft } from '../../src/binlog/draft.ts';
import { feed, uploadSegment } from '../../src/binlog/segment-upload.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import type { PutOptions } from '../../src/storage/driver.ts';

const log = pino({ level: 'silent' });

async function spooled(bytes: number): Promise<{ path: string; data: Buffer }> {
  const data = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 7919) % 251;
  const path = join(await mkdtemp(join(tmpdir(), 'upload-test-')), 'mysql-bin.000001');
  await writeFile(path, data);
  return { path, data };
}

function draft(start: number, end: number): SegmentDraft {
  return { start, end, firstTimestamp: 1_700_000_000, lastTimestamp: 1_700_000_001, first: new Map(), last: new Map(), transactions: 0, nextFile: null, since: Date.now() };
}

describe('feed', () => {
  it('writes exactly [start, end) through a buffer smaller than the range, reusing it', async () => {
    const { path, data } = await spooled(100_000);
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        chunks.push(Buffer.from(chunk)); // a copy: the buffer is reused once this calls back
        callback();
      },
    });
    const buffer = Buffer.alloc(4096);
    await feed(path, 1000, 90_000, buffer, sink);
    expect(Buffer.concat(chunks).equals(data.subarray(1000, 90_000))).toBe(true);
    expect(chunks.length).toBe(Math.ceil(89_000 / 4096));
  });

  it('a file shorter than the segment is an error, and the sink is destroyed with it', async () => {
    const { path } = await spooled(1000);
    const sink = new PassThrough();
    const errors: Error[] = [];
    sink.on('error', (err) => errors.push(err));
    sink.resume();
    await expect(feed(path, 0, 2000, Buffer.alloc(256), sink)).rejects.toThrow(/ends at 1000, before the segment's end 2000/);
    expect(sink.destroyed).toBe(true);
    await new Promise(setImmediate);
    expect(errors.map((e) => e.message)).toEqual([expect.stringMatching(/ends at 1000/)]);
  });

  it('a sink destroyed mid-way ends the feed with an error instead of waiting forever', async () => {
    const { path } = await spooled(100_000);
    const sink = new Writable({
      highWaterMark: 1,
      write(_chunk, _encoding, _callback) {
        // Never calls back: a stage that was torn down with a write in flight.
        setImmediate(() => sink.destroy(new Error('store gone')));
      },
    });
    sink.on('error', () => undefined);
    await expect(feed(path, 0, 100_000, Buffer.alloc(4096), sink)).rejects.toThrow();
  });
});

describe('uploadSegment', () => {
  const database = { name: 'shop', compression: { algorithm: 'zstd', level: 3 } } as DatabaseConfig;

  it('stores the bytes compressed and the manifest after them; the object decompresses to the spooled range', async () => {
    const { path, data } = await spooled(300_000);
    const storage = new MemoryDriver();
    const manifest = await uploadSegment({ database, storage, path, file: 'mysql-bin.000001', draft: draft(4, 250_004), header: { serverId: 1, createdAt: '2026-11-30T00:00:00.000Z' }, extension: '.zst', log, follows: null, signal: new AbortController().signal, now: () => new Date(), buffer: Buffer.alloc(8192), onFailure: async () => undefined });
    const stored = storage.objects.get(manifest.object.key)?.data as Buffer;
    expect(zstdDecompressSync(stored).equals(data.subarray(4, 250_004))).toBe(true);
    expect(manifest.object).toMatchObject({ sizeBytes: stored.length, rawSizeBytes: 250_000, compression: 'zstd' });
    expect([...storage.objects.keys()].some((k) => k.endsWith('000000000004-000000250004.json'))).toBe(true);
  });

  it('a failing store: each failed attempt is reported, then the retry succeeds with the same bytes', async () => {
    const { path, data } = await spooled(50_000);
    class Flaky extends MemoryDriver {
      failures = 1;
      override async put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
        if (this.failures-- > 0) {
          // A store that fails mid-upload: it took a first chunk, then the request failed.
          for await (const _chunk of body) break;
          throw new Error('503 slow down');
        }
        return super.put(key, body, options);
      }
    }
    const storage = new Flaky();
    const reported: [string, number][] = [];
    const manifest = await uploadSegment({ database, storage, path, file: 'mysql-bin.000001', draft: draft(0, 50_000), header: { serverId: 1, createdAt: '2026-11-30T00:00:00.000Z' }, extension: '.zst', log, follows: null, signal: new AbortController().signal, now: () => new Date(), buffer: Buffer.alloc(4096), onFailure: async (error, attempt) => void reported.push([(error as Error).message, attempt]) });
    expect(reported).toEqual([['503 slow down', 1]]);
    expect(zstdDecompressSync(storage.objects.get(manifest.object.key)?.data as Buffer).equals(data)).toBe(true);
  });

  it('onFailure throwing (the spool bound) ends the retries with its error', async () => {
    const { path } = await spooled(10_000);
    class Down extends MemoryDriver {
      override async put(_key: string, body: Readable): Promise<{ size: number }> {
        for await (const _chunk of body) break;
        throw new Error('connect ECONNREFUSED');
      }
    }
    await expect(
      uploadSegment({ database, storage: new Down(), path, file: 'mysql-bin.000001', draft: draft(0, 10_000), header: { serverId: 1, createdAt: '2026-11-30T00:00:00.000Z' }, extension: '.zst', log, follows: null, signal: new AbortController().signal, now: () => new Date(), buffer: Buffer.alloc(4096), onFailure: async () => { throw new Error('spool over its bound'); } }),
    ).rejects.toThrow('spool over its bound');
  });
});
