// The store's manifest pack as users meet it, through the real CLI on a local directory and on
// s3rver: `agent prune` writes it; `agent list` on a new host (an empty cache directory) shows
// exactly what a warm host shows; a damaged pack is named in a warning, listing goes on from the
// manifests themselves, and the next prune writes a good pack over it. (The request counts, one
// GET in place of one per manifest, are asserted in test/catalog/manifest-pack.test.ts and
// large-catalog.test.ts.)
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { buffer } from 'node:stream/consumers';
import { describe, expect, inject, it } from 'vitest';
import { manifestPackKey } from '../../src/catalog/manifest-pack.ts';
import { Secret } from '../../src/config/secret.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { openStorage } from '../../src/storage/open.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { storeBackup } from '../retention/stored-backups.ts';
import { agent, testDir, uniqueName, writeConfig } from '../helpers.ts';

const BACKUPS = 40;

async function store(kind: 'local' | 's3'): Promise<{ storage: StorageDriver; yaml: string }> {
  if (kind === 'local') {
    const path = await testDir('pack-store');
    return { storage: new LocalDriver(path), yaml: `  type: local\n  path: ${path}` };
  }
  const bucket = uniqueName('bkt');
  const endpoint = inject('s3').endpoint;
  await createS3Bucket(endpoint, bucket);
  const storage = await openStorage({
    type: 's3', bucket, prefix: 'p', endpoint, force_path_style: true, region: 'us-east-1',
    access_key_id: new Secret('S3RVER'), secret_access_key: new Secret('S3RVER'), checksum: 'when_required',
    conditional_writes: false, delimiter_listing: false, part_size_mb: 5, upload_concurrency: 2,
  });
  const yaml = [
    `type: s3`, `bucket: ${bucket}`, 'prefix: p', `endpoint: ${endpoint}`, 'force_path_style: true',
    'access_key_id: S3RVER', 'secret_access_key: S3RVER', 'checksum: when_required', 'delimiter_listing: false',
  ].map((l) => `  ${l}`).join('\n');
  return { storage, yaml };
}

/** The pack as stock gunzip would give it. */
async function readPack(storage: StorageDriver): Promise<{ database: string; manifests: Record<string, unknown> }> {
  return JSON.parse(gunzipSync(await buffer(await storage.get(manifestPackKey('shop')))).toString()) as { database: string; manifests: Record<string, unknown> };
}

describe.each(['local', 's3'] as const)('the manifest pack on %s storage', (kind) => {
  it('prune writes it, a new host lists the same through it, a damaged one is named and replaced', { timeout: 180_000 }, async () => {
    const { storage, yaml } = await store(kind);
    const dir = await testDir(`pack-${kind}`);
    for (let i = 0; i < BACKUPS; i++) await storeBackup(storage, new Date(Date.UTC(2026, 9, 1) + i * 86_400_000).toISOString(), { database: 'shop' });
    const config = await writeConfig(dir, ['storage:', yaml, 'databases:', '  - name: shop', '    host: 127.0.0.1', '    retention: { keep_daily: 100 }', ''].join('\n'));
    const host = (name: string) => ({ HOME: `${dir}/${name}`, XDG_CACHE_HOME: `${dir}/${name}/cache` });

    // One backup a day, all kept by keep_daily: 100. No pack yet: a listing that only reads (list) does not write one; prune does.
    const before = await agent(['--config', config, 'list', '--json'], host('a'));
    expect(before.exitCode).toBe(0);
    expect(await storage.stat(manifestPackKey('shop'))).toBeUndefined();
    const pruned = await agent(['--config', config, 'prune', '--json'], host('a'));
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    const pack = await readPack(storage);
    expect(pack.database).toBe('shop');
    expect(Object.keys(pack.manifests)).toHaveLength(BACKUPS);

    // A new host: the same list, to the byte, as the host whose cache is warm; no warning.
    const fresh = await agent(['--config', config, 'list', '--json'], host('b'));
    expect(fresh.exitCode).toBe(0);
    expect(fresh.stderr).toBe('');
    expect(fresh.stdout).toBe(before.stdout);
    expect(JSON.parse(fresh.stdout)).toHaveLength(BACKUPS);

    // Damaged: named in a warning, the list still whole and equal (read manifest by manifest), exit 0.
    await storage.put(manifestPackKey('shop'), Readable.from([Buffer.from('not a gzip stream')]));
    const damaged = await agent(['--config', config, 'list', '--json'], host('c'));
    expect(damaged.exitCode).toBe(0);
    expect(damaged.stderr).toContain('could not use the manifest pack in the store; reading the manifests one by one');
    expect(damaged.stderr).toContain('shop/catalog/manifests.json.gz is damaged');
    expect(damaged.stdout).toBe(before.stdout);

    // The next prune (another new host) writes a good one over it.
    const again = await agent(['--config', config, 'prune', '--json'], host('d'));
    expect(again.exitCode, again.stderr).toBe(0);
    const after = await agent(['--config', config, 'list', '--json'], host('e'));
    expect(after.stderr).toBe('');
    expect(after.stdout).toBe(before.stdout);
    expect(Object.keys((await readPack(storage)).manifests)).toHaveLength(BACKUPS);
    await storage.close();
  });
});
