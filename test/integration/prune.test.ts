// agent prune as a user runs it, on real backups in real stores (local directory and s3rver):
// the dry run explains itself, the real run removes exactly that, a held lock exits 3.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { s3Client } from '../harness/s3-server.ts';
import { agent, sourceConnectionYaml, sourceEnv, sourceSql, storageYaml, testDir, uniqueName, writeConfig, type StorageKind } from '../helpers.ts';

const schema = uniqueName('prune').replace('-', '_');
beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 50));
});

interface Report {
  database: string;
  dryRun: boolean;
  keep: { id: string; reasons: string[] }[];
  remove: { id: string }[];
  removed: string[];
}

describe.each<StorageKind>(['local', 's3'])('agent prune on %s storage', (kind) => {
  let config: string;
  let storage: string;
  const ids: string[] = [];

  beforeAll(async () => {
    storage = await storageYaml(kind);
    config = await writeConfig(
      await testDir(`prune-${kind}`),
      ['storage:', storage, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, '    retention:', '      manual: { keep_last: 2 }', ''].join('\n'),
    );
    for (let i = 0; i < 4; i++) {
      const result = await agent(['--config', config, 'run-now', '--json'], sourceEnv());
      expect(result.exitCode).toBe(0);
      ids.push((JSON.parse(result.stdout) as { id: string }[])[0]?.id ?? '');
    }
  });

  it('the dry run explains every decision; the real run removes exactly what it said', async () => {
    const dry = await agent(['--config', config, 'prune', '--dry-run', '--json'], sourceEnv());
    expect(dry.exitCode).toBe(0);
    const [plan] = JSON.parse(dry.stdout) as Report[];
    expect(plan?.keep.map((k) => [k.id, k.reasons])).toEqual([
      [ids[3], ['manual keep_last', 'newest successful']],
      [ids[2], ['manual keep_last']],
    ]);
    expect(plan?.remove.map((r) => r.id)).toEqual([ids[1], ids[0]]);

    const human = await agent(['--config', config, 'prune', '--dry-run'], sourceEnv());
    expect(human.stdout).toContain('source: keeping 2, would remove 2 (dry run)');
    expect(human.stdout).toMatch(new RegExp(`keep\\s+${ids[3]}\\s+manual\\s+.*manual keep_last, newest successful`));

    const real = await agent(['--config', config, 'prune', '--json'], sourceEnv());
    expect(real.exitCode).toBe(0);
    expect((JSON.parse(real.stdout) as Report[])[0]?.removed).toEqual(plan?.remove.map((r) => r.id));
    const listed = JSON.parse((await agent(['--config', config, 'list', '--json'], sourceEnv())).stdout) as { id: string }[];
    expect(listed.map((b) => b.id)).toEqual([ids[3], ids[2]]);
  });

  it('a lock held by another process: exit 3, a clear message, nothing removed', async () => {
    if (kind !== 's3') return; // the local lock is covered in-process (test/retention/prune.test.ts)
    const bucket = /bucket: (.*)/.exec(storage)?.[1] ?? '';
    const client = s3Client(inject('s3').endpoint);
    const lock = { owner: 'other', host: 'db2.example.com', pid: 4242, purpose: 'prune', acquiredAt: new Date().toISOString(), expiresAt: new Date(Date.now() + 600_000).toISOString() };
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'backups/prod/source/prune.lock', Body: JSON.stringify(lock) }));
    client.destroy();
    const result = await agent(['--config', config, 'prune'], sourceEnv());
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain('error: source: database source is locked: prune by db2.example.com (pid 4242) since ');
    expect(result.stderr).toContain('hint: wait for it to finish; if that process is gone, the lock expires at ');
    expect(JSON.parse((await agent(['--config', config, 'list', '--json'], sourceEnv())).stdout)).toHaveLength(2);
  });
});
