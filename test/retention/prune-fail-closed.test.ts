// prune on a real local store, in-process: it deletes nothing of a database it cannot fully read
// (an unreadable manifest, a manifest of a newer format, a listing or a stat that fails), it never
// counts a backup whose data is gone, and its summary counts every kind of thing it removed.
import { existsSync } from 'node:fs';
import { unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { listBackups } from '../../src/catalog/listing.ts';
import { backupPrefix, manifestKey } from '../../src/catalog/keys.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { summaryLine } from '../../src/cli/prune.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { AgentError } from '../../src/errors.ts';
import { findOrphans, prune } from '../../src/retention/prune.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { testDir } from '../helpers.ts';
import { storeBackup } from './stored-backups.ts';

const logger = pino({ level: 'silent' });
const options = (dryRun = false) => ({ timeZone: 'UTC', orphanGraceMs: 0, lockTtlMs: 60_000, dryRun, logger });

function database(retention: string): DatabaseConfig {
  const config = parseConfig(`storage: { type: local, path: /unused }\ndatabases:\n  - name: shop\n    retention: ${retention}\n`, 'c', {});
  const db = config.databases[0];
  if (!db) throw new Error('no database');
  return db;
}

async function fiveDays(root: string): Promise<{ storage: LocalDriver; backups: Manifest[] }> {
  const storage = new LocalDriver(root);
  const backups: Manifest[] = [];
  for (let day = 1; day <= 5; day++) backups.push(await storeBackup(storage, `2026-11-0${day}T01:00:00Z`));
  return { storage, backups };
}

/** A named fault-injecting double: the real store, with some methods replaced. */
function withFaults(real: StorageDriver, faults: Partial<StorageDriver>): StorageDriver {
  return new Proxy(real, {
    get(target, prop, receiver) {
      if (prop in faults) return faults[prop as keyof StorageDriver];
      const value: unknown = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

const failure = async (work: Promise<unknown>): Promise<AgentError> => {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AgentError);
  return err as AgentError;
};

describe('prune fails closed on what it cannot read', () => {
  it('a manifest that is not JSON: nothing removed (its data neither, past orphan_grace), exit 1, and why', async () => {
    const root = await testDir('prune-corrupt');
    const { storage, backups } = await fiveDays(root);
    const bad = backups[2] as Manifest;
    await writeFile(join(root, manifestKey('shop', bad.id)), '{"format": "backup-agent/manif');
    for (const dryRun of [true, false]) {
      const err = await failure(prune(storage, database('{ keep_last: 1 }'), options(dryRun)));
      expect(err.kind).toBe('integrity');
      expect(err.exitCode).toBe(1);
      expect(err.message).toMatch(new RegExp(`^prune database shop: cannot read 1 manifest \\(shop/backups/${bad.id}/manifest\\.json: manifest is not JSON: .+\\); nothing was removed$`));
      expect(err.hint).toMatch(/^repair or remove the unreadable manifest by hand/);
    }
    expect((await listBackups(storage, 'shop')).backups).toHaveLength(4);
    for (const b of backups) expect(existsSync(join(root, b.objects[0]?.key ?? ''))).toBe(true);
  });

  it('a manifest naming objects outside its own folder (another backup, a path with ..) is unreadable: it makes prune delete nothing', async () => {
    const root = await testDir('prune-foreign-keys');
    const { storage, backups } = await fiveDays(root);
    const kept = backups[4] as Manifest;
    const edited = backups[0] as Manifest;
    for (const key of [kept.objects[0]?.key ?? '', `${backupPrefix('shop', edited.id)}../${kept.id}/dump.sql.zst`]) {
      const bad = { ...edited, objects: [{ ...(edited.objects[0] as Manifest['objects'][number]), key }] };
      await writeFile(join(root, manifestKey('shop', edited.id)), JSON.stringify(bad));
      const err = await failure(prune(storage, database('{ keep_last: 1 }'), options()));
      expect(err.message).toContain(`cannot read 1 manifest (shop/backups/${edited.id}/manifest.json: manifest is invalid at objects.0.key: ${key} is not in the folder of backup shop/${edited.id})`);
    }
    for (const b of backups) expect(existsSync(join(root, b.objects[0]?.key ?? ''))).toBe(true);
  });

  it('a manifest of a newer format version is left alone and named; the database is not pruned', async () => {
    const root = await testDir('prune-newer');
    const { storage, backups } = await fiveDays(root);
    const newer = backups[4] as Manifest;
    await writeFile(join(root, manifestKey('shop', newer.id)), JSON.stringify({ ...newer, version: 4, somethingNew: true }));
    const err = await failure(prune(storage, database('{ keep_last: 1 }'), options()));
    expect(err.message).toBe(`prune database shop: 1 manifest written by a newer agent (format version 4; this agent reads 3): shop/backups/${newer.id}/manifest.json; nothing was removed`);
    expect(err.hint).toBe('upgrade this agent: it leaves backups of a newer format alone and does not guess what they need');
    for (const b of backups) expect(existsSync(join(root, b.objects[0]?.key ?? ''))).toBe(true);
    expect(existsSync(join(root, manifestKey('shop', newer.id)))).toBe(true);
  });

  it('a stat that fails (not "not found") stops the database: its data may be there', async () => {
    const { storage, backups } = await fiveDays(await testDir('prune-stat-fails'));
    // A named double around the real store: its listing misses one data object (as one taken
    // while a backup commits can), and the stat that then checks it answers 503.
    const flaky = withFaults(storage, {
      list: async function* (prefix: string) {
        for await (const o of storage.list(prefix)) if (o.key !== backups[4]?.objects[0]?.key) yield o;
      },
      stat: async (key: string) => {
        if (key === backups[4]?.objects[0]?.key) throw Object.assign(new Error('Service Unavailable'), { $metadata: { httpStatusCode: 503 } });
        return storage.stat(key);
      },
    });
    const err = await failure(prune(flaky, database('{ keep_last: 1 }'), options()));
    expect(err.kind).toBe('storage');
    expect(err.message).toBe(`prune database shop: cannot tell whether the data of 1 backup is there (${backups[4]?.id}: stat ${backups[4]?.objects[0]?.key} in ${storage.location}: Service Unavailable); nothing was removed`);
    expect((await listBackups(storage, 'shop')).backups).toHaveLength(5);
  });

  it('a listing that fails stops the database', async () => {
    const { storage } = await fiveDays(await testDir('prune-list-fails'));
    const broken = withFaults(storage, {
      list: async function* () {
        throw new Error('connection reset');
      },
    });
    const err = await failure(prune(broken, database('{ keep_last: 1 }'), options()));
    // Whichever listing comes first (the leases, then the backups) stops the database.
    expect(err.message).toMatch(/^list (backups|the leases of shop) in .+: connection reset$/);
    expect((await listBackups(storage, 'shop')).backups).toHaveLength(5);
  });

  it('a data object next to a listed manifest key is never an orphan, even when its manifest was not read', () => {
    const old = new Date('2026-11-01T00:00:00Z');
    const objects = [
      { key: 'shop/20261101T010000.000Z-aaaaaa/dump.sql.zst', size: 1, modifiedAt: old },
      { key: 'shop/20261101T010000.000Z-aaaaaa/manifest.json', size: 1, modifiedAt: old },
    ];
    expect(findOrphans(objects, 'shop', new Set(), new Date('2026-11-21T00:00:00Z'), 0)).toEqual([]);
  });
});

describe('a backup whose data is gone does not count', () => {
  it('the newest backup without its data: prune keeps the newest restorable one as "newest successful" and says why', async () => {
    const root = await testDir('prune-data-gone');
    const { storage, backups } = await fiveDays(root);
    const [, , , restorable, newest] = backups as [Manifest, Manifest, Manifest, Manifest, Manifest];
    await unlink(join(root, newest.objects[0]?.key ?? ''));
    const { plan, outcome } = await prune(storage, database('{ keep_last: 1 }'), options());
    expect(plan.keep.map((k) => [k.manifest.id, k.reasons])).toEqual([
      [newest.id, [`not restorable (data object ${newest.objects[0]?.key} is missing): kept, not counted`]],
      [restorable.id, ['last', 'newest successful']],
    ]);
    expect(plan.unrestorable.map((u) => u.manifest.id)).toEqual([newest.id]);
    expect(outcome?.removed).toEqual(backups.slice(0, 3).reverse().map((b) => b.id));
    expect(existsSync(join(root, restorable.objects[0]?.key ?? ''))).toBe(true);
    expect(summaryLine(plan, outcome, false)).toBe('shop: keeping 2 backups (1 of them cannot be restored); removed 3 backups');
  });

  it('a short data object counts as missing', async () => {
    const root = await testDir('prune-data-short');
    const { storage, backups } = await fiveDays(root);
    const newest = backups[4] as Manifest;
    await writeFile(join(root, newest.objects[0]?.key ?? ''), '-- cut');
    const { plan } = await prune(storage, database('{ keep_last: 1 }'), options(true));
    expect(plan.unrestorable.map((u) => u.problem)).toEqual([`data object ${newest.objects[0]?.key} is 6 bytes, the manifest says ${newest.objects[0]?.sizeBytes}`]);
    expect(plan.keep.find((k) => k.reasons.includes('newest successful'))?.manifest.id).toBe(backups[3]?.id);
  });
});

describe('the summary counts every kind of thing removed', () => {
  it('backups, orphaned objects and unfinished uploads (it said "removed 0")', async () => {
    const root = await testDir('prune-summary');
    const { storage, backups } = await fiveDays(root);
    const dir = join(root, backupPrefix('shop', backups[4]?.id ?? ''));
    await writeFile(join(dir, 'dump.sql.zst.0123456789ab.partial'), 'crashed');
    await utimes(join(dir, 'dump.sql.zst.0123456789ab.partial'), new Date('2026-01-01'), new Date('2026-01-01'));
    // Data whose manifest is gone: an orphan.
    const abandoned = await storeBackup(storage, '2026-10-01T01:00:00Z');
    await unlink(join(root, manifestKey('shop', abandoned.id)));
    const { plan, outcome } = await prune(storage, database('{}'), { ...options(), orphanGraceMs: 0 });
    expect(outcome?.removed).toEqual([]);
    expect(summaryLine(plan, outcome, false)).toBe('shop: keeping 5 backups; removed 1 orphaned object, 1 unfinished upload');
    const dry = await prune(storage, database('{ keep_last: 2 }'), options(true));
    expect(summaryLine(dry.plan, undefined, true)).toBe('shop: keeping 2 backups; would remove 3 backups (dry run)');
    const none = await prune(storage, database('{}'), options());
    expect(summaryLine(none.plan, none.outcome, false)).toBe('shop: keeping 5 backups; removed nothing');
  });
});
