// The complete-through marker only ever extends the last recoverable time, and only when it sits at
// the end of a segment of the recoverable run; a bad one is reported and not used.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Archive } from '../../src/binlog/archive.ts';
import { completeMarkerKey, completeThrough } from '../../src/binlog/complete-marker.ts';
import { segmentManifestKey, type SegmentManifest } from '../../src/binlog/segments.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';

const segment = (start: number, end: number, lastEventAt: string): SegmentManifest => ({
  format: 'backup-agent/binlog-segment',
  version: 1,
  database: 'shop',
  file: 'mysql-bin.000001',
  start,
  end,
  firstEventAt: '2026-11-21T10:00:00.000Z',
  lastEventAt,
  gtidFirst: null,
  gtidLast: null,
  transactions: 0,
  serverId: 1,
  fileCreatedAt: '2026-11-21T09:00:00.000Z',
  nextFile: null,
  ...(start === 0 ? { follows: null } : {}),
  object: { key: `shop/binlog/mysql-bin.000001/x-${start}`, sizeBytes: 1, sha256: 'a'.repeat(64), compression: 'zstd', rawSizeBytes: end - start },
  capturedAt: lastEventAt,
  agent: { version: '0.1.0', hostname: 'h' },
});

const base = { id: '20261121T100000.000Z-aaaaaa', type: 'dump', completedAt: '2026-11-21T10:00:01.000Z', binlog: { file: 'mysql-bin.000001', position: 100, gtid: null } } as unknown as Manifest;

async function archiveWith(marker: unknown): Promise<MemoryDriver> {
  const storage = new MemoryDriver();
  const put = (key: string, body: unknown) => storage.put(key, Readable.from([Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))]));
  await put(segmentManifestKey('shop', 'mysql-bin.000001', 0, 400), segment(0, 400, '2026-11-21T10:00:05.000Z'));
  await put(segmentManifestKey('shop', 'mysql-bin.000001', 400, 900), segment(400, 900, '2026-11-21T10:00:09.000Z'));
  if (marker !== undefined) await put(completeMarkerKey('shop'), marker);
  return storage;
}

const marker = (position: number, through: string) => ({
  format: 'backup-agent/binlog-complete',
  version: 1,
  database: 'shop',
  file: 'mysql-bin.000001',
  position,
  through,
  writtenAt: through,
  agent: { version: '0.1.0', hostname: 'h' },
});

describe('complete-through marker', () => {
  it('is one second before the server clock read with the binlog end', () => {
    expect(completeThrough(Date.parse('2026-11-21T10:05:00Z') / 1000).toISOString()).toBe('2026-11-21T10:04:59.000Z');
  });

  it('extends the last recoverable time when it sits at a segment end of the run', async () => {
    const summary = await (await Archive.load(await archiveWith(marker(900, '2026-11-21T10:30:00.000Z')), 'shop')).summarize([base]);
    expect(summary.lastRecoverableAt).toBe('2026-11-21T10:30:00.000Z');
    expect(summary.runs[0]?.to.at).toBe('2026-11-21T10:00:09.000Z');
    expect(summary.completeThrough).toEqual({ file: 'mysql-bin.000001', position: 900, through: '2026-11-21T10:30:00.000Z' });
  });

  it('is not used at a position the archive does not end a segment at, nor when older than the last event', async () => {
    expect((await (await Archive.load(await archiveWith(marker(901, '2026-11-21T10:30:00.000Z')), 'shop')).summarize([base])).lastRecoverableAt).toBe('2026-11-21T10:00:09.000Z');
    expect((await (await Archive.load(await archiveWith(marker(400, '2026-11-21T10:00:06.000Z')), 'shop')).summarize([base])).lastRecoverableAt).toBe('2026-11-21T10:00:09.000Z');
  });

  it('an invalid marker is reported and not used; the archive still reads', async () => {
    const summary = await (await Archive.load(await archiveWith('{"format":"backup-agent/binlog-complete"'), 'shop')).summarize([base]);
    expect(summary.lastRecoverableAt).toBe('2026-11-21T10:00:09.000Z');
    expect(summary.completeThrough).toBeNull();
    expect(summary.completeThroughProblem).toMatch(/^shop\/binlog\/complete-through\.json is not JSON: /);
    const named = await (await Archive.load(await archiveWith({ ...marker(900, '2026-11-21T10:30:00.000Z'), file: '../x.000001' }), 'shop')).summarize([base]);
    expect(named.completeThroughProblem).toBe('shop/binlog/complete-through.json is invalid at file: "../x.000001" is not a binlog file name (expected e.g. mysql-bin.000042)');
    expect(named.lastRecoverableAt).toBe('2026-11-21T10:00:09.000Z');
  });
});
