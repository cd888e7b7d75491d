// Both key layouts through the real drivers (local and s3rver): a store written the way agents
// before manifest version 2 wrote it (`<db>/<id>/…`) still lists, plans restores and prunes, and
// so does a store mixing both layouts, with incremental chains across them.
import { Readable } from 'node:stream';
import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { findBackup } from '../../src/catalog/catalog.ts';
import { checkData } from '../../src/catalog/data-check.ts';
import { backupPrefix, LEGACY_LAYOUT_VERSION, manifestKey } from '../../src/catalog/keys.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { Secret } from '../../src/config/secret.ts';
import { restoreChain } from '../../src/restore/chain.ts';
import { planPrune, prune } from '../../src/retention/prune.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { openStorage } from '../../src/storage/open.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { testDir, uniqueName } from '../helpers.ts';
import { storeBackup } from '../retention/stored-backups.ts';

const logger = pino({ level: 'silent' });

function database(retention: string): DatabaseConfig {
  const config = parseConfig(`storage: { type: local, path: /unused }\ndatabases:\n  - name: shop\n    retention: ${retention}\n`, 'c', {});
  const db = config.databases[0];
  if (!db) throw new Error('no database');
  return db;
}

const stores: [string, () => Promise<StorageDriver>][] = [
  ['local', async () => new LocalDriver(await testDir('layouts'))],
  [
    's3 (s3rver)',
    async () => {
      const bucket = uniqueName('bkt');
      await createS3Bucket(inject('s3').endpoint, bucket);
      return openStorage({
        type: 's3', bucket, prefix: 'p', endpoint: inject('s3').endpoint, force_path_style: true, region: 'us-east-1',
        access_key_id: new Secret('S3RVER'), secret_access_key: new Secret('S3RVER'), checksum: 'when_required',
        conditional_writes: false, delimiter_listing: false, part_size_mb: 5, upload_concurrency: 2,
      });
    },
  ],
];

const put = (storage: StorageDriver, key: string, body = 'x') => storage.put(key, Readable.from([Buffer.from(body)]));

/** A binlog archive and a lease next to the catalog: what a legacy listing must not walk. */
async function archiveBeside(storage: StorageDriver): Promise<string[]> {
  const keys: string[] = [];
  for (let i = 0; i < 30; i++) {
    const base = `shop/binlog/mysql-bin.000001/${String(i * 100 + 4).padStart(12, '0')}-${String(i * 100 + 100).padStart(12, '0')}`;
    keys.push(`${base}.binlog`, `${base}.json`);
  }
  for (const key of keys) await put(storage, key);
  return keys;
}

describe.each(stores)('a store written in the legacy layout (%s)', (_name, open) => {
  it('lists, plans restores and prunes; its listing stops before the binlog archive', async () => {
    const real = await open();
    const full = await storeBackup(real, '2026-11-01T02:00:00Z', { type: 'full', layout: 1 });
    const inc = await storeBackup(real, '2026-11-02T02:00:00Z', { type: 'incremental', parent: full, layout: 1 });
    const dumps = [];
    for (let day = 1; day <= 4; day++) dumps.push(await storeBackup(real, `2026-11-0${day}T01:00:00Z`, { layout: 1 }));
    await archiveBeside(real);
    expect(full.objects[0]?.key).toBe(`shop/${full.id}/backup.xbstream`);

    const storage = new CountingDriver(real);
    const listing = await listBackups(storage, 'shop');
    expect(listing.unreadable).toEqual([]);
    expect(listing.backups.map((b) => b.id).sort()).toEqual([full, inc, ...dumps].map((b) => b.id).sort());
    // 12 legacy keys, then the first key past the backup folders (a binlog key) ends the listing.
    expect(storage.listedKeys).toBe(12 + 1);
    expect(storage.calls.get('get')).toBe(6);
    // Data presence from the listing: not one stat.
    storage.reset();
    const data = await checkData(storage, listing.backups, listing.objects);
    expect([...data.values()].every((d) => d.state === 'present')).toBe(true);
    expect(storage.requests).toBe(0);

    expect(restoreChain(inc, listing.backups).map((m) => m.id)).toEqual([full.id, inc.id]);
    expect((await findBackup(real, 'shop', full.id)).id).toBe(full.id);
    expect((await findBackup(real, 'shop', undefined, ['dump'])).id).toBe(dumps[3]?.id);

    // An abandoned legacy upload (data, no manifest) is an orphan; keys next to a manifest are not.
    await put(real, `shop/20261001T010000.000Z-abcdef/dump.sql.zst`);
    await put(real, `shop/${dumps[3]?.id}/notes.txt`);
    const plan = await planPrune(real, database('{ keep_last: 2 }'), 'UTC', new Date(Date.now() + 86_400_000), 3_600_000);
    expect(plan.orphans.map((o) => o.key)).toEqual(['shop/20261001T010000.000Z-abcdef/dump.sql.zst']);

    const { outcome } = await prune(real, database('{ keep_last: 2 }'), { timeZone: 'UTC', orphanGraceMs: 0, lockTtlMs: 60_000, dryRun: false, logger });
    expect(outcome?.removed.sort()).toEqual([dumps[0]?.id, dumps[1]?.id].sort());
    for (const gone of [dumps[0], dumps[1]]) {
      expect(await real.stat(manifestKey('shop', gone?.id ?? '', LEGACY_LAYOUT_VERSION))).toBeUndefined();
      expect(await real.stat(gone?.objects[0]?.key ?? '')).toBeUndefined();
    }
    expect(outcome?.orphansRemoved).toEqual(['shop/20261001T010000.000Z-abcdef/dump.sql.zst']);
    expect(await real.stat(`shop/${dumps[3]?.id}/notes.txt`)).toBeDefined();
    expect((await listBackups(real, 'shop')).backups).toHaveLength(4);
  });
});

describe.each(stores)('a store mixing both layouts (%s)', (_name, open) => {
  it('lists both, chains an incremental onto a legacy full, and prunes neither layout as the other\'s orphans', async () => {
    const real = await open();
    const oldFull = await storeBackup(real, '2026-11-01T02:00:00Z', { type: 'full', layout: 1 });
    const oldDump = await storeBackup(real, '2026-11-01T01:00:00Z', { layout: 1 });
    const newInc = await storeBackup(real, '2026-11-02T02:00:00Z', { type: 'incremental', parent: oldFull });
    const newInc2 = await storeBackup(real, '2026-11-03T02:00:00Z', { type: 'incremental', parent: newInc });
    const newDump = await storeBackup(real, '2026-11-02T01:00:00Z');
    await archiveBeside(real);
    expect(newInc.objects[0]?.key).toBe(`${backupPrefix('shop', newInc.id)}backup.xbstream`);
    expect(newInc.version).toBe(2);

    const listing = await listBackups(real, 'shop');
    expect(listing.backups.map((b) => b.id)).toEqual([newInc2, newInc, newDump, oldFull, oldDump].map((b) => b.id));
    expect(restoreChain(newInc2, listing.backups).map((m) => m.id)).toEqual([oldFull.id, newInc.id, newInc2.id]);
    const data = await checkData(real, listing.backups, listing.objects);
    expect([...data.values()].every((d) => d.state === 'present')).toBe(true);

    // Orphans of both layouts go; a key in one layout's folder whose backup has its manifest in
    // the other layout stays, and so does anything next to a manifest.
    await put(real, 'shop/20261010T010000.000Z-aaaaaa/dump.sql');
    await put(real, 'shop/backups/20261010T010000.000Z-bbbbbb/dump.sql');
    await put(real, `shop/backups/${oldFull.id}/backup.xbstream`);
    await put(real, `shop/${newDump.id}/dump.sql`);
    await put(real, `${backupPrefix('shop', newDump.id)}extra.bin`);
    const plan = await planPrune(real, database('{}'), 'UTC', new Date(Date.now() + 86_400_000), 3_600_000);
    expect(plan.orphans.map((o) => o.key).sort()).toEqual(['shop/20261010T010000.000Z-aaaaaa/dump.sql', 'shop/backups/20261010T010000.000Z-bbbbbb/dump.sql']);
    expect(plan.remove).toEqual([]);

    // keep_last 1 per family: the legacy full stays as the base of the kept incremental chain.
    const { outcome } = await prune(real, database('{ keep_last: 1 }'), { timeZone: 'UTC', orphanGraceMs: 0, lockTtlMs: 60_000, dryRun: false, logger });
    expect(outcome?.removed).toEqual([oldDump.id]);
    expect(await real.stat(manifestKey('shop', oldDump.id, 1))).toBeUndefined();
    expect((await listBackups(real, 'shop')).backups.map((b) => b.id)).toEqual([newInc2, newInc, newDump, oldFull].map((b) => b.id));
    expect(await real.stat(`shop/backups/${oldFull.id}/backup.xbstream`)).toBeDefined();
  });

  it('finds a backup by ID in either layout, and says which are missing', async () => {
    const real = await open();
    const old = await storeBackup(real, '2026-11-01T01:00:00Z', { layout: 1 });
    const current = await storeBackup(real, '2026-11-02T01:00:00Z');
    expect((await findBackup(real, 'shop', old.id)).version).toBe(1);
    expect((await findBackup(real, 'shop', current.id)).version).toBe(2);
    await expect(findBackup(real, 'shop', '20261103T010000.000Z-cccccc')).rejects.toThrow(/^backup 20261103T010000.000Z-cccccc of database shop not found in /);
  });

  it('refuses a manifest whose format version names the other layout (it would be removed from the wrong place)', async () => {
    const real = await open();
    const m = await storeBackup(real, '2026-11-02T01:00:00Z');
    await put(real, manifestKey('shop', m.id, 1), JSON.stringify(m));
    const listing = await listBackups(real, 'shop');
    expect(listing.unreadable.map((u) => u.error)).toEqual([`manifest shop/${m.id}/manifest.json has format version 2, whose backups live at shop/backups/${m.id}/manifest.json`]);
  });
});
