// Backups written into a real store the way the agent writes them (data object first, manifest
// last), at chosen times: retention decides by dates and triggers that real run-now calls cannot
// produce (a run-now is always manual and always "now").
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { commitManifest } from '../../src/catalog/catalog.ts';
import { dumpKey, newBackupId, physicalKey } from '../../src/catalog/keys.ts';
import { MANIFEST_FORMAT, PLAIN_MANIFEST_VERSION, type BackupType, type Manifest } from '../../src/catalog/manifest.ts';
import type { StorageDriver } from '../../src/storage/driver.ts';

export interface StoredBackupOptions {
  database?: string;
  type?: BackupType;
  trigger?: Manifest['trigger'];
  /** The backup an incremental applies on. */
  parent?: Manifest;
  /** The manifest format version, and with it the layout: 1 writes what agents before issue 11 wrote (`<db>/<id>/`). */
  layout?: 1 | 2;
}

export async function storeBackup(storage: StorageDriver, iso: string, options: StoredBackupOptions = {}): Promise<Manifest> {
  const database = options.database ?? 'shop';
  const type = options.type ?? 'dump';
  const started = new Date(iso);
  const id = newBackupId(started);
  const data = Buffer.from(`-- ${type} of ${iso}\n`);
  const layout = options.layout ?? PLAIN_MANIFEST_VERSION;
  const key = type === 'dump' ? dumpKey(database, id, '', layout) : physicalKey(database, id, '', layout);
  await storage.put(key, Readable.from([data]));
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: layout,
    id,
    database,
    type,
    trigger: options.trigger ?? 'periodic',
    status: 'completed',
    startedAt: started.toISOString(),
    completedAt: started.toISOString(),
    sizeBytes: data.length,
    rawSizeBytes: data.length,
    compression: { algorithm: 'none', level: 0 },
    encryption: null,
    schemas: [database],
    objects: [{ key, role: 'data', sizeBytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), compression: 'none', rawSizeBytes: data.length }],
    binlog: null,
    ...(type === 'dump'
      ? {}
      : {
          physical: {
            fromLsn: '0',
            toLsn: '100',
            lastLsn: '100',
            parent: type === 'incremental' ? (options.parent?.id ?? null) : null,
            chainLength: type === 'incremental' ? (options.parent?.physical?.chainLength ?? 0) + 1 : 1,
            datadir: '/var/lib/mysql',
            primary: null,
          },
        }),
    server: { flavor: 'mariadb', version: '10.11', serverId: 1, hostname: 'h' },
    tool: { name: type === 'dump' ? 'mariadb-dump' : 'mariadb-backup', version: 'x' },
    agent: { version: '0', hostname: 'h' },
  };
  await commitManifest(storage, manifest);
  return manifest;
}

/** `days` days of a daily dump at 01:00 and a physical backup at 02:00 ending on `last` (UTC): a full every 7th day, incrementals between. */
export async function dailyDumpsAndIncrementals(storage: StorageDriver, last: Date, days: number): Promise<{ dumps: Manifest[]; physical: Manifest[] }> {
  const dumps: Manifest[] = [];
  const physical: Manifest[] = [];
  for (let i = days - 1; i >= 0; i--) {
    const day = new Date(last.getTime() - i * 86_400_000).toISOString().slice(0, 10);
    dumps.push(await storeBackup(storage, `${day}T01:00:00Z`));
    const parent = physical.at(-1);
    const index = days - 1 - i;
    physical.push(await storeBackup(storage, `${day}T02:00:00Z`, index % 7 === 0 || !parent ? { type: 'full' } : { type: 'incremental', parent }));
  }
  return { dumps, physical };
}
