import { describe, expect, it } from 'vitest';
import { planCompaction } from '../../src/binlog/compaction.ts';
import { chooseCover } from '../../src/binlog/cover.ts';
import { mergeGtids } from '../../src/binlog/compactor.ts';
import { findRuns, parseSegmentKey, segmentDataKey, segmentManifestKey, type ListedSegment, type SegmentListing, type SegmentRef } from '../../src/binlog/segments.ts';

const T0 = Date.parse('2026-11-01T00:00:00Z');
const MIN = 60_000;

function seg(file: string, start: number, end: number, at: number, level = 0, window?: number): ListedSegment {
  const merged = level > 0 ? { level, window: window ?? at } : undefined;
  const key = segmentManifestKey('shop', file, start, end, merged);
  return { ...(parseSegmentKey(key) as SegmentRef), modifiedAt: new Date(at) };
}

/** A listing with each segment's data object beside its manifest. */
function listing(segments: ListedSegment[], extraData: string[] = []): SegmentListing {
  const others = segments.map((s) => ({ key: s.key.replace(/\.json$/, '.binlog.zst'), size: 1, modifiedAt: s.modifiedAt }));
  return { segments, others: [...others, ...extraData.map((key) => ({ key, size: 1, modifiedAt: new Date(T0) }))] };
}

const spans = (refs: { file: string; start: number; end: number; level?: number }[]) => refs.map((r) => `${r.file}:${r.start}-${r.end}@L${r.level ?? 0}`);

describe('merged segment keys', () => {
  it('carry level and window, sort beside level 0, and parse back', () => {
    const key = segmentManifestKey('shop', 'mysql-bin.000003', 0, 947, { level: 2, window: Date.parse('2026-11-30T23:00:00Z') });
    expect(key).toBe('shop/binlog/mysql-bin.000003/000000000000-000000000947.L2-20261130T230000Z.json');
    expect(parseSegmentKey(key)).toMatchObject({ file: 'mysql-bin.000003', start: 0, end: 947, level: 2, window: Date.parse('2026-11-30T23:00:00Z') });
    expect(segmentDataKey('shop', 'mysql-bin.000003', 0, 947, '.zst', { level: 1, window: T0 })).toBe('shop/binlog/mysql-bin.000003/000000000000-000000000947.L1-20261101T000000Z.binlog.zst');
    expect(parseSegmentKey('shop/binlog/mysql-bin.000003/000000000000-000000000947.L1-20261101T000000Z.binlog.zst')).toBeUndefined();
    // Today's level-0 keys parse as before.
    expect(parseSegmentKey('shop/binlog/mysql-bin.000003/000000000947-000000012000.json')).toMatchObject({ start: 947, end: 12_000 });
    expect(parseSegmentKey('shop/binlog/mysql-bin.000003/000000000947-000000012000.json')?.level).toBeUndefined();
  });
});

describe('chooseCover: one non-overlapping cover, highest level first', () => {
  it('prefers a merged object over its sources and keeps what it does not cover', () => {
    const refs = [seg('b.000001', 0, 100, T0), seg('b.000001', 100, 200, T0), seg('b.000001', 200, 300, T0), seg('b.000001', 0, 200, T0, 1)];
    const { cover, superseded, shadowed } = chooseCover(refs);
    expect(spans(cover)).toEqual(['b.000001:0-200@L1', 'b.000001:200-300@L0']);
    expect(spans(superseded.map((s) => s.ref))).toEqual(['b.000001:0-100@L0', 'b.000001:100-200@L0']);
    expect(shadowed).toEqual([]);
    expect(findRuns(cover).gaps).toEqual([]);
  });

  it('over three levels with overlaps at each (a crash between merges), still one contiguous run', () => {
    const refs = [
      seg('b.000001', 0, 50, T0), seg('b.000001', 50, 100, T0), seg('b.000001', 100, 150, T0), seg('b.000001', 150, 200, T0),
      seg('b.000001', 0, 100, T0, 1), seg('b.000001', 100, 200, T0, 1),
      seg('b.000001', 0, 200, T0, 2),
      seg('b.000001', 200, 260, T0 + 70 * MIN),
      seg('b.000002', 0, 40, T0 + 70 * MIN), seg('b.000002', 0, 40, T0, 1),
    ];
    const { cover, superseded } = chooseCover(refs);
    expect(spans(cover)).toEqual(['b.000001:0-200@L2', 'b.000001:200-260@L0', 'b.000002:0-40@L1']);
    expect(superseded).toHaveLength(7);
    expect(findRuns(cover).gaps).toEqual([]);
  });

  it('sets a partial overlap aside as shadowed, never as superseded (never deleted)', () => {
    const refs = [seg('b.000001', 0, 200, T0, 1), seg('b.000001', 150, 300, T0), seg('b.000001', 300, 400, T0)];
    const { cover, superseded, shadowed } = chooseCover(refs);
    expect(spans(cover)).toEqual(['b.000001:0-200@L1', 'b.000001:300-400@L0']);
    expect(superseded).toEqual([]);
    expect(spans(shadowed.map((s) => s.ref))).toEqual(['b.000001:150-300@L0']);
    expect(findRuns(cover).gaps.map((g) => g.reason)).toEqual(['bytes 200–300 of b.000001 are missing']);
  });
});

describe('planCompaction', () => {
  const now = T0 + 3 * 60 * MIN;

  it('merges closed windows per file, leaves the open one, and says when it closes', () => {
    const refs = [
      seg('b.000001', 0, 10, T0 + 1 * MIN), seg('b.000001', 10, 20, T0 + 2 * MIN), seg('b.000001', 20, 30, T0 + 11 * MIN),
      seg('b.000002', 0, 10, T0 + 12 * MIN), // rotated mid-window: its own group
      seg('b.000002', 10, 20, now - 1 * MIN), // the open window
    ];
    const plan = planCompaction(listing(refs), now);
    expect(plan.merges.map((m) => `${m.file}:${m.start}-${m.end}@L${m.level} ${new Date(m.window).toISOString()} ×${m.sources.length}`)).toEqual([
      'b.000001:0-20@L1 2026-11-01T00:00:00.000Z ×2',
      'b.000001:20-30@L1 2026-11-01T00:10:00.000Z ×1',
      'b.000002:0-10@L1 2026-11-01T00:10:00.000Z ×1',
    ]);
    expect(plan.nextDueAt).toBe(Math.floor((now - MIN) / (10 * MIN)) * 10 * MIN + 10 * MIN + 60_000);
    expect(plan.removals).toEqual([]);
  });

  it('lifts closed level-1 windows to the hour and level-2 to the day; never past the top level', () => {
    const day = 24 * 60 * MIN;
    const refs = [
      seg('b.000001', 0, 10, T0, 1, T0), seg('b.000001', 10, 20, T0, 1, T0 + 10 * MIN), seg('b.000001', 20, 30, T0, 1, T0 + 60 * MIN),
      seg('b.000001', 30, 40, T0, 3, T0 + day),
    ];
    const plan = planCompaction(listing(refs), T0 + 2 * day);
    expect(plan.merges.map((m) => `${m.start}-${m.end}@L${m.level}`)).toEqual(['0-20@L2', '20-30@L2']);
    const l2 = [seg('b.000001', 0, 20, T0, 2, T0), seg('b.000001', 20, 30, T0, 2, T0 + 60 * MIN)];
    expect(planCompaction(listing(l2), T0 + 2 * day).merges.map((m) => `${m.start}-${m.end}@L${m.level}`)).toEqual(['0-30@L3']);
  });

  it('does not merge across a gap or a level change', () => {
    const refs = [seg('b.000001', 0, 10, T0), seg('b.000001', 20, 30, T0), seg('b.000001', 30, 40, T0, 1, T0), seg('b.000001', 40, 50, T0)];
    expect(planCompaction(listing(refs), now).merges.map((m) => `${m.start}-${m.end}@L${m.level}`)).toEqual(['0-10@L1', '20-30@L1', '30-40@L2', '40-50@L1']);
  });

  it('cleans a crashed run: superseded sources (manifest, then data) and uncommitted merged data; leaves level-0 data outside merged objects to prune', () => {
    const refs = [seg('b.000001', 0, 10, T0), seg('b.000001', 10, 20, T0), seg('b.000001', 0, 20, T0, 1, T0)];
    const uncommitted = 'shop/binlog/b.000001/000000000020-000000000040.L1-20261101T001000Z.binlog.zst';
    const inFlight = 'shop/binlog/b.000001/000000000040-000000000050.binlog.zst';
    const sourceData = 'shop/binlog/b.000001/000000000005-000000000010.binlog.zst'; // hypothetical, inside the L1
    const plan = planCompaction(listing(refs, [uncommitted, inFlight, sourceData]), T0 + 30 * MIN);
    expect(plan.merges).toEqual([]);
    expect(plan.removals.map((r) => [r.manifestKey ?? null, r.dataKeys, r.coveredBy?.level ?? null])).toEqual([
      ['shop/binlog/b.000001/000000000000-000000000010.json', ['shop/binlog/b.000001/000000000000-000000000010.binlog.zst'], 1],
      ['shop/binlog/b.000001/000000000010-000000000020.json', ['shop/binlog/b.000001/000000000010-000000000020.binlog.zst'], 1],
      [null, [uncommitted], null],
      [null, [sourceData], 1],
    ]);
  });
});

describe('mergeGtids', () => {
  it('keeps, per domain, the first (or last) GTID in order', () => {
    const positions = ['0-1-5', null, '0-1-9,1-2-3', '1-2-7'];
    expect(mergeGtids(positions, false)).toBe('0-1-5,1-2-3');
    expect(mergeGtids(positions, true)).toBe('0-1-9,1-2-7');
    expect(mergeGtids([null, null], true)).toBeNull();
  });
});
