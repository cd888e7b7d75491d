// The pure part of prune's lease handling: what live leases protect, at a given time.
import { describe, expect, it } from 'vitest';
import type { LeaseRecord } from '../../src/lease/lease.ts';
import { isProtectedKey, leaseProtection, type StoredLease } from '../../src/lease/leases.ts';

const now = new Date('2026-11-30T12:00:00Z');
const FULL = '20261128T010000.000Z-aaaaaa';
const INC1 = '20261129T010000.000Z-bbbbbb';
const RUNNING = '20261130T115900.000Z-cccccc';

function lease(key: string, expiresAt: string, extra: Partial<LeaseRecord> = {}): StoredLease {
  return {
    key,
    version: 'v',
    record: { owner: 'o', host: 'db1', pid: 10, purpose: 'backup', acquiredAt: '2026-11-30T11:59:00.000Z', expiresAt, ...extra },
  };
}

describe('leaseProtection', () => {
  const parents = new Map<string, string | null>([
    [FULL, null],
    [INC1, FULL],
  ]);

  it("a live incremental's lease protects its own keys, its parent and the parent's chain", () => {
    const p = leaseProtection([lease(`shop/leases/${RUNNING}.json`, '2026-11-30T12:10:00Z', { backup: { id: RUNNING, type: 'incremental', parent: INC1 } })], parents, now);
    expect([...p.running]).toEqual([RUNNING]);
    expect([...p.needed.entries()]).toEqual([
      [INC1, `base of running incremental ${RUNNING} (db1, pid 10)`],
      [FULL, `base of running incremental ${RUNNING} (db1, pid 10)`],
    ]);
    expect(p.stale).toEqual([]);
    expect(isProtectedKey(p, 'shop', `shop/${RUNNING}/backup.xbstream.zst`, now)).toBe(true);
    expect(isProtectedKey(p, 'shop', `shop/${INC1}/backup.xbstream.zst`, now)).toBe(false); // kept as a backup, not spared as an upload
    expect(isProtectedKey(p, 'shop', `other/${RUNNING}/backup.xbstream.zst`, now)).toBe(false); // another database's key
    // The same in the current layout (catalog/keys.ts), and the folder itself (local: a directory).
    expect(isProtectedKey(p, 'shop', `shop/backups/${RUNNING}/backup.xbstream.zst`, now)).toBe(true);
    expect(isProtectedKey(p, 'shop', `shop/backups/${RUNNING}/`, now)).toBe(true);
    expect(isProtectedKey(p, 'shop', `shop/backups/${INC1}/backup.xbstream.zst`, now)).toBe(false);
    expect(isProtectedKey(p, 'shop', 'shop/backups/', now)).toBe(false);
  });

  it('an expired lease protects nothing and is reported stale', () => {
    const expired = lease(`shop/leases/${RUNNING}.json`, '2026-11-30T11:59:59Z', { backup: { id: RUNNING, type: 'incremental', parent: INC1 } });
    const p = leaseProtection([expired], parents, now);
    expect(p.running.size).toBe(0);
    expect(p.needed.size).toBe(0);
    expect(p.stale).toEqual([expired]);
    expect(isProtectedKey(p, 'shop', `shop/${RUNNING}/backup.xbstream.zst`, now)).toBe(false);
  });

  it('a live binlog writer spares binlog written since it started; older leftovers are not spared', () => {
    const p = leaseProtection([lease('shop/leases/binlog.json', '2026-11-30T12:10:00Z', { purpose: 'binlog capture', acquiredAt: '2026-11-30T11:00:00.000Z' })], parents, now);
    const segment = 'shop/binlog/mysql-bin.000003/000000000004-000000001000.binlog.zst';
    expect(isProtectedKey(p, 'shop', segment, new Date('2026-11-30T11:30:00Z'))).toBe(true);
    expect(isProtectedKey(p, 'shop', segment, new Date('2026-11-30T10:30:00Z'))).toBe(false);
  });

  it('lease objects themselves are never orphans or uploads to abort', () => {
    const p = leaseProtection([], parents, now);
    expect(isProtectedKey(p, 'shop', 'shop/leases/binlog.json', now)).toBe(true);
    expect(isProtectedKey(p, 'shop', 'shop/leases/', now)).toBe(true);
  });
});
