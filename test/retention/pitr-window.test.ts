// pitr_window and binlog retention, pure: which base a window needs, and which binlog files go.
import { describe, expect, it } from 'vitest';
import { segmentManifestKey, type SegmentRef } from '../../src/binlog/segments.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { parseCalendarDuration } from '../../src/config/duration.ts';
import { applyRetention, pitrBase, type RetentionItem } from '../../src/retention/policy.ts';
import { findOrphans, planBinlogRetention } from '../../src/retention/prune.ts';

const day = (n: number) => new Date(Date.UTC(2026, 10, n, 3, 0, 0));
const base = (id: string, n: number, withBinlog = true): RetentionItem => ({
  id,
  time: day(n),
  trigger: 'periodic',
  kind: 'dump',
  family: 'logical',
  dependsOn: [],
  pitrBaseAt: withBinlog ? new Date(day(n).getTime() + 60_000) : undefined,
});

describe('pitr_window: the base for the window start', () => {
  const items = [base('d21', 21), base('d19', 19), base('d15', 15, false), base('d14', 14), base('d10', 10)];

  it('is the newest base at or before now − window, and is kept with that reason', () => {
    const now = new Date(Date.UTC(2026, 10, 21, 12));
    expect(pitrBase(items, new Date(Date.UTC(2026, 10, 14, 12)))).toMatchObject({ item: { id: 'd14' }, covers: true });
    const result = applyRetention(items, { periodic: { last: 1 }, manual: {}, pitrWindow: parseCalendarDuration('7d') }, 'UTC', now);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['d21', ['last', 'newest successful']],
      ['d14', ['pitr_window 7d base']],
    ]);
  });

  it('skips backups without binlog coordinates; when all bases are newer, keeps the oldest and says so', () => {
    expect(pitrBase(items, new Date(Date.UTC(2026, 10, 15, 12)))?.item.id).toBe('d14');
    expect(pitrBase(items, new Date(Date.UTC(2026, 10, 1)))).toMatchObject({ item: { id: 'd10' }, covers: false });
    const result = applyRetention(items, { periodic: { last: 1 }, manual: {}, pitrWindow: parseCalendarDuration('1mo') }, 'UTC', new Date(Date.UTC(2026, 10, 21, 12)));
    expect(result.keep.find((k) => k.item.id === 'd10')?.reasons).toEqual(['pitr_window 1mo base (oldest; the window reaches further back)']);
  });

  it('keeps nothing extra without a window', () => {
    expect(applyRetention(items, { periodic: { last: 1 }, manual: {} }, 'UTC', new Date()).keep).toHaveLength(1);
  });
});

describe('planBinlogRetention', () => {
  const manifest = (id: string, file: string | null) => ({ id, type: 'dump', binlog: file ? { file, position: 4, gtid: null } : null }) as Manifest;
  const seg = (file: string, start: number, end: number): SegmentRef => ({ file, start, end, key: segmentManifestKey('shop', file, start, end) });
  const segments = [seg('mysql-bin.000007', 0, 10), seg('mysql-bin.000007', 10, 20), seg('mysql-bin.000008', 0, 5), seg('mysql-bin.000009', 0, 5), seg('mysql-bin.000010', 0, 5)];

  it('without a window keeps binlog from the oldest kept backup with coordinates', () => {
    const keep = [{ manifest: manifest('new', 'mysql-bin.000010'), reasons: ['last'] }, { manifest: manifest('old', 'mysql-bin.000009'), reasons: ['daily'] }, { manifest: manifest('nocoords', null), reasons: ['weekly'] }];
    expect(planBinlogRetention(keep, segments, false)).toEqual({
      keepFrom: 'mysql-bin.000009',
      reason: 'binlog from mysql-bin.000009 on: dump old starts there (the oldest kept backup with binlog coordinates)',
      remove: [
        { file: 'mysql-bin.000007', segments: 2 },
        { file: 'mysql-bin.000008', segments: 1 },
      ],
    });
  });

  it('with a window keeps binlog from the window base, even when older backups are kept for other rules', () => {
    const keep = [
      { manifest: manifest('new', 'mysql-bin.000010'), reasons: ['last'] },
      { manifest: manifest('pitr', 'mysql-bin.000008'), reasons: ['pitr_window 7d base'] },
      { manifest: manifest('monthly', 'mysql-bin.000001'), reasons: ['monthly'] },
    ];
    const plan = planBinlogRetention(keep, segments, true);
    expect(plan.keepFrom).toBe('mysql-bin.000008');
    expect(plan.remove).toEqual([{ file: 'mysql-bin.000007', segments: 2 }]);
  });

  it('keeps the whole archive when no kept backup can use it', () => {
    expect(planBinlogRetention([{ manifest: manifest('x', null), reasons: ['last'] }], segments, false)).toMatchObject({ keepFrom: null, remove: [] });
  });
});

describe('findOrphans: binlog segment data without its manifest', () => {
  it('is an orphan once older than the grace; with its manifest it is not', () => {
    const old = new Date('2026-11-01T00:00:00Z');
    const o = (key: string) => ({ key, size: 1, modifiedAt: old });
    const objects = [
      o('shop/binlog/mysql-bin.000001/000000000000-000000000947.binlog.zst'),
      o('shop/binlog/mysql-bin.000001/000000000000-000000000947.json'),
      o('shop/binlog/mysql-bin.000001/000000000947-000000001186.binlog.zst'),
    ];
    const orphans = findOrphans(objects, 'shop', new Set(), new Date('2026-11-21T00:00:00Z'), 86_400_000);
    expect(orphans.map((x) => x.key)).toEqual(['shop/binlog/mysql-bin.000001/000000000947-000000001186.binlog.zst']);
    expect(findOrphans(objects, 'shop', new Set(), new Date('2026-11-01T01:00:00Z'), 86_400_000)).toEqual([]);
  });
});
