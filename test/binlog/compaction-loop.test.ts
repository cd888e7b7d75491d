import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { startCompactionLoop } from '../../src/binlog/compaction-loop.ts';
import { segmentManifestKey } from '../../src/binlog/segments.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { CountingDriver } from '../harness/counting-driver.ts';

const log = pino({ level: 'silent' });
const COMPRESSION = { algorithm: 'zstd' as const, level: 3 };

describe('compaction beside the capture: requests of an idle archive', () => {
  it('lists once at start, then sleeps: no request until a segment arrives, and none right after it', async () => {
    const storage = new CountingDriver(new MemoryDriver());
    // A compacted archive: one daily object, nothing pending.
    const key = segmentManifestKey('shop', 'mysql-bin.000001', 0, 100, { level: 3, window: Date.parse('2026-10-01T00:00:00Z') });
    await storage.put(key, Readable.from([Buffer.from('{}')]));
    storage.reset();
    const controller = new AbortController();
    const loop = startCompactionLoop({ storage, database: 'shop', compression: COMPRESSION, log, signal: controller.signal });
    await sleep(300);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1 });
    await sleep(700);
    expect(storage.requests).toBe(1);
    loop.notify(); // a new segment: compaction waits for its window (at least MIN_INTERVAL_MS)
    await sleep(300);
    expect(storage.requests).toBe(1);
    await loop.stop();
    expect(storage.requests).toBe(1);
  });
});
