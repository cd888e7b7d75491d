// prune beside running backups, in-process on a real local directory: what a live lease covers
// is never an orphan and its uploads are never aborted, a running incremental's parent (and its
// chain) is never removed — also when the lease lands while prune is already deleting — data
// whose manifest commits after prune listed it survives, an unreadable lease stops prune, and a
// stale lease is cleaned up after its dead holder's orphans.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { commitManifest } from '../../src/catalog/catalog.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { backupPrefix, manifestKey, newBackupId, physicalKey } from '../../src/catalog/keys.ts';
import { MANIFEST_FORMAT, PLAIN_MANIFEST_VERSION, type Manifest } from '../../src/catalog/manifest.ts';
import { parseConfig } from '../../src/config/load.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { acquireLease, type LeaseRecord } from '../../src/lease/lease.ts';
import { backupLeaseKey } from '../../src/lease/leases.ts';
import { prune } from '../../src/retention/prune.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { testDir } from '../helpers.ts';

const logger = pino({ level: 'silent' });
const options = { timeZone: 'UTC', orphanGraceMs: 0, lockTtlMs: 60_000, dryRun: false, logger };

function database(retention: string): DatabaseConfig {
  const config = parseConfig(`storage: { type: local, path: /unused }\ndatabases:\n  - name: shop\n    retention: ${retention}\n`, 'c', {});
  const db = config.databases[0];
  if (!db) throw new Error('no database');
  return db;
}

/** A physical backup (data + manifest) started at `iso`, with `parent` for an incremental. */
async function storePhysical(storage: StorageDriver, iso: string, parent: Manifest | null, commit = true): Promise<Manifest> {
  const started = new Date(iso);
  const id = newBackupId(started);
  const data = Buffer.from(`xbstream of ${iso}\n`);
  const key = physicalKey('shop', id, '');
  await storage.put(key, Readable.from([data]));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: PLAIN_MANIFEST_VERSION,
    id,
    database: 'shop',
    type: parent ? 'incremental' : 'full',
    trigger: 'periodic',
    status: 'completed',
    startedAt: started.toISOString(),
    completedAt: started.toISOString(),
    sizeBytes: data.length,
    rawSizeBytes: data.length,
    compression: { algorithm: 'none', level: 0 },
    encryption: null,
    schemas: [],
    objects: [{ key, role: 'data', sizeBytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), compression: 'none', rawSizeBytes: data.length }],
    binlog: null,
    physical: { fromLsn: '0', toLsn: '1', lastLsn: '1', parent: parent?.id ?? null, chainLength: parent ? (parent.physical?.chainLength ?? 1) + 1 : 1, datadir: '/d', primary: null },
    server: { flavor: 'mariadb', version: '10.11', serverId: 1, hostname: 'h' },
    tool: { name: 'mariadb-backup', version: 'x' },
    agent: { version: '0', hostname: 'h' },
  };
  if (commit) await commitManifest(storage, manifest);
  return manifest;
}

const leaseOf = (id: string, parent: string | null) => ({
  key: backupLeaseKey('shop', id),
  purpose: 'backup',
  subject: `backup ${id} of shop`,
  ttlMs: 600_000,
  backup: { id, type: parent ? 'incremental' : 'full', parent },
});

async function ids(storage: StorageDriver): Promise<string[]> {
  return (await listBackups(storage, 'shop')).backups.map((b) => b.id);
}

describe('prune and running backups', () => {
  it('a running backup (live lease) keeps its data and its temp files, even with orphan_grace 0', async () => {
    const root = await testDir('prune-lease-running');
    const storage = new LocalDriver(root);
    const running = await storePhysical(storage, '2026-11-30T10:00:00Z', null, false);
    await acquireLease(storage, leaseOf(running.id, null));
    const partial = join(root, backupPrefix('shop', running.id), 'backup.xbstream.0123456789ab.partial');
    await writeFile(partial, 'still uploading');
    const abandoned = await storePhysical(storage, '2026-11-30T09:00:00Z', null, false); // no lease: a dead run

    const { plan, outcome } = await prune(storage, database('{}'), options);
    expect(plan.orphans.map((o) => o.key)).toEqual([abandoned.objects[0]?.key]);
    expect(outcome?.orphansRemoved).toEqual([abandoned.objects[0]?.key]);
    expect(outcome?.uploadsAborted).toEqual([]);
    expect(await storage.stat(running.objects[0]?.key ?? '')).toBeDefined();
    expect(existsSync(partial)).toBe(true);
  });

  it('a backup that starts after prune read the leases: its upload is not aborted (leases read again first)', async () => {
    const root = await testDir('prune-lease-late');
    const real = new LocalDriver(root);
    const late = newBackupId(new Date('2026-11-30T11:00:00Z'));
    const partial = join(root, backupPrefix('shop', late), 'dump.sql.zst.0123456789ab.partial');
    let leaseListings = 0;
    /** A double around the real store: the backup takes its lease and opens its upload right after prune's first read of the leases. */
    class StartsAfterLeaseRead extends ForwardingDriver {
      override async *list(prefix: string) {
        try {
          yield* real.list(prefix);
        } finally {
          if (prefix === 'shop/leases/' && ++leaseListings === 1) {
            await acquireLease(real, leaseOf(late, null));
            await mkdir(join(root, backupPrefix('shop', late)), { recursive: true });
            await writeFile(partial, 'uploading');
            // Older than any margin prune allows for clocks: only the lease can spare it.
            const old = new Date(Date.now() - 60_000);
            await utimes(partial, old, old);
          }
        }
      }
    }
    const { outcome } = await prune(new StartsAfterLeaseRead(real), database('{}'), options);
    expect(outcome?.uploadsAborted).toEqual([]);
    expect(existsSync(partial)).toBe(true);
    expect(leaseListings).toBeGreaterThan(1);
  });

  it('data listed before its manifest committed is not an orphan (re-checked before deleting)', async () => {
    const real = new LocalDriver(await testDir('prune-lease-commit'));
    const finishing = await storePhysical(real, '2026-11-30T10:00:00Z', null, false);
    // The backup commits right after prune listed the database (its lease already gone with it).
    let listings = 0;
    /**
     * A double around the real store: the backup's manifest commit lands right after prune's
     * listing of the backup folders (from which it reads the manifests and finds orphans), which
     * ends early (at the first key past them) or not.
     */
    class CommitsAfterListing extends ForwardingDriver {
      override async *list(prefix: string) {
        try {
          yield* real.list(prefix);
        } finally {
          if (prefix === 'shop/' && ++listings === 1) await commitManifest(real, finishing);
        }
      }
    }
    const committing = new CommitsAfterListing(real);
    const { plan, outcome } = await prune(committing, database('{}'), options);
    expect(plan.orphans.map((o) => o.key)).toEqual([finishing.objects[0]?.key]); // listed as one…
    expect(outcome?.orphansRemoved).toEqual([]); // …but kept: its manifest exists by now
    expect(await ids(real)).toEqual([finishing.id]);
    expect(await real.stat(finishing.objects[0]?.key ?? '')).toBeDefined();
  });

  it("a running incremental's parent and that parent's chain are kept", async () => {
    const storage = new LocalDriver(await testDir('prune-lease-parent'));
    const full = await storePhysical(storage, '2026-11-28T01:00:00Z', null);
    const inc = await storePhysical(storage, '2026-11-29T01:00:00Z', full);
    const newer = await storePhysical(storage, '2026-11-30T01:00:00Z', null);
    await acquireLease(storage, leaseOf(newBackupId(new Date('2026-11-30T02:00:00Z')), inc.id));
    const { plan, outcome } = await prune(storage, database('{ keep_last: 1 }'), options);
    expect(plan.remove.map((m) => m.id).sort()).toEqual([full.id, inc.id].sort());
    expect(outcome?.removed).toEqual([]);
    expect((await ids(storage)).sort()).toEqual([full.id, inc.id, newer.id].sort());
  });

  it('a lease naming the parent that lands while prune deletes it: the manifest is put back, the data kept', async () => {
    const real = new LocalDriver(await testDir('prune-lease-late'));
    const full = await storePhysical(real, '2026-11-29T01:00:00Z', null);
    const newer = await storePhysical(real, '2026-11-30T01:00:00Z', null);
    // The incremental names `full` in its lease just as prune removes full's manifest.
    /** A double around the real store: an incremental's lease naming `full` lands as its manifest goes. */
    class LeaseLandsOnDelete extends ForwardingDriver {
      override async delete(key: string) {
        await real.delete(key);
        if (key === manifestKey('shop', full.id)) await acquireLease(real, leaseOf(newBackupId(new Date()), full.id));
      }
    }
    const late = new LeaseLandsOnDelete(real);
    const { outcome } = await prune(late, database('{ keep_last: 1 }'), options);
    expect(outcome?.removed).toEqual([]);
    expect((await ids(real)).sort()).toEqual([full.id, newer.id].sort());
    expect(await real.stat(full.objects[0]?.key ?? '')).toMatchObject({ size: full.sizeBytes });
  });

  it('an unreadable lease: prune deletes nothing for the database and says which lease', async () => {
    const root = await testDir('prune-lease-corrupt');
    const storage = new LocalDriver(root);
    await storePhysical(storage, '2026-11-29T01:00:00Z', null);
    await storePhysical(storage, '2026-11-30T01:00:00Z', null);
    const orphan = await storePhysical(storage, '2026-11-28T01:00:00Z', null, false);
    await mkdir(join(root, 'shop', 'leases'), { recursive: true });
    await writeFile(join(root, 'shop', 'leases', 'x.json'), '{"owner": "half');
    await expect(prune(storage, database('{ keep_last: 1 }'), options)).rejects.toMatchObject({
      kind: 'integrity',
      message: expect.stringMatching(/^read lease shop\/leases\/x\.json in .*: /),
    });
    expect(await ids(storage)).toHaveLength(2);
    expect(await storage.stat(orphan.objects[0]?.key ?? '')).toBeDefined();
  });

  it("a stale lease protects nothing: its dead holder's data goes as an orphan, then the lease", async () => {
    const storage = new LocalDriver(await testDir('prune-lease-stale'));
    const dead = await storePhysical(storage, '2026-11-30T10:00:00Z', null, false);
    const held = await acquireLease(storage, { ...leaseOf(dead.id, null), now: () => new Date('2026-11-30T10:00:00Z') });
    const { outcome } = await prune(storage, database('{}'), options);
    expect(outcome?.orphansRemoved).toEqual([dead.objects[0]?.key]);
    expect(await storage.stat(held.key)).toBeUndefined();
    const record: LeaseRecord = held.record;
    expect(record.backup?.id).toBe(dead.id);
  });
});
