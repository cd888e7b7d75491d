// A schema whose name reads like an option (`-dash`) on a server backed up with auto-discovered
// schemas: it is backed up and restored with the others, never blocking them. Real servers (two
// fresh ones, so the odd schema does not leak into other tests' auto-discovery), the real
// mariadb-dump and mariadb client, CHECKSUM TABLE before and after.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { agent, freshServer, storageYaml, testDir, writeConfig, schemaChecksums } from '../helpers.ts';

const DASH = '-dash';
let source: Sandbox;
let target: Sandbox;
let config: string;

const connectionYaml = (server: Sandbox) =>
  ['host: 127.0.0.1', `port: ${server.port}`, 'user: agent', 'password: ${DB_PASSWORD}'].map((l) => `    ${l}`).join('\n');
const env = { DB_PASSWORD: 'target-pw' };

beforeAll(async () => {
  [source, target] = await Promise.all([freshServer('dash-source'), freshServer('dash-target')]);
  await source.sql(sampleDataSql('shop', 300));
  await source.sql(
    `CREATE DATABASE \`${DASH}\`; USE \`${DASH}\`; CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL);` +
      `INSERT INTO items SELECT seq, CONCAT('item ', seq) FROM seq_1_to_500;`,
  );
  const dir = await testDir('odd-schemas');
  config = await writeConfig(
    dir,
    ['storage:', await storageYaml('local'), 'databases:', '  - name: source', connectionYaml(source), '  - name: target', connectionYaml(target), ''].join('\n'),
  );
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop()]);
});

describe('a schema named -dash', () => {
  it('is backed up with the auto-discovered schemas and restored: checksums equal', async () => {
    const backup = await agent(['--config', config, 'run-now', '--database', 'source', '--json'], env);
    expect(backup.stderr).toBe('');
    expect(backup.exitCode).toBe(0);
    const [manifest] = JSON.parse(backup.stdout) as { schemas: string[] }[];
    expect(manifest?.schemas).toEqual([DASH, 'shop']);

    const restored = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target'], env);
    expect(restored.exitCode).toBe(0);
    for (const schema of [DASH, 'shop']) expect(await schemaChecksums(target.sql, schema)).toBe(await schemaChecksums(source.sql, schema));
  });
});
