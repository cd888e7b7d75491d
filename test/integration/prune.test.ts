// agent prune as a user runs it, on real backups in real stores (local directory and s3rver):
// the dry run explains itself, the real run removes exactly that, a held lock exits 3; families
// count apart; an unreadable manifest stops the database; a backup without its data never counts.
import { existsSync } from 'node:fs';
import { unlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DeleteObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { manifestKey } from '../../src/catalog/keys.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { s3Client } from '../harness/s3-server.ts';
import { dailyDumpsAndIncrementals, storeBackup } from '../retention/stored-backups.ts';
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
    expect(human.stdout).toContain('source: keeping 2 backups; would remove 2 backups (dry run)');
    expect(human.stdout).toMatch(new RegExp(`keep\\s+${ids[3]}\\s+dump\\s+manual\\s+.*manual keep_last, newest successful`));

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

// The findings, through the real CLI on real stores. Backups for the retention decisions
// are written the way the agent writes them, at chosen dates (stored-backups.ts): a run-now is
// always manual and always now, so periodic backups spread over days cannot come from it.
describe('agent prune: families, per local store', () => {
  const yaml = (store: string, retention: string, orphanGrace = '24h') =>
    ['storage:', `  type: local`, `  path: ${store}`, `prune: { orphan_grace: ${orphanGrace} }`, 'databases:', '  - name: shop', `    retention: ${retention}`, ''].join('\n');

  it('keep_last: 2 over daily dumps and daily full backups keeps two of each; --dry-run shows the grouping', async () => {
    const dir = await testDir('prune-mixed');
    const storage = new LocalDriver(join(dir, 'store'));
    const stored: Manifest[] = [];
    for (let day = 1; day <= 3; day++) {
      stored.push(await storeBackup(storage, `2026-11-0${day}T01:00:00Z`), await storeBackup(storage, `2026-11-0${day}T03:00:00Z`, { type: 'full' }));
    }
    const config = await writeConfig(dir, yaml(join(dir, 'store'), '{ keep_last: 2 }'));
    const dry = await agent(['--config', config, 'prune', '--dry-run', '--json']);
    expect(dry.exitCode).toBe(0);
    const [plan] = JSON.parse(dry.stdout) as (Report & { families: { family: string; keep: string[]; remove: string[] }[] })[];
    const ids = (type: string) => stored.filter((m) => m.type === type).map((m) => m.id).reverse();
    expect(plan?.families).toEqual([
      { family: 'logical', keep: ids('dump').slice(0, 2), remove: ids('dump').slice(2) },
      { family: 'physical', keep: ids('full').slice(0, 2), remove: ids('full').slice(2) },
    ]);
    const text = await agent(['--config', config, 'prune', '--dry-run']);
    expect(text.stdout).toContain('shop: keeping 4 backups; would remove 2 backups (dry run)');
    expect(text.stdout).toContain('logical backups (dump): keeping 2, would remove 1');
    expect(text.stdout).toContain('physical backups (full + incremental): keeping 2, would remove 1');

    const real = await agent(['--config', config, 'prune']);
    expect(real.exitCode).toBe(0);
    expect(real.stdout).toContain('shop: keeping 4 backups; removed 2 backups');
    const listed = JSON.parse((await agent(['--config', config, 'list', '--json'])).stdout) as { id: string; type: string }[];
    expect(listed.map((b) => b.id).sort()).toEqual([...ids('dump').slice(0, 2), ...ids('full').slice(0, 2)].sort());
  });

  it('a daily dump at 01:00 and a daily incremental at 02:00 with keep_daily: 7 keep seven dumps, the newest included', async () => {
    const dir = await testDir('prune-daily-inc');
    const storage = new LocalDriver(join(dir, 'store'));
    const yesterday = new Date(Date.now() - 86_400_000);
    const { dumps, physical } = await dailyDumpsAndIncrementals(storage, yesterday, 10);
    const config = await writeConfig(dir, yaml(join(dir, 'store'), '{ keep_daily: 7 }'));
    const result = await agent(['--config', config, 'prune', '--json']);
    expect(result.exitCode).toBe(0);
    const [report] = JSON.parse(result.stdout) as (Report & { families: { family: string; keep: string[] }[] })[];
    expect(report?.families.find((f) => f.family === 'logical')?.keep).toEqual(dumps.slice(3).reverse().map((m) => m.id));
    // Seven daily restore points (days 4–10: a full on day 8, incrementals on 4–7 back to the full of day 1) and their chains.
    expect(report?.families.find((f) => f.family === 'physical')?.keep).toEqual(physical.map((m) => m.id).reverse());
    expect(report?.removed.sort()).toEqual(dumps.slice(0, 3).map((m) => m.id).sort());
  });

  it('the summary counts every kind of thing removed: backups, orphaned objects, unfinished uploads (it said "removed 0")', async () => {
    const dir = await testDir('prune-summary-cli');
    const store = join(dir, 'store');
    const storage = new LocalDriver(store);
    const kept = await storeBackup(storage, '2026-11-02T01:00:00Z');
    await storeBackup(storage, '2026-11-01T01:00:00Z');
    const abandoned = await storeBackup(storage, '2026-10-01T01:00:00Z');
    await unlink(join(store, manifestKey('shop', abandoned.id)));
    const partial = join(store, 'shop', 'backups', kept.id, 'dump.sql.zst.0123456789ab.partial');
    await writeFile(partial, 'a writer that crashed');
    await utimes(partial, new Date('2026-01-01'), new Date('2026-01-01'));
    await utimes(join(store, abandoned.objects[0]?.key ?? ''), new Date('2026-01-01'), new Date('2026-01-01'));
    const config = await writeConfig(dir, yaml(store, '{ keep_last: 1 }', '1h'));
    const result = await agent(['--config', config, 'prune']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain('shop: keeping 1 backup; removed 1 backup, 1 orphaned object, 1 unfinished upload');
    expect(result.stdout).toContain(`orphaned objects: removed 1`);
    expect(existsSync(partial)).toBe(false);
  });

  it('an unreadable manifest or one of a newer format: nothing removed past orphan_grace 0s, exit 1, and why', async () => {
    for (const damage of ['not JSON', 'version 4'] as const) {
      const dir = await testDir('prune-unreadable');
      const store = join(dir, 'store');
      const storage = new LocalDriver(store);
      const backups: Manifest[] = [];
      for (let day = 1; day <= 4; day++) backups.push(await storeBackup(storage, `2026-11-0${day}T01:00:00Z`));
      const bad = backups[1] as Manifest;
      await writeFile(join(store, manifestKey('shop', bad.id)), damage === 'not JSON' ? '{"format": "backup-agent/man' : JSON.stringify({ ...bad, version: 4 }));
      const config = await writeConfig(dir, yaml(store, '{ keep_last: 1 }', '0s'));
      const result = await agent(['--config', config, 'prune']);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(
        damage === 'not JSON'
          ? `error: shop: prune database shop: cannot read 1 manifest (shop/backups/${bad.id}/manifest.json: manifest is not JSON: `
          : `error: shop: prune database shop: 1 manifest written by a newer agent (format version 4; this agent reads 3): shop/backups/${bad.id}/manifest.json; nothing was removed`,
      );
      expect(result.stderr).toMatch(/hint: (repair or remove the unreadable manifest by hand|upgrade this agent)/);
      for (const b of backups) expect(existsSync(join(store, b.objects[0]?.key ?? '')), `${damage}: data of ${b.id}`).toBe(true);
      expect(existsSync(join(store, manifestKey('shop', bad.id)))).toBe(true);
      expect((await agent(['--config', config, 'list'])).exitCode).toBe(1);
    }
  });
});

describe.each<StorageKind>(['local', 's3'])('a backup whose data object is gone, on %s storage', (kind) => {
  it('list marks it; prune keeps the last restorable backup, which restores', async () => {
    const db = uniqueName('gone').replace('-', '_');
    await sourceSql(sampleDataSql(db, 20));
    const storage = await storageYaml(kind);
    const config = await writeConfig(
      await testDir(`prune-gone-${kind}`),
      ['storage:', storage, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${db}]`, '    retention: { manual: { keep_last: 1 } }', ''].join('\n'),
    );
    const checksum = () => sourceSql(`CHECKSUM TABLE \`${db}\`.customers, \`${db}\`.orders, \`${db}\`.audit EXTENDED`);
    const runNow = async () => {
      const result = await agent(['--config', config, 'run-now', '--json'], sourceEnv());
      expect(result.exitCode).toBe(0);
      return (JSON.parse(result.stdout) as Manifest[])[0] as Manifest;
    };
    const oldest = await runNow();
    await sourceSql(`INSERT INTO \`${db}\`.audit (what, at) VALUES ('between', NOW(6))`);
    const restorable = await runNow();
    const atRestorable = await checksum();
    await sourceSql(`INSERT INTO \`${db}\`.audit (what, at) VALUES ('after', NOW(6))`);
    const newest = await runNow();

    // The newest backup's data object disappears (deleted by hand, a lifecycle rule, a bad sync).
    const key = newest.objects[0]?.key ?? '';
    if (kind === 'local') {
      await unlink(join(/path: (.*)/.exec(storage)?.[1] ?? '', key));
    } else {
      const client = s3Client(inject('s3').endpoint);
      await client.send(new DeleteObjectCommand({ Bucket: /bucket: (.*)/.exec(storage)?.[1] ?? '', Key: `backups/prod/${key}` }));
      client.destroy();
    }

    const listed = await agent(['--config', config, 'list', '--json'], sourceEnv());
    expect(listed.exitCode).toBe(1);
    expect((JSON.parse(listed.stdout) as { id: string; status: string; problem: string | null }[]).map((b) => [b.id, b.status, b.problem])).toEqual([
      [newest.id, 'data missing', `data object ${key} is missing`],
      [restorable.id, 'completed', null],
      [oldest.id, 'completed', null],
    ]);
    expect(listed.stderr).toContain(`warning: source/${newest.id}: cannot be restored: data object ${key} is missing`);
    const table = await agent(['--config', config, 'list'], sourceEnv());
    expect(table.stdout).toMatch(new RegExp(`${newest.id}.*data missing`));

    const pruned = await agent(['--config', config, 'prune', '--json'], sourceEnv());
    expect(pruned.exitCode).toBe(0);
    const [report] = JSON.parse(pruned.stdout) as (Report & { unrestorable: { id: string; problem: string }[] })[];
    expect(report?.keep.map((k) => [k.id, k.reasons])).toEqual([
      [newest.id, [`not restorable (data object ${key} is missing): kept, not counted`]],
      [restorable.id, ['manual keep_last', 'newest successful']],
    ]);
    expect(report?.removed).toEqual([oldest.id]);
    expect(report?.unrestorable.map((u) => [u.id, u.problem])).toEqual([[newest.id, `data object ${key} is missing`]]);

    const restored = await agent(['--config', config, 'restore', '--database', 'source', '--backup', restorable.id, '--yes'], sourceEnv());
    expect(restored.exitCode).toBe(0);
    expect(await checksum()).toBe(atRestorable);
  });
});

describe('an unreadable manifest on s3 storage', () => {
  it('prune removes nothing, orphans included, with orphan_grace 0s; exit 1', async () => {
    const db = uniqueName('unread').replace('-', '_');
    await sourceSql(sampleDataSql(db, 5));
    const storage = await storageYaml('s3');
    const bucket = /bucket: (.*)/.exec(storage)?.[1] ?? '';
    const config = await writeConfig(
      await testDir('prune-unreadable-s3'),
      ['storage:', storage, 'prune: { orphan_grace: 0s }', 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${db}]`, '    retention: { manual: { keep_last: 1 } }', ''].join('\n'),
    );
    const made: Manifest[] = [];
    for (let i = 0; i < 2; i++) {
      const result = await agent(['--config', config, 'run-now', '--json'], sourceEnv());
      expect(result.exitCode).toBe(0);
      made.push((JSON.parse(result.stdout) as Manifest[])[0] as Manifest);
    }
    const [older] = made as [Manifest, Manifest];
    const client = s3Client(inject('s3').endpoint);
    try {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: `backups/prod/${manifestKey('source', older.id)}`, Body: '{"format": "backup-agent/manifest", "vers' }));
      const result = await agent(['--config', config, 'prune'], sourceEnv());
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain(`error: source: prune database source: cannot read 1 manifest (source/backups/${older.id}/manifest.json: manifest is not JSON: `);
      for (const m of made) {
        const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: `backups/prod/${m.objects[0]?.key ?? ''}` }));
        expect(head.ContentLength).toBe(m.objects[0]?.sizeBytes);
      }
    } finally {
      client.destroy();
    }
  });
});
