// A generated catalog: N backups (manifest + a tiny data object each) and a binlog archive beside
// them, written through a real driver with bounded concurrency. The local variant is kept under
// .tmp/fixtures between runs (it takes tens of seconds to write, and the tests only read it).
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { commitManifest } from '../../src/catalog/catalog.ts';
import { dumpKey, newBackupId, physicalKey } from '../../src/catalog/keys.ts';
import { MANIFEST_FORMAT, PLAIN_MANIFEST_VERSION, type Manifest } from '../../src/catalog/manifest.ts';
import { mapLimit } from '../../src/catalog/map-limit.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { REPO } from '../helpers.ts';

export interface GeneratedCatalog {
  backups: number;
  /** Binlog keys beside the catalog (segment data + segment manifest). */
  binlogKeys: number;
}

const START = Date.UTC(2024, 0, 1);

/** Backup `i`: a dump every hour, with a full (every 24th) and incrementals in between on the half hour. */
function manifestOf(database: string, i: number, layout: 1 | 2): Manifest {
  const physical = i % 2 === 1;
  const started = new Date(START + i * 30 * 60_000);
  const id = newBackupId(started, createHash('sha256').update(`${database}/${i}`).digest());
  const data = Buffer.from(`backup ${i}\n`);
  const key = physical ? physicalKey(database, id, '', layout) : dumpKey(database, id, '', layout);
  const full = physical && i % 48 === 1;
  const parentIndex = i - 2;
  return {
    format: MANIFEST_FORMAT,
    version: layout,
    id,
    database,
    type: physical ? (full ? 'full' : 'incremental') : 'dump',
    trigger: 'periodic',
    status: 'completed',
    startedAt: started.toISOString(),
    completedAt: new Date(started.getTime() + 60_000).toISOString(),
    sizeBytes: data.length,
    rawSizeBytes: data.length,
    compression: { algorithm: 'none', level: 0 },
    encryption: null,
    schemas: [database],
    objects: [{ key, role: 'data', sizeBytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), compression: 'none', rawSizeBytes: data.length }],
    binlog: null,
    ...(physical
      ? {
          physical: {
            fromLsn: String(i * 10),
            toLsn: String(i * 10 + 10),
            lastLsn: String(i * 10 + 10),
            parent: full ? null : newBackupId(new Date(START + parentIndex * 30 * 60_000), createHash('sha256').update(`${database}/${parentIndex}`).digest()),
            chainLength: full ? 1 : ((i - 1) % 48) / 2 + 1,
            datadir: '/var/lib/mysql',
            primary: null,
          },
        }
      : {}),
    server: { flavor: 'mariadb', version: '10.11.6-MariaDB', serverId: 1, hostname: 'db1' },
    tool: { name: physical ? 'mariadb-backup' : 'mariadb-dump', version: 'x' },
    agent: { version: '0.1.0', hostname: 'db1' },
  };
}

/** Writes `backups` backups of `database` (layout 2 unless `layout` says 1) and `binlogFiles` × 100 segments beside them. */
export async function generateCatalog(storage: StorageDriver, database: string, backups: number, options: { binlogFiles?: number; layout?: 1 | 2; concurrency?: number } = {}): Promise<GeneratedCatalog> {
  const layout = options.layout ?? PLAIN_MANIFEST_VERSION;
  await mapLimit(
    Array.from({ length: backups }, (_, i) => i),
    options.concurrency ?? 32,
    async (i) => {
      const manifest = manifestOf(database, i, layout);
      const object = manifest.objects[0];
      if (object) await storage.put(object.key, Readable.from([Buffer.from(`backup ${i}\n`)]));
      await commitManifest(storage, manifest);
    },
  );
  const segments: string[] = [];
  for (let f = 1; f <= (options.binlogFiles ?? 0); f++) {
    for (let s = 0; s < 100; s++) {
      const base = `${database}/binlog/mysql-bin.${String(f).padStart(6, '0')}/${String(s * 1000 + 4).padStart(12, '0')}-${String(s * 1000 + 1000).padStart(12, '0')}`;
      segments.push(`${base}.binlog`, `${base}.json`);
    }
  }
  await mapLimit(segments, options.concurrency ?? 32, (key) => storage.put(key, Readable.from([Buffer.from('x')])));
  return { backups, binlogKeys: segments.length };
}

/**
 * A local store of `backups` backups of `database`, generated once and kept under .tmp/fixtures:
 * complete only once its marker exists (a run killed while generating starts over). Read-only:
 * a test that changes a store must generate its own.
 */
export async function cachedLocalCatalog(database: string, backups: number, binlogFiles: number): Promise<{ root: string; catalog: GeneratedCatalog }> {
  const name = `catalog-${database}-${backups}-${binlogFiles}-v1`;
  const root = join(REPO, '.tmp', 'fixtures', name);
  const marker = join(REPO, '.tmp', 'fixtures', `${name}.complete`);
  const catalog = { backups, binlogKeys: binlogFiles * 200 };
  if (existsSync(marker)) return { root, catalog };
  await rm(root, { recursive: true, force: true });
  await mkdir(root, { recursive: true });
  await generateCatalog(new LocalDriver(root), database, backups, { binlogFiles });
  await writeFile(marker, `${new Date().toISOString()}\n`);
  return { root, catalog };
}
