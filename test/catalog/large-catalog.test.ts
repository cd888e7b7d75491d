// A catalog of 20,000 backups (local) and 3,000 (s3rver: writing 20,000 there takes minutes)
// beside a binlog archive: `list` and `prune --dry-run` read the listing pages of the backups
// folder and one manifest per backup cold, and the listing pages only once the manifest cache is
// warm; a new host reads the store's manifest pack instead of the manifests. Counted in a store
// decorator, not timed.
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, inject, it } from 'vitest';
import { checkData } from '../../src/catalog/data-check.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { ManifestCache } from '../../src/catalog/manifest-cache.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { Secret } from '../../src/config/secret.ts';
import { prune } from '../../src/retention/prune.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { openStorage } from '../../src/storage/open.ts';
import { cachedLocalCatalog, generateCatalog, type GeneratedCatalog } from '../harness/catalog-generator.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { testDir, uniqueName } from '../helpers.ts';
import { storeBackup } from '../retention/stored-backups.ts';

const logger = pino({ level: 'silent' });
const pages = (keys: number) => Math.max(1, Math.ceil(keys / 1000));

function database(): DatabaseConfig {
  const config = parseConfig('storage: { type: local, path: /unused }\ndatabases:\n  - name: big\n    retention: { keep_daily: 7, keep_weekly: 4 }\n', 'c', {});
  const db = config.databases[0];
  if (!db) throw new Error('no database');
  return db;
}

interface Fixture {
  storage: StorageDriver;
  catalog: GeneratedCatalog;
  /** Whether the test may add backups to the store (the cached local fixture is read-only). */
  writable: boolean;
}

const fixtures: [string, () => Promise<Fixture>][] = [
  [
    'local, 20,000 backups',
    async () => {
      const { root, catalog } = await cachedLocalCatalog('big', 20_000, 10);
      return { storage: new LocalDriver(root), catalog, writable: false };
    },
  ],
  [
    's3rver, 3,000 backups',
    async () => {
      const bucket = uniqueName('bkt');
      await createS3Bucket(inject('s3').endpoint, bucket);
      const storage = await openStorage({
        type: 's3', bucket, prefix: 'p', endpoint: inject('s3').endpoint, force_path_style: true, region: 'us-east-1',
        access_key_id: new Secret('S3RVER'), secret_access_key: new Secret('S3RVER'), checksum: 'when_required',
        conditional_writes: false, delimiter_listing: false, part_size_mb: 5, upload_concurrency: 2,
      });
      return { storage, catalog: await generateCatalog(storage, 'big', 3_000, { binlogFiles: 5, concurrency: 16 }), writable: true };
    },
  ],
];

describe.each(fixtures)('a large catalog (%s)', (_name, generate) => {
  // Generated once for both tests (the list test adds one backup: the prune test counts what is there).
  let made: Promise<Fixture> | undefined;
  const make = () => (made ??= generate());

  it('list: cold = the listing pages + one get per manifest; warm = the listing pages only; then one get per new backup', { timeout: 600_000 }, async () => {
    const { storage: real, catalog, writable } = await make();
    const n = catalog.backups;
    const cacheDir = await mkdtemp(join(await testDir('manifest-cache'), 'c-'));
    const storage = new CountingDriver(real);
    // One listing of `big/`: a manifest and a data object per backup, then the first binlog key ends it.
    const listPages = pages(2 * n + 1);

    const cold = await listBackups(storage, 'big', { cache: await ManifestCache.open(cacheDir, real.location, 'big') });
    expect(cold.backups).toHaveLength(n);
    expect(cold.unreadable).toEqual([]);
    const data = await checkData(storage, cold.backups, cold.objects);
    expect([...data.values()].filter((d) => d.state !== 'present')).toEqual([]);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: listPages, get: n });
    expect(storage.listedKeys).toBe(2 * n + 1); // not one binlog key

    // Warm, as the next process finds it: the cache file read again.
    storage.reset();
    const warm = await listBackups(storage, 'big', { cache: await ManifestCache.open(cacheDir, real.location, 'big') });
    await checkData(storage, warm.backups, warm.objects);
    expect(warm.backups).toEqual(cold.backups);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: listPages });

    if (writable) {
      // A refresh after one more backup (the daemon's post-job refresh): the listing and that one manifest.
      await storeBackup(real, '2026-11-30T01:00:00Z', { database: 'big' });
      storage.reset();
      const after = await listBackups(storage, 'big', { cache: await ManifestCache.open(cacheDir, real.location, 'big') });
      expect(after.backups).toHaveLength(n + 1);
      expect(Object.fromEntries(storage.calls)).toEqual({ list: pages(2 * (n + 1) + 1), get: 1 });
    }
  });

  it('a new host (no local cache) reads the manifest pack: the listing pages and one get', { timeout: 600_000 }, async () => {
    const { storage: real } = await make();
    // As the daemon, run-now or prune leave the store: the pack written (or found fresh) by a refreshing listing.
    const reference = await listBackups(real, 'big', { pack: 'refresh' });
    const n = reference.backups.length;
    const storage = new CountingDriver(real);
    const cold = await listBackups(storage, 'big', { cache: ManifestCache.memory(), pack: 'read' });
    expect(cold.backups).toEqual(reference.backups);
    expect(cold.unreadable).toEqual([]);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: pages(2 * n + 1), get: 1 });
  });

  it('prune --dry-run: leases, the backups folder and the binlog archive listed; one get per manifest cold, none warm; no stat', { timeout: 600_000 }, async () => {
    const { storage: real, catalog } = await make();
    const n = (await listBackups(real, 'big')).backups.length;
    const cache = await ManifestCache.open(await testDir('manifest-cache-prune'), real.location, 'big');
    const storage = new CountingDriver(real);
    const options = { timeZone: 'UTC', orphanGraceMs: 3_600_000, lockTtlMs: 60_000, dryRun: true, logger, cache };
    // Leases (1 page), the backup folders (up to the first binlog key), the binlog archive.
    const listPages = 1 + pages(2 * n + 1) + pages(catalog.binlogKeys);

    const cold = await prune(storage, database(), options);
    expect(cold.outcome).toBeUndefined();
    expect(cold.plan.keep.length + cold.plan.remove.length).toBeGreaterThanOrEqual(n);
    expect(cold.plan.orphans).toEqual([]);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: listPages, get: n });

    storage.reset();
    const warm = await prune(storage, database(), options);
    expect(warm.plan.remove.map((m) => m.id)).toEqual(cold.plan.remove.map((m) => m.id));
    expect(Object.fromEntries(storage.calls)).toEqual({ list: listPages });
  });
});

