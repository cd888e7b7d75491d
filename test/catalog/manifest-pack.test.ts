// The store's manifest pack (src/catalog/manifest-pack.ts): a listing on a host with no local
// cache reads one pack instead of one manifest per backup, and the pack never decides which
// backups exist. Counted on the in-memory store behind the request-counting decorator.
import { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { manifestKey } from '../../src/catalog/keys.ts';
import { listBackups, type ListOptions } from '../../src/catalog/listing.ts';
import { ManifestCache } from '../../src/catalog/manifest-cache.ts';
import { manifestPackKey, packIsStale, PACK_MIN_CHANGES, readManifestPack } from '../../src/catalog/manifest-pack.ts';
import { serializeManifest, type Manifest } from '../../src/catalog/manifest.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { storeBackup } from '../retention/stored-backups.ts';

const DB = 'shop';

/** `n` backups an hour apart from `from`, oldest first. */
async function backups(storage: MemoryDriver, n: number, from = Date.UTC(2026, 10, 1)): Promise<Manifest[]> {
  const made: Manifest[] = [];
  for (let i = 0; i < n; i++) made.push(await storeBackup(storage, new Date(from + i * 3_600_000).toISOString(), { database: DB }));
  return made;
}

/** A listing as a new host makes it: an empty local cache (in memory: nothing carries over). */
function newHost(pack: ListOptions['pack'], errors: unknown[] = []): ListOptions {
  return { cache: ManifestCache.memory(), pack, onPackError: (err) => errors.push(err) };
}

const ids = (ms: readonly Manifest[]) => ms.map((m) => m.id).sort();

describe('the manifest pack', () => {
  it('is written by a refreshing listing; a new host then reads one pack and no manifest', async () => {
    const real = new MemoryDriver();
    const made = await backups(real, 40);
    const storage = new CountingDriver(real);

    // The writer (daemon, run-now, prune): no pack yet, 40 manifests fetched, the pack written.
    const first = await listBackups(storage, DB, newHost('refresh'));
    expect(ids(first.backups)).toEqual(ids(made));
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1, get: 40 + 1, put: 1 }); // 40 manifests and the pack's 404
    expect(real.objects.has(manifestPackKey(DB))).toBe(true);

    // A reader on a new host: the listing and the pack, nothing else; the same backups, deep-equal.
    storage.reset();
    const cold = await listBackups(storage, DB, newHost('read'));
    expect(cold.backups).toEqual(first.backups);
    expect(cold.unreadable).toEqual([]);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1, get: 1 });

    // Without the pack option (the agent before this change, or a caller that opts out): one get per manifest.
    storage.reset();
    await listBackups(storage, DB, { cache: ManifestCache.memory() });
    expect(storage.calls.get('get')).toBe(40);
  });

  it('never decides what exists: a backup deleted after the pack is not listed, a replaced manifest is read from the store', async () => {
    const real = new MemoryDriver();
    const made = await backups(real, 40);
    await listBackups(real, DB, newHost('refresh'));
    const [gone, replaced] = made as [Manifest, Manifest];
    await real.delete(manifestKey(DB, gone.id));
    const edited = { ...replaced, trigger: 'manual' as const, schemas: [DB, 'another_schema_name'] };
    await real.put(manifestKey(DB, replaced.id), Readable.from([Buffer.from(serializeManifest(edited))]));

    const storage = new CountingDriver(real);
    const cold = await listBackups(storage, DB, newHost('read'));
    expect(cold.backups.map((b) => b.id)).not.toContain(gone.id);
    expect(cold.backups).toHaveLength(39);
    expect(cold.backups.find((b) => b.id === replaced.id)).toEqual(edited);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1, get: 2 }); // the pack and the replaced manifest
  });

  it('validates what it hands out: an entry whose manifest is invalid is read from the store instead', async () => {
    const real = new MemoryDriver();
    const made = await backups(real, 40);
    await listBackups(real, DB, newHost('refresh'));
    const pack = JSON.parse(gunzipSync(real.objects.get(manifestPackKey(DB))?.data ?? Buffer.alloc(0)).toString()) as {
      manifests: Record<string, { manifest: Manifest }>;
    };
    const victim = made[5] as Manifest;
    const entry = pack.manifests[manifestKey(DB, victim.id)];
    if (!entry) throw new Error('no pack entry');
    // A manifest naming another backup's data would let prune delete it: never taken from the pack.
    entry.manifest = { ...entry.manifest, objects: [{ ...(entry.manifest.objects[0] as Manifest['objects'][number]), key: `${DB}/backups/${(made[6] as Manifest).id}/dump.sql` }] };
    await real.put(manifestPackKey(DB), Readable.from([gzipSync(JSON.stringify(pack))]));

    const storage = new CountingDriver(real);
    const cold = await listBackups(storage, DB, newHost('read'));
    expect(cold.backups.find((b) => b.id === victim.id)).toEqual(victim);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1, get: 2 });
  });

  it('a damaged pack is reported and the manifests read one by one; the next refresh writes it again', async () => {
    const real = new MemoryDriver();
    const made = await backups(real, 40);
    await real.put(manifestPackKey(DB), Readable.from([Buffer.from('not gzip')]));

    const errors: unknown[] = [];
    const storage = new CountingDriver(real);
    const cold = await listBackups(storage, DB, newHost('read', errors));
    expect(ids(cold.backups)).toEqual(ids(made));
    expect(errors.map(String)).toEqual([expect.stringMatching(/the manifest pack shop\/catalog\/manifests\.json\.gz is damaged/)]);
    expect(storage.calls.get('get')).toBe(41);

    // The writer hears of it once, and writes a good pack over it.
    const refreshErrors: unknown[] = [];
    await listBackups(real, DB, newHost('refresh', refreshErrors));
    expect(refreshErrors).toHaveLength(1);
    storage.reset();
    const errorsAfter: unknown[] = [];
    await listBackups(storage, DB, newHost('read', errorsAfter));
    expect(errorsAfter).toEqual([]);
    expect(Object.fromEntries(storage.calls)).toEqual({ list: 1, get: 1 });
  });

  it("ignores another database's pack copied in, and a pack of another format version", async () => {
    const real = new MemoryDriver();
    await backups(real, 40);
    await listBackups(real, DB, newHost('refresh'));
    const copied = real.objects.get(manifestPackKey(DB))?.data;
    await real.put(manifestPackKey('other'), Readable.from([copied ?? Buffer.alloc(0)]));
    expect((await readManifestPack(real, 'other')).keys.size).toBe(0);
    await real.put(manifestPackKey(DB), Readable.from([gzipSync(JSON.stringify({ format: 'backup-agent/manifest-pack', version: 99, database: DB, manifests: {} }))]));
    expect((await readManifestPack(real, DB)).keys.size).toBe(0);
  });

  it('a refresh rewrites the pack only when it lacks enough manifests; a warm reader never reads it', async () => {
    const real = new MemoryDriver();
    await backups(real, 40);
    const writer = new CountingDriver(real);
    const writerCache = ManifestCache.memory();
    await listBackups(writer, DB, { cache: writerCache, pack: 'refresh' });
    expect(writer.calls.get('put')).toBe(1);

    // A few new backups: below the threshold, no rewrite and (this process knows the pack) no read of it.
    await backups(real, PACK_MIN_CHANGES - 1, Date.UTC(2026, 11, 1));
    writer.reset();
    await listBackups(writer, DB, { cache: writerCache, pack: 'refresh' });
    expect(Object.fromEntries(writer.calls)).toEqual({ list: 1, get: PACK_MIN_CHANGES - 1 });

    // One more reaches it: the pack is written again, with all of them.
    await backups(real, 1, Date.UTC(2026, 11, 10));
    writer.reset();
    await listBackups(writer, DB, { cache: writerCache, pack: 'refresh' });
    expect(Object.fromEntries(writer.calls)).toEqual({ list: 1, get: 1, put: 1 });
    expect((await readManifestPack(real, DB)).keys.size).toBe(40 + PACK_MIN_CHANGES);

    // A reader whose local cache is warm reads neither the pack nor a manifest.
    const reader = new CountingDriver(real);
    const readerCache = ManifestCache.memory();
    await listBackups(real, DB, { cache: readerCache });
    await listBackups(reader, DB, { cache: readerCache, pack: 'read' });
    expect(Object.fromEntries(reader.calls)).toEqual({ list: 1 });
  });

  it('packIsStale: changes in either direction count, from the floor or a share of the catalog', () => {
    const keys = (n: number, from = 0) => new Set(Array.from({ length: n }, (_, i) => `k${from + i}`));
    expect(packIsStale(keys(0), keys(PACK_MIN_CHANGES - 1))).toBe(false);
    expect(packIsStale(keys(0), keys(PACK_MIN_CHANGES))).toBe(true);
    expect(packIsStale(keys(100), keys(100, 100 - 16))).toBe(true); // 16 deleted + 16 new
    expect(packIsStale(keys(20_000), keys(20_000, 499))).toBe(false); // 998 changes: under 5 %
    expect(packIsStale(keys(20_000), keys(20_000, 500))).toBe(true); // 1,000: 5 %
  });

  it('opens with stock tools: gzip -dc gives JSON whose entries are the manifests as stored', async () => {
    const real = new MemoryDriver();
    const made = await backups(real, 40);
    await listBackups(real, DB, newHost('refresh'));
    const { stdout } = await execa('gzip', ['-dc'], { input: real.objects.get(manifestPackKey(DB))?.data });
    const pack = JSON.parse(stdout) as { format: string; database: string; manifests: Record<string, { size: number; manifest: Manifest }> };
    expect(pack.format).toBe('backup-agent/manifest-pack');
    expect(pack.database).toBe(DB);
    const first = made[0] as Manifest;
    const entry = pack.manifests[manifestKey(DB, first.id)];
    expect(entry?.manifest).toEqual(first);
    expect(entry?.size).toBe(Buffer.byteLength(serializeManifest(first)));
  });
});
