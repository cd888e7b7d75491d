// The object-key layout: backup IDs and the keys built from them (pure functions).
import { describe, expect, it } from 'vitest';
import {
  backupIdTime,
  backupPrefix,
  backupsPrefix,
  CURRENT_LAYOUT_VERSION,
  databasePrefix,
  dumpKey,
  isBackupId,
  isPastLegacyKeys,
  LEGACY_LAYOUT_VERSION,
  manifestKey,
  newBackupId,
  parseBackupKey,
  parseManifestKey,
  physicalKey,
} from '../../src/catalog/keys.ts';

describe('newBackupId', () => {
  it('is YYYYMMDDTHHMMSS.mmmZ-<6 hex> in UTC', () => {
    const id = newBackupId(new Date('2026-03-07T04:05:06.789Z'), Buffer.from([0xab, 0x01, 0xff]));
    expect(id).toBe('20260307T040506.789Z-ab01ff');
    expect(isBackupId(id)).toBe(true);
  });

  it('ignores the local time zone of the machine', () => {
    // 23:30 on Dec 31 in UTC is already the next year in most zones east of UTC.
    expect(newBackupId(new Date(Date.UTC(2025, 11, 31, 23, 30, 0)), Buffer.from([0, 0, 0]))).toBe('20251231T233000.000Z-000000');
  });

  it('gets a random suffix by default', () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const ids = new Set(Array.from({ length: 50 }, () => newBackupId(now)));
    expect(ids.size).toBeGreaterThan(45);
    for (const id of ids) expect(id).toMatch(/^20260101T000000\.000Z-[0-9a-f]{6}$/);
  });

  it('IDs made at increasing times sort ascending as strings', () => {
    const start = Date.UTC(2026, 0, 1);
    // Steps from one second to years, across day, month and year boundaries; suffixes are random.
    const steps = [1, 999, 1_000, 59_000, 3_600_000, 86_400_000, 31 * 86_400_000, 400 * 86_400_000, 1_000];
    const times: number[] = [start];
    for (const step of steps) times.push((times.at(-1) ?? start) + step);
    const ids = times.map((t) => newBackupId(new Date(t)));
    expect([...ids].reverse().sort()).toEqual(ids);
    // …and with suffixes chosen to sort against time, the time still decides (to the millisecond).
    const adversarial = times.map((t, i) => newBackupId(new Date(t), Buffer.from([255 - i, 0, 0])));
    expect([...adversarial].reverse().sort()).toEqual(adversarial);
  });
});

describe('backupIdTime', () => {
  it('gives the time of the ID, to the millisecond', () => {
    const now = new Date('2026-07-15T12:34:56.999Z');
    expect(backupIdTime(newBackupId(now))?.toISOString()).toBe('2026-07-15T12:34:56.999Z');
  });

  it('round-trips for many times', () => {
    for (let t = Date.UTC(2000, 0, 1); t < Date.UTC(2040, 0, 1); t += 987_654_321_000 / 50) {
      const whole = Math.floor(t);
      expect(backupIdTime(newBackupId(new Date(whole)))?.getTime()).toBe(whole);
    }
  });

  it.each(['', 'nope', '20260101T000000.000Z', '20260101T000000.000Z-ABCDEF', '20260101T000000.000-abcdef', '20260101T000000.000Z-abcdef0', 'x20260101T000000.000Z-abcdef', '20260101T000000Z-abcdef', '20261301T000000.000Z-abcdef', '20260230T000000.000Z-abcdef'])(
    'is undefined for %j',
    (id) => {
      expect(backupIdTime(id)).toBeUndefined();
      expect(isBackupId(id)).toBe(false);
    },
  );
});

describe('key layout', () => {
  const id = '20260101T020304.000Z-a1b2c3';

  it('builds the documented keys', () => {
    expect(databasePrefix('shop')).toBe('shop/');
    expect(backupsPrefix('shop')).toBe('shop/backups/');
    expect(backupPrefix('shop', id)).toBe(`shop/backups/${id}/`);
    expect(manifestKey('shop', id)).toBe(`shop/backups/${id}/manifest.json`);
    expect(dumpKey('shop', id, '.zst')).toBe(`shop/backups/${id}/dump.sql.zst`);
    expect(physicalKey('shop', id, '')).toBe(`shop/backups/${id}/backup.xbstream`);
  });

  it('builds the keys of manifest version 1 (the legacy layout) when asked', () => {
    expect(backupPrefix('shop', id, LEGACY_LAYOUT_VERSION)).toBe(`shop/${id}/`);
    expect(manifestKey('shop', id, 1)).toBe(`shop/${id}/manifest.json`);
    expect(dumpKey('shop', id, '', 1)).toBe(`shop/${id}/dump.sql`);
    expect(manifestKey('shop', id, CURRENT_LAYOUT_VERSION)).toBe(manifestKey('shop', id));
  });

  it('parseManifestKey accepts both layouts and says which', () => {
    expect(parseManifestKey(`shop/${id}/manifest.json`)).toEqual({ database: 'shop', id, layout: 1 });
    expect(parseManifestKey(`shop/backups/${id}/manifest.json`)).toEqual({ database: 'shop', id, layout: 2 });
    expect(parseManifestKey(manifestKey('my-db.prod_1', id))).toEqual({ database: 'my-db.prod_1', id, layout: 2 });
  });

  it('parseBackupKey finds the backup of any key in a backup folder, and nothing else', () => {
    expect(parseBackupKey(`shop/backups/${id}/dump.sql.zst`)).toEqual({ database: 'shop', id, layout: 2, name: 'dump.sql.zst' });
    expect(parseBackupKey(`shop/${id}/dump.sql.zst`)).toEqual({ database: 'shop', id, layout: 1, name: 'dump.sql.zst' });
    expect(parseBackupKey(`shop/binlog/mysql-bin.000001/000000000004-000000000100.binlog`)).toBeUndefined();
    expect(parseBackupKey(`shop/leases/${id}.json`)).toBeUndefined();
    expect(parseBackupKey(`shop/backups/not-an-id/manifest.json`)).toBeUndefined();
    expect(parseBackupKey('shop/prune.lock')).toBeUndefined();
  });

  it('legacy keys sort before every other key of the database: a listing stops at the first one past them', () => {
    const keys = [`shop/${id}/manifest.json`, 'shop/backups/x', 'shop/binlog/x', 'shop/leases/x', 'shop/prune.lock', 'shop/.hidden', 'shop/-x'];
    expect(keys.filter((k) => !isPastLegacyKeys('shop', k))).toEqual([`shop/${id}/manifest.json`, 'shop/.hidden', 'shop/-x']);
    expect([...keys].sort().findIndex((k) => isPastLegacyKeys('shop', k))).toBe(3);
  });

  it.each([
    `shop/${id}/dump.sql.zst`,
    `shop/${id}/manifest.json.partial`,
    `shop/${id}/Manifest.json`,
    `shop/not-an-id/manifest.json`,
    `shop/20260101T020304Z-A1B2C3/manifest.json`,
    `/${id}/manifest.json`,
    `${id}/manifest.json`,
    `manifest.json`,
    `x/shop/${id}/manifest.json`,
    `shop/${id}/sub/manifest.json`,
    `shop/${id}/`,
    '',
  ])('parseManifestKey rejects %j', (key) => {
    expect(parseManifestKey(key)).toBeUndefined();
  });
});
