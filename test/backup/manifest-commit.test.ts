// A manifest write that fails may still have landed (a timeout after the store committed it).
// Real backups of the harness MariaDB into a real local directory, through a named double driver
// that fails the manifest PUT in the three ways that matter: landed, unknown, absent.
import { Readable } from 'node:stream';
import { pino } from 'pino';
import { beforeAll, describe, expect, it } from 'vitest';
import { runBackup } from '../../src/backup/run.ts';
import { listBackups } from '../../src/catalog/listing.ts';
import { MANIFEST_NAME } from '../../src/catalog/keys.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/normalize.ts';
import type { PutOptions, VersionedObject } from '../../src/storage/driver.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName, writeConfig } from '../helpers.ts';
import { listAll } from '../storage/contract.ts';

const schema = uniqueName('commit').replace('-', '_');
let config: AgentConfig;
beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 20));
  const dir = await testDir('manifest-commit');
  const path = await writeConfig(dir, ['storage: { type: local, path: /unused }', 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, ''].join('\n'));
  config = loadConfig(path, { ...process.env, ...sourceEnv() });
});

type Mode = 'lands-then-fails' | 'fails-and-read-fails' | 'fails-before-landing';

/**
 * Double around a real LocalDriver: the manifest PUT fails. 'lands-then-fails' stores it first
 * (a timeout after the commit); 'fails-and-read-fails' also fails reading it back; the last
 * stores nothing.
 */
class FailingManifestWrite extends ForwardingDriver {
  readonly mode: Mode;
  constructor(inner: LocalDriver, mode: Mode) {
    super(inner);
    this.mode = mode;
  }

  override async put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    if (!key.endsWith(`/${MANIFEST_NAME}`)) return super.put(key, body, options);
    if (this.mode === 'lands-then-fails') await super.put(key, body, options);
    throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
  }

  override async getVersioned(key: string): Promise<VersionedObject | undefined> {
    if (this.mode === 'fails-and-read-fails' && key.endsWith(`/${MANIFEST_NAME}`)) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:9'), { code: 'ECONNREFUSED' });
    return super.getVersioned(key);
  }
}

async function backUp(mode: Mode) {
  const real = new LocalDriver(await testDir(`commit-${mode}`));
  const database = config.databases[0];
  if (!database) throw new Error('no database');
  const result = await runBackup({ config, database, storage: new FailingManifestWrite(real, mode), trigger: 'manual', logger: pino({ level: 'silent' }) }, 'dump').then(
    (manifest) => ({ manifest, error: undefined }),
    (error: unknown) => ({ manifest: undefined, error: error as Error & { hint?: string } }),
  );
  return { real, ...result, keys: (await listAll(real, 'source/')).map((o) => o.key) };
}

describe('a failed manifest write', () => {
  it('that landed after all: the backup is committed, listed, its data intact', async () => {
    const { real, manifest, error, keys } = await backUp('lands-then-fails');
    expect(error).toBeUndefined();
    expect((await listBackups(real, 'source')).backups.map((b) => b.id)).toEqual([manifest?.id]);
    expect(keys).toEqual([manifest?.objects[0]?.key, `source/backups/${manifest?.id}/manifest.json`]);
    expect((await real.stat(manifest?.objects[0]?.key ?? ''))?.size).toBe(manifest?.sizeBytes);
  });

  it('whose fate is unknown (reading it back fails too): fails loudly and keeps the data', async () => {
    const { error, keys } = await backUp('fails-and-read-fails');
    expect(error?.message).toMatch(
      /^commit manifest of backup \S+ to \S+: socket hang up — ECONNRESET; reading it back failed too \(connect ECONNREFUSED 127\.0\.0\.1:9\), so the data is kept$/,
    );
    expect(error?.hint).toMatch(/^once the store answers again, `agent list` shows the backup if its manifest was stored/);
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatch(/^source\/backups\/[^/]+\/dump\.sql\.zst$/);
  });

  it('that is known absent: the data is removed, no lease or directory is left', async () => {
    const { real, error, keys } = await backUp('fails-before-landing');
    expect(error?.message).toMatch(/^commit manifest of backup \S+ to \S+: socket hang up — ECONNRESET$/);
    expect(keys).toEqual([]);
    expect(await listAll(real, '')).toEqual([]);
  });
});
