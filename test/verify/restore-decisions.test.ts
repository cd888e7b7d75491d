// The pure decisions of `agent verify --depth restore`: the disk one datadir needs, the refusal
// when there is less, and whether the figures recorded at backup time are compared.
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { datadirEstimate, EMPTY_DATADIR_BYTES, figuresReplayTarget, figuresVerdict, spaceRefusal } from '../../src/verify/restore-decisions.ts';

const MiB = 1024 ** 2;
const SELF_ONLY = 'its tables were checked against themselves only (CHECK TABLE, CHECKSUM TABLE, row counts)';

describe('datadirEstimate', () => {
  it("counts a dump's SQL twice (pages and indexes) and a physical chain's raw bytes once, over an empty datadir", () => {
    expect(datadirEstimate([{ type: 'dump', rawSizeBytes: 100 * MiB }])).toBe(EMPTY_DATADIR_BYTES + 200 * MiB);
    expect(
      datadirEstimate([
        { type: 'full', rawSizeBytes: 500 * MiB },
        { type: 'incremental', rawSizeBytes: 20 * MiB },
        { type: 'incremental', rawSizeBytes: 30 * MiB },
      ]),
    ).toBe(EMPTY_DATADIR_BYTES + 550 * MiB);
  });
});

describe('spaceRefusal', () => {
  it('refuses with the path, the bytes needed and the bytes free', () => {
    expect(spaceRefusal({ path: '/tmp', needed: 3 * MiB, free: MiB })).toBe(
      'not enough free disk space in /tmp for the throwaway datadir: about 3145728 bytes needed (3.0 MiB), 1048576 bytes free (1.0 MiB)',
    );
  });

  it('allows exactly enough and more', () => {
    expect(spaceRefusal({ path: '/tmp', needed: MiB, free: MiB })).toBeUndefined();
    expect(spaceRefusal({ path: '/tmp', needed: MiB, free: 2 * MiB })).toBeUndefined();
  });
});

describe('figuresVerdict', () => {
  const binlog = { file: 'mysql-bin.000003', position: 1000, gtid: '0-1-7' };
  const figures = {
    method: 'consistent-snapshot',
    at: { ...binlog },
    takenAt: '2026-12-01T10:00:00.000Z',
    tables: [
      { schema: 'shop', table: 'orders', rows: 1000, checksum: '42' },
      { schema: 'shop', table: 'empty', rows: 0, checksum: null },
    ],
  };
  const backup = (over: Partial<Pick<Manifest, 'binlog' | 'figures'>> = {}): Pick<Manifest, 'id' | 'binlog' | 'figures'> => ({ id: 'B1', binlog, figures, ...over });

  it('compares when the figures were taken at the backup’s own binlog position', () => {
    expect(figuresVerdict(backup(), 'none')).toEqual({
      compare: true,
      recorded: new Map([
        ['shop.orders', { rows: 1000, checksum: '42' }],
        ['shop.empty', { rows: 0, checksum: null }],
      ]),
    });
  });

  it('does not compare figures of another point, and says which two points', () => {
    expect(figuresVerdict(backup({ figures: { ...figures, at: { file: 'mysql-bin.000003', position: 1234, gtid: '0-1-8' } } }), 'none')).toEqual({
      compare: false,
      notice: `the figures recorded with backup B1 were not compared: they describe binlog position mysql-bin.000003:1234, the backup mysql-bin.000003:1000 (transactions committed between the two snapshots); ${SELF_ONLY}`,
    });
  });

  it('does not compare after a binlog replay, without the backup’s position, or by an unknown method', () => {
    expect(figuresVerdict(backup(), 'to-end')).toEqual({ compare: false, notice: `the figures recorded with backup B1 were not compared: they describe the backup's point, and the binlog was replayed past it; ${SELF_ONLY}` });
    expect(figuresVerdict(backup({ binlog: null }), 'none')).toEqual({ compare: false, notice: `the figures recorded with backup B1 were not compared: the backup records no binlog position to match them with; ${SELF_ONLY}` });
    expect(figuresVerdict(backup({ figures: { ...figures, method: 'sampled' } }), 'none')).toEqual({
      compare: false,
      notice: `the figures recorded with backup B1 were not compared: they were taken by a method this agent does not know (sampled); ${SELF_ONLY}`,
    });
  });

  it('compares figures of a later point once the binlog was replayed exactly to it', () => {
    const later = backup({ figures: { ...figures, at: { file: 'mysql-bin.000003', position: 1234, gtid: '0-1-8' } } });
    expect(figuresVerdict(later, 'to-figures')).toMatchObject({ compare: true });
  });

  it('says when none were recorded', () => {
    expect(figuresVerdict({ id: 'B1', binlog }, 'none')).toEqual({ compare: false, notice: `backup B1 has no figures recorded at backup time: ${SELF_ONLY}` });
  });
});

describe('figuresReplayTarget', () => {
  const binlog = { file: 'mysql-bin.000003', position: 1000, gtid: '0-1-7' };
  const figures = (at: { file: string; position: number; gtid: string | null }) => ({ method: 'consistent-snapshot', at, takenAt: '2026-12-01T10:00:00.000Z', tables: [] });

  it("is the figures' GTID when they were taken after the backup", () => {
    expect(figuresReplayTarget({ binlog, figures: figures({ file: 'mysql-bin.000003', position: 1500, gtid: '0-1-9' }) })).toEqual({
      kind: 'gtid',
      gtid: { domain: 0, serverId: 1, sequence: 9n },
      text: '0-1-9',
    });
  });

  it('is none at the same point, without a GTID, with several domains, a MySQL GTID set, or no figures', () => {
    expect(figuresReplayTarget({ binlog, figures: figures({ ...binlog }) })).toBeUndefined();
    expect(figuresReplayTarget({ binlog, figures: figures({ file: 'mysql-bin.000003', position: 1500, gtid: null }) })).toBeUndefined();
    expect(figuresReplayTarget({ binlog, figures: figures({ file: 'mysql-bin.000003', position: 1500, gtid: '0-1-9,1-1-3' }) })).toBeUndefined();
    expect(figuresReplayTarget({ binlog, figures: figures({ file: 'binlog.000002', position: 1500, gtid: '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5' }) })).toBeUndefined();
    expect(figuresReplayTarget({ binlog })).toBeUndefined();
    expect(figuresReplayTarget({ binlog: null, figures: figures({ file: 'mysql-bin.000003', position: 1500, gtid: '0-1-9' }) })).toBeUndefined();
  });
});
