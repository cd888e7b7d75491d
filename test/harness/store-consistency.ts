// "Every listed backup restorable and nothing half-written", checked the way an outsider would:
// the store is read with its own client (the file system, the AWS SDK), not through the agent's
// drivers, and the newest backup is restored by the real CLI into a fresh server.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { cp, readdir, readFile, rm } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { expect } from 'vitest';
import { parse, stringify } from 'yaml';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { agent, freshServer, testDir, writeConfig } from '../helpers.ts';
import { freePort } from './child-process.ts';
import { s3Client } from './s3-server.ts';

interface StorageBlock {
  type: 'local' | 's3' | 'gcs';
  path?: string;
  bucket?: string;
  prefix?: string;
  endpoint?: string;
}

interface StoredManifest {
  id: string;
  database: string;
  objects: { key: string; sizeBytes: number; sha256: string }[];
}

/** An independent reader of the store a configuration names: keys relative to its root/prefix. */
interface StoreReader {
  keys(): Promise<string[]>;
  open(key: string): Promise<Readable>;
}

function readerFor(storage: StorageBlock): StoreReader {
  if (storage.type === 'local' && storage.path) {
    const root = storage.path;
    return {
      // .partial files included: they are exactly the half-written things this looks for.
      keys: async () =>
        (await readdir(root, { recursive: true, withFileTypes: true }).catch(() => []))
          .filter((e) => e.isFile())
          .map((e) => relative(root, join(e.parentPath, e.name)).split(sep).join('/'))
          .sort(),
      open: async (key) => createReadStream(join(root, ...key.split('/'))),
    };
  }
  if (storage.type === 's3' && storage.endpoint && storage.bucket) {
    const { endpoint, bucket } = storage;
    const prefix = storage.prefix ? `${storage.prefix.replace(/\/+$/, '')}/` : '';
    return {
      keys: async () => {
        const client = s3Client(endpoint);
        try {
          const keys: string[] = [];
          let token: string | undefined;
          do {
            const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
            keys.push(...(page.Contents ?? []).map((o) => (o.Key ?? '').slice(prefix.length)));
            token = page.IsTruncated ? page.NextContinuationToken : undefined;
          } while (token);
          return keys.sort();
        } finally {
          client.destroy();
        }
      },
      open: async (key) => {
        const client = s3Client(endpoint);
        const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `${prefix}${key}` }));
        const body = out.Body as Readable;
        body.once('close', () => client.destroy());
        return body;
      },
    };
  }
  throw new Error(`assertStoreConsistent: storage type ${storage.type} is not supported by this helper`);
}

async function sha256Of(body: Readable): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(body, async (source: AsyncIterable<Buffer>) => {
    for await (const chunk of source) {
      size += chunk.length;
      hash.update(chunk);
    }
  });
  return { size, sha256: hash.digest('hex') };
}

/** True for objects a committed binlog segment owns: its manifest, and data whose manifest exists. */
function isCommittedSegment(key: string, all: ReadonlySet<string>): boolean {
  if (/\/binlog\/[^/]+\/\d{12}-\d{12}\.json$/.test(key)) return true;
  const data = /^(.*\/binlog\/[^/]+\/\d{12}-\d{12})\.binlog(\.[a-z]+)?$/.exec(key);
  return data !== null && all.has(`${data[1]}.json`);
}

export interface ConsistencyOptions {
  env: Record<string, string>;
  /** The database entry whose backups are checked (default: the only one). */
  database?: string;
  /** CHECKSUM TABLE of the source as it was at each backup, by backup ID. */
  recorded: ReadonlyMap<string, string>;
  /** Computes the same checksums on a restored server. */
  checksums: (sql: (statement: string) => Promise<string>) => Promise<string>;
  /** false: skip the restore, for a test that restores the newest backup its own way (a PITR). */
  restore?: boolean;
}

export interface ConsistencyReport {
  /** IDs `agent list` shows, newest first. */
  listed: string[];
  /** Objects in the store that belong to no listed backup and no committed segment (incl. .partial files). */
  strays: string[];
  /** Lease objects (`<db>/leases/*.json`) still in the store, when there are any: bookkeeping, not data. */
  leases?: string[];
}

/**
 * Asserts that `agent list` works, every listed backup's data objects are in the store with the
 * size and SHA-256 its manifest records, and that the newest one restores into a fresh server
 * with CHECKSUM TABLE equal to the source at its time. Returns what else the store holds, for the
 * test to assert on (leftovers of a killed process are expected until prune removes them).
 */
export async function assertStoreConsistent(config: string, options: ConsistencyOptions): Promise<ConsistencyReport> {
  const yaml = parse(await readFile(config, 'utf8')) as { storage: StorageBlock; databases: { name: string }[] };
  const database = options.database ?? yaml.databases[0]?.name ?? '';
  const listedRun = await agent(['--config', config, 'list', '--database', database, '--json'], options.env);
  expect(listedRun.stderr).toBe('');
  expect(listedRun.exitCode).toBe(0);
  const listed = (JSON.parse(listedRun.stdout) as { id: string }[]).map((b) => b.id);

  const reader = readerFor(yaml.storage);
  const keys = await reader.keys();
  const owned = new Set<string>();
  for (const id of listed) {
    // Either layout (docs/FORMAT.md): <db>/backups/<id>/ now, <db>/<id>/ before manifest version 2.
    const manifestKey = [`${database}/backups/${id}/manifest.json`, `${database}/${id}/manifest.json`].find((k) => keys.includes(k)) ?? `${database}/backups/${id}/manifest.json`;
    const manifest = JSON.parse(await (await reader.open(manifestKey)).toArray().then((c) => Buffer.concat(c).toString())) as StoredManifest;
    owned.add(manifestKey);
    for (const object of manifest.objects) {
      expect({ key: object.key, ...(await sha256Of(await reader.open(object.key))) }).toEqual({ key: object.key, size: object.sizeBytes, sha256: object.sha256 });
      owned.add(object.key);
    }
  }
  const all = new Set(keys);
  const isLease = (k: string) => k.startsWith(`${database}/leases/`) && k.endsWith('.json');
  // The archive's complete-through marker (binlog/complete-marker.ts) is the archive's own record, not a stray.
  const isCompleteMarker = (k: string) => /\/binlog\/complete-through\.json$/.test(k);
  // Verification records (agent verify) of a listed backup, or of the binlog archive, are that backup's or archive's own; one of a backup no longer listed is a stray.
  const isOwnRecord = (k: string) => /\/binlog\/verify\/[^/]+\.json$/.test(k) || listed.some((id) => k.startsWith(`${database}/backups/${id}/verify/`) || k.startsWith(`${database}/${id}/verify/`));
  const strays = keys.filter((k) => !owned.has(k) && !isCommittedSegment(k, all) && !isLease(k) && !isCompleteMarker(k) && !isOwnRecord(k));
  const leases = keys.filter(isLease);

  const newest = listed[0];
  if (newest !== undefined && options.restore !== false) {
    const expected = options.recorded.get(newest);
    expect(expected, `no checksums recorded for the newest listed backup ${newest}`).toBeDefined();
    await restoreAndCompare(yaml, config, database, newest, expected ?? '', options);
  }
  return { listed, strays, ...(leases.length > 0 ? { leases } : {}) };
}

async function restoreAndCompare(yaml: { databases: unknown[] }, config: string, database: string, id: string, expected: string, options: ConsistencyOptions): Promise<void> {
  let target: Sandbox | undefined;
  try {
    target = await freshTarget();
    const withTarget = { ...yaml, databases: [...yaml.databases, { name: 'consistency-target', host: '127.0.0.1', port: target.port, user: 'agent', password: TARGET_PASSWORD }] };
    const targetConfig = await writeConfig(await testDir('consistency'), stringify(withTarget));
    const restored = await agent(['--config', targetConfig, 'restore', '--database', database, '--backup', id, '--target', 'consistency-target', '--no-binlog'], options.env);
    expect(restored.exitCode, `restore of ${id} failed (${config}):\n${restored.stderr}`).toBe(0);
    expect(await options.checksums(target.sql)).toBe(expected);
  } finally {
    await target?.stop();
  }
}

export const TARGET_PASSWORD = 'target-pw';
let template: Promise<string> | undefined;

/**
 * A fresh, empty server to restore into (the `agent` user has TARGET_PASSWORD). mariadb-install-db
 * is the slow part of a fresh server, so it runs once per test file and each target starts on a
 * copy of that pristine datadir, minus its binlog (whose index names the template's paths).
 */
export async function freshTarget(): Promise<Sandbox> {
  template ??= freshServer('restore-template').then(async (server) => {
    await server.stop();
    return server.datadir;
  });
  const dir = await testDir('restore-target');
  const datadir = join(dir, 'data');
  await cp(await template, datadir, { recursive: true });
  for (const file of await readdir(datadir)) if (file.startsWith('mysql-bin.')) await rm(join(datadir, file));
  return startSandbox({ dir, port: await freePort(), serverId: 100 + Math.floor(Math.random() * 1000), existingDatadir: datadir });
}
