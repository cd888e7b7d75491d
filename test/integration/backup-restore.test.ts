// The key test: back up a real MariaDB with the real mariadb-dump through each storage driver
// (local directory, s3rver, the GCS emulator), restore into a fresh server, and compare
// CHECKSUM TABLE of every table, plus the routines, triggers, events and views.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import {
  agent,
  freshServer,
  sourceConnectionYaml,
  sourceEnv,
  sourceSql,
  storageYaml,
  testDir,
  uniqueName,
  writeConfig,
  type StorageKind,
  schemaChecksums,
} from '../helpers.ts';

const OBJECTS_SQL = (schema: string) => `
  SELECT 'table', table_name FROM information_schema.tables WHERE table_schema='${schema}' AND table_type='BASE TABLE'
  UNION ALL SELECT 'view', table_name FROM information_schema.views WHERE table_schema='${schema}'
  UNION ALL SELECT 'routine', routine_name FROM information_schema.routines WHERE routine_schema='${schema}'
  UNION ALL SELECT 'trigger', trigger_name FROM information_schema.triggers WHERE trigger_schema='${schema}'
  UNION ALL SELECT 'event', event_name FROM information_schema.events WHERE event_schema='${schema}'
  ORDER BY 1, 2`;

function targetYaml(server: Sandbox): string {
  return ['host: 127.0.0.1', `port: ${server.port}`, 'user: agent', 'password: ${TARGET_DB_PASSWORD}'].map((l) => `    ${l}`).join('\n');
}

const env = () => ({ ...sourceEnv(), TARGET_DB_PASSWORD: 'target-pw' });

describe.each<StorageKind>(['local', 's3', 'gcs'])('backup and restore through %s storage', (kind) => {
  let schema: string;
  let target: Sandbox;
  let config: string;
  let dir: string;

  beforeAll(async () => {
    schema = uniqueName('shop').replace('-', '_');
    await sourceSql(sampleDataSql(schema, 1500));
    target = await freshServer(`target-${kind}`);
    dir = await testDir(`br-${kind}`);
    config = await writeConfig(
      dir,
      [
        'storage:',
        await storageYaml(kind),
        'databases:',
        '  - name: source',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '  - name: target',
        targetYaml(target),
        '',
      ].join('\n'),
    );
  });

  afterAll(async () => {
    await target?.stop();
  });

  it('backs up, lists, and restores into a fresh server with equal checksums', async () => {
    // Writes after the backup must not appear in the restore.
    const backup = await agent(['--config', config, 'run-now', '--database', 'source', '--json'], env());
    expect(backup.stderr).toBe('');
    expect(backup.exitCode).toBe(0);
    const [manifest] = JSON.parse(backup.stdout) as Record<string, any>[];
    expect(manifest).toMatchObject({ database: 'source', type: 'dump', trigger: 'manual', status: 'completed', schemas: [schema] });
    expect(manifest?.['binlog']?.file).toMatch(/^mysql-bin\.\d{6}$/);
    expect(manifest?.['binlog']?.gtid).toMatch(/^\d+-\d+-\d+/);
    expect(manifest?.['objects'][0].sha256).toMatch(/^[0-9a-f]{64}$/);
    const before = await schemaChecksums(sourceSql, schema);
    const objectsBefore = await sourceSql(OBJECTS_SQL(schema));
    await sourceSql(`INSERT INTO \`${schema}\`.customers (name, email, created_at) VALUES ('late', 'late@example.com', NOW())`);

    const listed = await agent(['--config', config, 'list', '--json'], env());
    expect(listed.exitCode).toBe(0);
    const entries = JSON.parse(listed.stdout) as Record<string, unknown>[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      id: manifest?.['id'],
      database: 'source',
      type: 'dump',
      trigger: 'manual',
      status: 'completed',
      createdAt: manifest?.['startedAt'],
      sizeBytes: manifest?.['sizeBytes'],
    });

    const restored = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target'], env());
    expect(restored.stderr).toContain('Selected the most recent successful backup');
    expect(restored.exitCode).toBe(0);
    expect(restored.stdout).toContain(`restored backup ${manifest?.['id']}`);

    expect(await schemaChecksums(target.sql, schema)).toBe(before);
    expect(await target.sql(OBJECTS_SQL(schema))).toBe(objectsBefore);
    expect(await target.sql(`SELECT COUNT(*) FROM \`${schema}\`.customers WHERE name = 'late'`)).toBe('0');
  });

  it('refuses to restore into a schema that holds tables, and restores over it with --yes', async () => {
    const refused = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target'], env());
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`error: restore into target: schema ${schema} (3 tables, 1 view, 1 routine, 1 trigger, 1 event) already holds data`);
    expect(refused.stderr).toContain('hint: pass --yes');

    await target.sql(`DELETE FROM \`${schema}\`.orders WHERE id % 2 = 0`);
    const forced = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--yes'], env());
    expect(forced.exitCode).toBe(0);
    expect(await target.sql(`SELECT COUNT(*) FROM \`${schema}\`.orders`)).toBe('4500');
  });

  it('downloads the newest backup, verified, and it restores with stock tools only', async () => {
    const out = join(dir, 'download');
    const result = await agent(['--config', config, 'download', '--database', 'source', '--output', out], env());
    expect(result.exitCode).toBe(0);
    expect(result.stderr).toContain('Selected the most recent successful backup');
    const files = await readdir(out);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}Z_source_\d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6}\.sql\.zst$/);

    if (kind !== 'local') return; // one stock-tool restore is enough; the archive is the same for every store
    // The dump went from mariadb-dump straight into zstd: the agent read only its head, yet the
    // manifest has the raw size (zstd's own total) and the GTID mariadb-dump wrote at the very end
    // of a dump longer than that head (asked of the server with BINLOG_GTID_POS, as the dump tool does).
    const sql = (await execa('zstd', ['-dc', join(out, files[0] ?? '')], { encoding: 'buffer', maxBuffer: 1e9, stripFinalNewline: false })).stdout as Uint8Array;
    const [newest] = JSON.parse((await agent(['--config', config, 'list', '--json'], env())).stdout) as { rawSizeBytes: number; binlog: { gtid: string | null } }[];
    expect(sql.length).toBeGreaterThan(256 * 1024);
    expect(newest?.rawSizeBytes).toBe(sql.length);
    const tail = Buffer.from(sql).subarray(-4096).toString('utf8');
    expect(newest?.binlog.gtid).toBe(/gtid_slave_pos='([^']*)'/.exec(tail)?.[1]);
    const manual = await freshServer('stock-tools');
    try {
      const cnf = join(manual.datadir, '..', 'my.cnf');
      await execa('bash', ['-c', `zstd -dc "$1" | mariadb --defaults-file="$2"`, 'restore', join(out, files[0] ?? ''), cnf]);
      expect(await schemaChecksums(manual.sql, schema)).toBe(await schemaChecksums(target.sql, schema));
    } finally {
      await manual.stop();
    }
  });
});
