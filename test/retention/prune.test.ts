// prune against real local storage, in-process: orphans, the lock (held, stale, exit code), and
// crash safety — a prune that dies after any number of deletions leaves every backup that is
// still listed complete (manifest first, then data).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { commitManifest } from '../../src/catalog/catalog.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { backupPrefix, dumpKey, newBackupId } from '../../src/catalog/keys.ts';
import { MANIFEST_FORMAT, PLAIN_MANIFEST_VERSION, type Manifest } from '../../src/catalog/manifest.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { AgentError, ExitCode } from '../../src/errors.ts';
import { acquireLock, lockKey } from '../../src/retention/lock.ts';
import { findOrphans, prune } from '../../src/retention/prune.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { testDir } from '../helpers.ts';

const logger = pino({ level: 'silent' });

function database(retention: string): DatabaseConfig {
  const config = parseConfig(`storage: { type: local, path: /unused }\ndatabases:\n  - name: shop\n    retention: ${retention}\n`, 'c', {});
  const db = config.databases[0];
  if (!db) throw new Error('no database');
  return db;
}

/** Stores a backup (data object + manifest) as the agent would, started at `iso`. */
async function storeBackup(storage: StorageDriver, iso: string, trigger: Manifest['trigger'] = 'periodic'): Promise<Manifest> {
  const started = new Date(iso);
  const id = newBackupId(started);
  const data = Buffer.from(`-- dump of ${iso}\n`);
  const key = dumpKey('shop', id, '');
  await storage.put(key, Readable.from([data]));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: PLAIN_MANIFEST_VERSION,
    id,
    database: 'shop',
    type: 'dump',
    trigger,
    status: 'completed',
    startedAt: started.toISOString(),
    completedAt: started.toISOString(),
    sizeBytes: data.length,
    rawSizeBytes: data.length,
    compression: { algorithm: 'none', level: 0 },
    encryption: null,
    schemas: ['shop'],
    objects: [{ key, role: 'data', sizeBytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), compression: 'none', rawSizeBytes: data.length }],
    binlog: null,
    server: { flavor: 'mariadb', version: '10.11', serverId: 1, hostname: 'h' },
    tool: { name: 'mariadb-dump', version: 'x' },
    agent: { version: '0', hostname: 'h' },
  };
  await commitManifest(storage, manifest);
  return manifest;
}

const options = (dryRun = false) => ({ timeZone: 'UTC', orphanGraceMs: 3_600_000, lockTtlMs: 60_000, dryRun, logger });

async function tenDays(storage: StorageDriver): Promise<Manifest[]> {
  const out: Manifest[] = [];
  for (let day = 1; day <= 10; day++) out.push(await storeBackup(storage, `2026-11-${String(day).padStart(2, '0')}T01:00:00Z`));
  return out;
}

describe('prune', () => {
  it('removes exactly what the dry run said, manifest and data', async () => {
    const storage = new LocalDriver(await testDir('prune-exact'));
    const backups = await tenDays(storage);
    const db = database('{ keep_last: 3 }');
    const dry = await prune(storage, db, options(true));
    expect(dry.outcome).toBeUndefined();
    expect(dry.plan.remove.map((m) => m.id)).toEqual(backups.slice(0, 7).reverse().map((m) => m.id));
    expect(dry.plan.keep.map((k) => k.reasons)).toEqual([['last', 'newest successful'], ['last'], ['last']]);

    const real = await prune(storage, db, options());
    expect(real.outcome?.removed).toEqual(dry.plan.remove.map((m) => m.id));
    expect((await listBackups(storage, 'shop')).backups.map((b) => b.id)).toEqual(backups.slice(7).reverse().map((m) => m.id));
    for (const removed of backups.slice(0, 7)) expect(await storage.stat(removed.objects[0]?.key ?? '')).toBeUndefined();
    expect(await storage.stat(lockKey('shop'))).toBeUndefined();
  });

  it('a prune that dies after any number of deletions leaves every listed backup complete', async () => {
    // 7 backups to remove × (manifest + data) = 14 deletions: die after 0, 1, …, 13 of them.
    for (let failAfter = 0; failAfter < 14; failAfter++) {
      const real = new LocalDriver(await testDir(`prune-crash-${failAfter}`));
      await tenDays(real);
      let deletions = 0;
      // Fault injection on a real store: delete N works, then the process "dies".
      const dying: StorageDriver = {
        location: real.location,
        put: (key, body, opts) => real.put(key, body, opts),
        get: (key, opts) => real.get(key, opts),
        stat: (key) => real.stat(key),
        list: (prefix) => real.list(prefix),
        putIfAbsent: (key, data) => real.putIfAbsent(key, data),
        listPrefixes: (prefix) => real.listPrefixes(prefix),
        conditionalWrites: real.conditionalWrites,
        delimiterListing: real.delimiterListing,
        close: () => real.close(),
        getVersioned: (key) => real.getVersioned(key),
        putIfMatch: (key, data, version) => real.putIfMatch(key, data, version),
        deleteIfMatch: (key, version) => real.deleteIfMatch(key, version),
        abortIncompleteUploads: (prefix, before, spare) => real.abortIncompleteUploads(prefix, before, spare),
        delete: async (key: string) => {
          if (key !== lockKey('shop') && deletions++ >= failAfter) throw new Error('killed');
          return real.delete(key);
        },
      };
      await expect(prune(dying, database('{ keep_last: 3 }'), options())).rejects.toThrow(/killed/);
      const { backups, unreadable } = await listBackups(real, 'shop');
      expect(unreadable).toEqual([]);
      for (const b of backups) {
        const object = b.objects[0];
        expect(await text(await real.get(object?.key ?? ''))).toBe(`-- dump of ${b.startedAt.replace('.000Z', 'Z')}\n`);
      }
      // The next prune finishes the job and clears what the dead one left behind.
      await real.delete(lockKey('shop'));
      const next = await prune(real, database('{ keep_last: 3 }'), { ...options(), orphanGraceMs: 0 });
      expect((await listBackups(real, 'shop')).backups).toHaveLength(3);
      expect(next.outcome?.orphansRemoved.length).toBeLessThanOrEqual(1);
    }
  });

  it('removes temp files of writers that crashed, once older than the grace period', async () => {
    const root = await testDir('prune-partials');
    const storage = new LocalDriver(root);
    const [first] = await tenDays(storage);
    const dir = join(root, backupPrefix('shop', first?.id ?? ''));
    await writeFile(join(dir, 'dump.sql.zst.0123456789ab.partial'), 'crashed');
    await utimes(join(dir, 'dump.sql.zst.0123456789ab.partial'), new Date('2026-01-01'), new Date('2026-01-01'));
    await writeFile(join(dir, 'dump.sql.zst.ba9876543210.partial'), 'still writing');
    const result = await prune(storage, database('{}'), options());
    expect(result.outcome?.uploadsAborted).toEqual([`shop/backups/${first?.id}/dump.sql.zst.0123456789ab.partial`]);
    expect(existsSync(join(dir, 'dump.sql.zst.ba9876543210.partial'))).toBe(true);
    expect(existsSync(join(dir, 'dump.sql.zst.0123456789ab.partial'))).toBe(false);
    expect(result.outcome?.removed).toEqual([]); // an empty policy deletes nothing
  });

  it('removes orphans older than the grace period, and nothing else unknown', () => {
    const now = new Date('2026-11-21T12:00:00Z');
    const old = new Date('2026-11-20T00:00:00Z');
    const fresh = new Date('2026-11-21T11:59:00Z');
    const objects = [
      { key: 'shop/20261101T010000.000Z-aaaaaa/dump.sql.zst', size: 1, modifiedAt: old }, // has a manifest
      { key: 'shop/20261101T010000.000Z-aaaaaa/manifest.json', size: 1, modifiedAt: old },
      { key: 'shop/20261102T010000.000Z-bbbbbb/dump.sql.zst', size: 1, modifiedAt: old }, // orphan
      { key: 'shop/20261121T115900.000Z-cccccc/dump.sql.zst', size: 1, modifiedAt: fresh }, // upload may be running
      { key: 'shop/prune.lock', size: 1, modifiedAt: old },
      { key: 'shop/notes.txt', size: 1, modifiedAt: old },
      { key: 'other/20261102T010000.000Z-bbbbbb/dump.sql.zst', size: 1, modifiedAt: old },
    ];
    expect(findOrphans(objects, 'shop', new Set(['20261101T010000.000Z-aaaaaa']), now, 3_600_000).map((o) => o.key)).toEqual([
      'shop/20261102T010000.000Z-bbbbbb/dump.sql.zst',
    ]);
  });
});

describe('the prune lock', () => {
  it('a held lock refuses a second prune with a clear message and exit code 3; nothing is removed', async () => {
    const storage = new LocalDriver(await testDir('prune-locked'));
    await tenDays(storage);
    const held = await acquireLock(storage, { database: 'shop', purpose: 'prune', ttlMs: 60_000 });
    const err = await prune(storage, database('{ keep_last: 1 }'), options()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).exitCode).toBe(ExitCode.locked);
    expect((err as AgentError).message).toMatch(/^database shop is locked: prune by .+ \(pid \d+\) since /);
    expect((err as AgentError).hint).toMatch(/if that process is gone, the lock expires at /);
    expect((await listBackups(storage, 'shop')).backups).toHaveLength(10);
    await held.release();
    expect(await storage.stat(lockKey('shop'))).toBeUndefined();
  });

  it('a stale lock (expired) is taken over', async () => {
    const root = await testDir('prune-stale');
    const storage = new LocalDriver(root);
    await tenDays(storage);
    await writeFile(join(root, 'shop', 'prune.lock'), JSON.stringify({ owner: 'dead', host: 'old', pid: 1, purpose: 'prune', acquiredAt: '2026-01-01T00:00:00Z', expiresAt: '2026-01-01T00:10:00Z' }));
    const result = await prune(storage, database('{ keep_last: 1 }'), options());
    expect(result.outcome?.removed).toHaveLength(9);
  });

  it('of two concurrent prunes, at most one deletes; together they remove each backup once', async () => {
    const storage = new LocalDriver(await testDir('prune-concurrent'));
    await tenDays(storage);
    const results = await Promise.allSettled([prune(storage, database('{ keep_last: 2 }'), options()), prune(storage, database('{ keep_last: 2 }'), options())]);
    const removed = results.flatMap((r) => (r.status === 'fulfilled' ? (r.value.outcome?.removed ?? []) : []));
    expect(new Set(removed).size).toBe(removed.length);
    expect((await listBackups(storage, 'shop')).backups).toHaveLength(2);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as AgentError).kind).toBe('locked');
  });
});
