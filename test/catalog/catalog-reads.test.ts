// Reading the catalog never turns "could not read" into "absent": an unreadable manifest is
// reported (a newer format as such), a data object is present, missing or unknown, and "the most
// recent backup" is not silently an older one when a newer manifest cannot be read.
import { unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkData } from '../../src/catalog/data-check.ts';
import { findBackup } from '../../src/catalog/catalog.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { manifestKey } from '../../src/catalog/keys.ts';
import { AgentError } from '../../src/errors.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { testDir } from '../helpers.ts';
import { storeBackup } from '../retention/stored-backups.ts';

describe('the catalog, read fail-closed', () => {
  it('an unreadable manifest is listed as such; one of a newer format says its version', async () => {
    const root = await testDir('catalog-unreadable');
    const storage = new LocalDriver(root);
    const a = await storeBackup(storage, '2026-11-01T01:00:00Z');
    const b = await storeBackup(storage, '2026-11-02T01:00:00Z');
    await storeBackup(storage, '2026-11-03T01:00:00Z');
    await writeFile(join(root, manifestKey('shop', a.id)), 'not json');
    await writeFile(join(root, manifestKey('shop', b.id)), JSON.stringify({ ...b, version: 4 }));
    const { backups, unreadable } = await listBackups(storage, 'shop');
    expect(backups).toHaveLength(1);
    expect(unreadable.map((u) => [u.id, u.newerVersion])).toEqual(
      expect.arrayContaining([
        [a.id, undefined],
        [b.id, 4],
      ]),
    );
  });

  it('the most recent backup is not an older one when a newer manifest cannot be read', async () => {
    const root = await testDir('catalog-find-newest');
    const storage = new LocalDriver(root);
    const older = await storeBackup(storage, '2026-11-01T01:00:00Z');
    const newer = await storeBackup(storage, '2026-11-02T01:00:00Z');
    expect((await findBackup(storage, 'shop')).id).toBe(newer.id);
    await writeFile(join(root, manifestKey('shop', newer.id)), '{');
    const err = await findBackup(storage, 'shop').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).message).toMatch(new RegExp(`^find the most recent backup of database shop: manifest shop/backups/${newer.id}/manifest\\.json cannot be read \\(manifest is not JSON: `));
    expect((err as AgentError).hint).toBe('it may be the most recent backup; pass --backup <id> to choose one (`agent list --database shop` shows them)');
    // An unreadable manifest older than the most recent backup does not hide it.
    await writeFile(join(root, manifestKey('shop', older.id)), '{');
    await storeBackup(storage, '2026-11-03T01:00:00Z').then(async (m) => expect((await findBackup(storage, 'shop')).id).toBe(m.id));
  });

  it('checkData: present, missing, short, unknown', async () => {
    const root = await testDir('catalog-check-data');
    const storage = new LocalDriver(root);
    const [present, missing, short] = [await storeBackup(storage, '2026-11-01T01:00:00Z'), await storeBackup(storage, '2026-11-02T01:00:00Z'), await storeBackup(storage, '2026-11-03T01:00:00Z')];
    await unlink(join(root, missing.objects[0]?.key ?? ''));
    await writeFile(join(root, short.objects[0]?.key ?? ''), 'x');
    const states = await checkData(storage, [present, missing, short]);
    expect(states.get(present.id)).toEqual({ state: 'present' });
    expect(states.get(missing.id)).toEqual({ state: 'missing', problem: `data object ${missing.objects[0]?.key} is missing` });
    expect(states.get(short.id)).toEqual({ state: 'missing', problem: `data object ${short.objects[0]?.key} is 1 bytes, the manifest says ${short.objects[0]?.sizeBytes}` });
    const failing = new Proxy(storage, {
      get: (target, prop) => (prop === 'stat' ? () => Promise.reject(new Error('timeout')) : (Reflect.get(target, prop) as unknown as (...a: unknown[]) => unknown)),
    });
    expect((await checkData(failing, [present])).get(present.id)).toEqual({ state: 'unknown', error: `stat ${present.objects[0]?.key} in ${storage.location}: timeout` });
  });

  it('checkData judged from the listing (a stat only for what it did not show): a missing or resized data object is still reported', async () => {
    const root = await testDir('catalog-check-listed');
    const real = new LocalDriver(root);
    const [present, missing, short, long] = [
      await storeBackup(real, '2026-11-01T01:00:00Z'),
      await storeBackup(real, '2026-11-02T01:00:00Z'),
      await storeBackup(real, '2026-11-03T01:00:00Z'),
      await storeBackup(real, '2026-11-04T01:00:00Z'),
    ];
    await unlink(join(root, missing.objects[0]?.key ?? ''));
    await writeFile(join(root, short.objects[0]?.key ?? ''), 'x');
    await writeFile(join(root, long.objects[0]?.key ?? ''), Buffer.alloc((long.objects[0]?.sizeBytes ?? 0) + 1));
    const storage = new CountingDriver(real);
    const listing = await listBackups(storage, 'shop');
    const states = await checkData(storage, listing.backups, listing.objects);
    expect(storage.calls.get('stat')).toBe(1); // the missing one, which the listing did not show
    expect(states.get(present.id)).toEqual({ state: 'present' });
    expect(states.get(missing.id)).toEqual({ state: 'missing', problem: `data object ${missing.objects[0]?.key} is missing` });
    expect(states.get(short.id)).toEqual({ state: 'missing', problem: `data object ${short.objects[0]?.key} is 1 bytes, the manifest says ${short.objects[0]?.sizeBytes}` });
    expect(states.get(long.id)).toEqual({ state: 'missing', problem: `data object ${long.objects[0]?.key} is ${(long.objects[0]?.sizeBytes ?? 0) + 1} bytes, the manifest says ${long.objects[0]?.sizeBytes}` });
  });
});
