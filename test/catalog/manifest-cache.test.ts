// The manifest cache only ever spares reads: a missing, damaged or foreign cache file is an empty
// cache, a changed object is read again, and the listing alone decides which backups exist.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manifestKeyOf } from '../../src/catalog/catalog.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { etagOf, ManifestCache } from '../../src/catalog/manifest-cache.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { testDir } from '../helpers.ts';
import { storeBackup } from '../retention/stored-backups.ts';

async function setup(name: string) {
  const real = new LocalDriver(await testDir(`${name}-store`));
  const dir = await testDir(`${name}-cache`);
  const backups = [];
  for (let day = 1; day <= 3; day++) backups.push(await storeBackup(real, `2026-11-0${day}T01:00:00Z`));
  const storage = new CountingDriver(real);
  const list = async () => {
    storage.reset();
    const listing = await listBackups(storage, 'shop', { cache: await ManifestCache.open(dir, real.location, 'shop') });
    return { ids: listing.backups.map((b) => b.id), gets: storage.calls.get('get') ?? 0 };
  };
  const cacheFile = async () => join(dir, (await readdir(dir)).find((f) => f.endsWith('.json')) ?? 'none');
  return { real, dir, backups, list, cacheFile };
}

describe('the manifest cache', () => {
  it('is filled by a cold listing and spares every get of a warm one; it never writes beside its file', async () => {
    const { backups, list, dir } = await setup('cache-warm');
    const ids = backups.map((b) => b.id).reverse();
    expect(await list()).toEqual({ ids, gets: 3 });
    expect(await list()).toEqual({ ids, gets: 0 });
    expect((await readdir(dir)).filter((f) => !f.endsWith('.json'))).toEqual([]);
  });

  it('is never trusted for existence: a backup gone from the store is gone from the listing and the cache', async () => {
    const { real, backups, list, cacheFile } = await setup('cache-gone');
    await list();
    await real.delete(manifestKeyOf(backups[0]!));
    expect(await list()).toEqual({ ids: [backups[2]?.id, backups[1]?.id], gets: 0 });
    expect(await readFile(await cacheFile(), 'utf8')).not.toContain(backups[0]?.id);
  });

  it('reads again a manifest whose object changed size, and one it holds under another ETag', async () => {
    const { real, backups, list } = await setup('cache-changed');
    await list();
    const changed = backups[1]!;
    await storeBackup(real, '2026-11-04T01:00:00Z'); // one more: one get
    await real.put(manifestKeyOf(changed), (await import('node:stream')).Readable.from([Buffer.from(`${JSON.stringify({ ...changed, schemas: ['shop', 'more'] })}\n`)]));
    const after = await list();
    expect(after.gets).toBe(2);
    const cache = ManifestCache.memory();
    const info = { key: 'k', size: 10, modifiedAt: new Date(), etag: '"a"' };
    cache.remember(info, changed);
    expect(etagOf(info)).toBe('"a"');
    expect(cache.lookup(info)).toEqual(changed);
    const retagged = { ...info, etag: '"b"' };
    expect(cache.lookup(retagged)).toBeUndefined();
    expect(cache.lookup({ ...info, size: 11 })).toBeUndefined();
  });

  it.each([
    ['deleted', async (file: string) => rm(file)],
    ['truncated', async (file: string) => writeFile(file, (await readFile(file, 'utf8')).slice(0, 200))],
    ['edited (checksum no longer matches)', async (file: string) => writeFile(file, (await readFile(file, 'utf8')).replace('"dump"', '"full"'))],
    ['garbage', async (file: string) => writeFile(file, '\u0000\u0001 not json')],
  ])('a cache file %s is an empty cache: every manifest is read again', async (_name, damage) => {
    const { backups, list, cacheFile } = await setup('cache-damaged');
    await list();
    await damage(await cacheFile());
    expect(await list()).toEqual({ ids: backups.map((b) => b.id).reverse(), gets: 3 });
    expect(await list()).toEqual({ ids: backups.map((b) => b.id).reverse(), gets: 0 });
  });

  it('is kept per storage location and database: another location does not use it', async () => {
    const { real, dir, list } = await setup('cache-foreign');
    await list();
    const other = await ManifestCache.open(dir, `${real.location}-elsewhere`, 'shop');
    expect(other.size).toBe(0);
    expect((await ManifestCache.open(dir, real.location, 'shop')).size).toBe(3);
  });

  it('an unreadable cache file is reported and read as empty, never fatal', async () => {
    const { dir, real, list, cacheFile } = await setup('cache-unreadable');
    await list();
    const file = await cacheFile();
    await rm(file);
    await (await import('node:fs/promises')).mkdir(file); // a directory where the file should be
    const cache = await ManifestCache.open(dir, real.location, 'shop');
    expect(cache.size).toBe(0);
    expect((cache.openError as NodeJS.ErrnoException).code).toBe('EISDIR');
  });
});
