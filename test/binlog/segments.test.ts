import { describe, expect, it } from 'vitest';
import { DraftBuilder } from '../../src/binlog/capture.ts';
import type { BinlogEvent } from '../../src/binlog/events.ts';
import { compareFiles, findRuns, parseSegmentKey, segmentDataKey, segmentManifestKey, type SegmentRef } from '../../src/binlog/segments.ts';

const seg = (file: string, start: number, end: number): SegmentRef => ({ file, start, end, key: segmentManifestKey('shop', file, start, end) });

describe('segment keys', () => {
  it('sort by position and parse back', () => {
    expect(segmentManifestKey('shop', 'mysql-bin.000003', 947, 12_000)).toBe('shop/binlog/mysql-bin.000003/000000000947-000000012000.json');
    expect(segmentDataKey('shop', 'mysql-bin.000003', 0, 947, '.zst')).toBe('shop/binlog/mysql-bin.000003/000000000000-000000000947.binlog.zst');
    expect(parseSegmentKey('shop/binlog/mysql-bin.000003/000000000947-000000012000.json')).toMatchObject({ database: 'shop', file: 'mysql-bin.000003', start: 947, end: 12_000 });
    expect(parseSegmentKey('shop/binlog/mysql-bin.000003/000000000947-000000012000.binlog.zst')).toBeUndefined();
    expect(parseSegmentKey('shop/20261121T101500.000Z-abcdef/manifest.json')).toBeUndefined();
  });

  it('orders files by number, not by text', () => {
    expect(['mysql-bin.1000000', 'mysql-bin.999999', 'mysql-bin.000010'].sort(compareFiles)).toEqual(['mysql-bin.000010', 'mysql-bin.999999', 'mysql-bin.1000000']);
  });
});

describe('findRuns: continuity and gaps', () => {
  it('joins byte ranges within a file and the next file from 0', () => {
    const { runs, gaps } = findRuns([seg('b.000001', 0, 900), seg('b.000001', 900, 1200), seg('b.000002', 0, 500)]);
    expect(gaps).toEqual([]);
    expect(runs).toHaveLength(1);
  });

  it('names each kind of gap', () => {
    const reasons = (segments: SegmentRef[], writers?: Record<string, number>) =>
      findRuns(segments, writers ? (f) => ({ serverId: writers[f] }) : undefined).gaps.map((g) => g.reason);
    expect(reasons([seg('b.000001', 0, 900), seg('b.000001', 1000, 1200)])).toEqual(['bytes 900–1000 of b.000001 are missing']);
    expect(reasons([seg('b.000001', 0, 900), seg('b.000003', 0, 100)])).toEqual([
      'binlog files between b.000001 and b.000003 are missing (purged before they were captured?)',
    ]);
    expect(reasons([seg('b.000001', 0, 900), seg('b.000002', 256, 400)])).toEqual(['the beginning of b.000002 (bytes 0–256) is missing']);
    expect(reasons([seg('b.000001', 0, 900), seg('b.000002', 0, 400)], { 'b.000001': 1, 'b.000002': 7 })).toEqual([
      'b.000002 was written by server id 7, b.000001 by server id 1: a different server',
    ]);
    expect(reasons([seg('b.000001', 0, 900), seg('b.000001', 800, 1000)])).toEqual(['segments of b.000001 overlap (0–900 and 800–1000)']);
  });

  it('between consecutive files, trusts where the capture says it came from', () => {
    const segments = [seg('b.000001', 0, 900), seg('b.000002', 0, 400)];
    const gaps = (follows: { file: string; end: number } | null | undefined) => findRuns(segments, (f) => (f === 'b.000002' ? { follows } : {})).gaps.map((g) => g.reason);
    expect(gaps({ file: 'b.000001', end: 900 })).toEqual([]);
    expect(gaps(undefined)).toEqual([]); // segments from before the field existed
    expect(gaps(null)).toEqual(['the capture went on at b.000002 without the end of b.000001 (archived up to 900; purged before it was captured?)']);
    expect(gaps({ file: 'b.000001', end: 1200 })).toEqual(['the capture left b.000001 at 1200, but the archive holds b.000001 up to 900']);
  });

  it('splits the archive into runs at each gap', () => {
    const { runs } = findRuns([seg('b.000001', 0, 9), seg('b.000003', 0, 9), seg('b.000003', 9, 20), seg('b.000004', 0, 5)]);
    expect(runs.map((r) => r.segments.length)).toEqual([1, 3]);
  });
});

describe('DraftBuilder: segments cut on event boundaries, stats folded in', () => {
  const ev = (position: number, end: number, timestamp: number, extra: Partial<BinlogEvent> = {}): BinlogEvent => ({ position, end, type: 2, timestamp, serverId: 1, ...extra });

  it('closes a draft before the event that would take it past the limit; a bigger event gets its own', () => {
    const b = new DraftBuilder(100, 60);
    expect(b.add(ev(100, 110, 1), 5)).toBeUndefined();
    expect(b.add(ev(110, 150, 1), 5)).toBeUndefined();
    const first = b.add(ev(150, 400, 2), 6);
    expect(first).toMatchObject({ start: 100, end: 150, since: 5 });
    const second = b.add(ev(400, 420, 3), 7);
    expect(second).toMatchObject({ start: 150, end: 400, since: 6 });
    expect(b.close()).toMatchObject({ start: 400, end: 420, firstTimestamp: 3 });
    expect(b.offset).toBe(420);
    expect(b.close()).toBeUndefined();
  });

  it('records times, GTID ranges per domain, transactions and a rotation', () => {
    const b = new DraftBuilder(4, 1 << 20);
    b.add(ev(4, 100, 10, { type: 162, gtid: { domain: 0, serverId: 1, sequence: 7n } }), 0);
    b.add(ev(100, 200, 11, { type: 162, gtid: { domain: 1, serverId: 2, sequence: 3n } }), 0);
    b.add(ev(200, 300, 12, { type: 162, gtid: { domain: 0, serverId: 1, sequence: 8n } }), 0);
    b.add(ev(300, 340, 12, { type: 4, rotateTo: 'mysql-bin.000002' }), 0);
    const d = b.close();
    expect(d).toMatchObject({ start: 4, end: 340, firstTimestamp: 10, lastTimestamp: 12, transactions: 3, nextFile: 'mysql-bin.000002' });
    expect([...(d?.first ?? [])].map(([k, g]) => `${k}-${g.serverId}-${g.sequence}`)).toEqual(['0-1-7', '1-2-3']);
    expect(d?.last.get(0)?.sequence).toBe(8n);
  });
});
