// Restore from any bucket: after losing the host that took the backups (and its configuration),
// `list`, `download` and `restore` read the archive given by `--from s3://…` with nothing but the
// bucket, its credentials (environment, or an AWS shared credentials file with a profile) and, for
// a logical restore, a configured entry to restore into. Real s3rver, real servers, real tools.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { agent, freshServer, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName, writeConfig, schemaChecksums } from '../helpers.ts';

describe('restore, download and list --from a bucket named on the command line', () => {
  let schema: string;
  let bucket: string;
  let dir: string;
  let target: Sandbox;
  let newHost: string;
  let before: string;
  let dumpId: string;
  const endpoint = () => inject('s3').endpoint;
  /** The store as flags: s3rver needs path style (implied by --endpoint), no aws-chunked bodies, and listing by walking. */
  const from = () => [`--from`, `s3://${bucket}/backups/prod`, '--endpoint', endpoint(), '--from-option', 'checksum=when_required', '--from-option', 'delimiter_listing=false'];
  /** No configuration, keys from the environment, caches under the test's directory. */
  const bare = () => ({ AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') });

  beforeAll(async () => {
    schema = uniqueName('lost').replace('-', '_');
    await sourceSql(sampleDataSql(schema, 800));
    bucket = uniqueName('bkt');
    await createS3Bucket(endpoint(), bucket);
    dir = await testDir('restore-from');
    // The host that is lost afterwards: its configuration names the bucket and its keys.
    const lost = await writeConfig(
      await testDir('lost-host'),
      [
        'storage:',
        '  type: s3',
        `  bucket: ${bucket}`,
        '  prefix: backups/prod',
        `  endpoint: ${endpoint()}`,
        '  force_path_style: true',
        '  access_key_id: S3RVER',
        '  secret_access_key: S3RVER',
        '  checksum: when_required',
        '  delimiter_listing: false',
        'databases:',
        '  - name: shop',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '',
      ].join('\n'),
    );
    const dump = await agent(['--config', lost, 'run-now', '--json'], sourceEnv());
    expect(dump.exitCode, dump.stderr).toBe(0);
    dumpId = (JSON.parse(dump.stdout) as { id: string }[])[0]?.id ?? '';
    const full = await agent(['--config', lost, 'run-now', '--type', 'full'], sourceEnv());
    expect(full.exitCode, full.stderr).toBe(0);
    before = await schemaChecksums(sourceSql, schema);

    // The new host: its own local storage and one entry, the server to restore into.
    target = await freshServer('from-target');
    newHost = await writeConfig(
      await testDir('new-host'),
      ['storage:', '  type: local', `  path: ${join(dir, 'own-store')}`, 'databases:', '  - name: target', '    host: 127.0.0.1', `    port: ${target.port}`, '    user: agent', '    password: ${TARGET_DB_PASSWORD}', ''].join('\n'),
    );
  });

  afterAll(async () => {
    await target?.stop();
  });

  it('lists another agent’s catalog with no configuration file at all', async () => {
    const listed = await agent(['list', ...from(), '--json'], bare());
    expect(listed.exitCode, listed.stderr).toBe(0);
    const rows = JSON.parse(listed.stdout) as { id: string; database: string; type: string; status: string; location: string }[];
    expect(rows.map((r) => [r.database, r.type, r.status])).toEqual([
      ['shop', 'full', 'completed'],
      ['shop', 'dump', 'completed'],
    ]);
    expect(rows[1]?.id).toBe(dumpId);
    expect(rows[1]?.location).toBe(`s3://${bucket}/backups/prod/shop/backups/${dumpId}/`);

    const table = await agent(['list', ...from()], bare());
    expect(table.exitCode).toBe(0);
    expect(table.stdout).toContain(dumpId);
  });

  it('restores a logical backup of the bucket into a configured entry, checksums equal', async () => {
    const restored = await agent(['--config', newHost, 'restore', ...from(), '--target', 'target'], { ...bare(), TARGET_DB_PASSWORD: 'target-pw' });
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(restored.stdout).toContain(`restored backup ${dumpId} of shop`);
    expect(await schemaChecksums(target.sql, schema)).toBe(before);
  });

  it('without --target names the missing entry, exit 2, and writes nothing', async () => {
    const refused = await agent(['--config', newHost, 'restore', ...from(), '--database', 'shop'], { ...bare(), TARGET_DB_PASSWORD: 'target-pw' });
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('error: --target is required: no database entry is named shop, the database of the --from store');
    expect(refused.stderr).toContain('hint: the configuration names: target');
  });

  it('downloads with credentials from an AWS shared credentials file and a profile', async () => {
    const credentials = join(dir, 'credentials');
    await writeFile(credentials, '[default]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n\n[restore]\naws_access_key_id = S3RVER\naws_secret_access_key = S3RVER\n', { mode: 0o600 });
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') };
    const out = join(dir, 'download');
    const result = await agent(['download', ...from(), '--credentials-file', credentials, '--profile', 'restore', '--backup', dumpId, '--output', out], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('SHA-256 verified');
    expect(await readdir(out)).toEqual([expect.stringMatching(new RegExp(`_shop_${dumpId.replace('.', '\\.')}\\.sql\\.zst$`))]);

    // A profile the file does not have: the error names it, and nothing is written.
    const missing = await agent(['download', ...from(), '--credentials-file', credentials, '--profile', 'nope', '--output', join(dir, 'nothing')], env);
    expect(missing.exitCode).not.toBe(0);
    expect(missing.stderr).toContain('nope');
  });

  it('restores the physical backup into a datadir with no configuration file, and it verifies', async () => {
    const datadir = join(dir, 'datadir');
    const restored = await agent(['restore', ...from(), '--datadir', datadir, '--verify'], bare());
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(restored.stdout).toContain('verified: every table checks OK and has a checksum');
    expect(restored.stdout).toContain(`${schema}.`);
  });

  it('refuses a secret on the command line without echoing it, and companion flags without --from', async () => {
    const secret = await agent(['list', ...from(), '--from-option', 'secret_access_key=hunter2'], bare());
    expect(secret.exitCode).toBe(2);
    expect(secret.stderr).toContain('error: --from-option secret_access_key: a secret on the command line is visible to every user of the host (ps)');
    expect(secret.stderr).not.toContain('hunter2');

    const stray = await agent(['--config', newHost, 'list', '--endpoint', endpoint()], { ...bare(), TARGET_DB_PASSWORD: 'target-pw' });
    expect(stray.exitCode).toBe(2);
    expect(stray.stderr).toContain('error: --endpoint needs --from');
  });

  it('reads a local directory given as --from, and says when it holds nothing', async () => {
    const empty = await testDir('empty-store');
    const listed = await agent(['list', '--from', empty], bare());
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect(listed.stdout).toBe('no backups');
    const restore = await agent(['restore', '--from', empty, '--datadir', join(dir, 'none')], bare());
    expect(restore.exitCode).toBe(2);
    expect(restore.stderr).toContain(`error: --from ${empty}: no database folders there`);
  });
});

describe('--from gs://: the GCS emulator', () => {
  it('lists and downloads another agent’s backup from a GCS bucket with no configuration', async () => {
    const schema = uniqueName('gs').replace('-', '_');
    await sourceSql(sampleDataSql(schema, 50));
    const dir = await testDir('from-gcs');
    const bucket = uniqueName('bkt');
    const endpoint = inject('gcs').endpoint;
    const config = await writeConfig(
      dir,
      ['storage:', '  type: gcs', `  bucket: ${bucket}`, '  prefix: backups/prod', `  endpoint: ${endpoint}`, '  project_id: test', 'databases:', '  - name: shop', sourceConnectionYaml(), `    schemas: [${schema}]`, ''].join('\n'),
    );
    const backup = await agent(['--config', config, 'run-now', '--json'], sourceEnv());
    expect(backup.exitCode, backup.stderr).toBe(0);
    const id = (JSON.parse(backup.stdout) as { id: string }[])[0]?.id;

    const flags = ['--from', `gs://${bucket}/backups/prod`, '--endpoint', endpoint, '--from-option', 'project_id=test'];
    const env = { HOME: dir, XDG_CACHE_HOME: join(dir, 'cache') };
    const listed = await agent(['list', ...flags, '--json'], env);
    expect(listed.exitCode, listed.stderr).toBe(0);
    expect((JSON.parse(listed.stdout) as { id: string; database: string }[]).map((r) => [r.database, r.id])).toEqual([['shop', id]]);
    const downloaded = await agent(['download', ...flags, '--output', join(dir, 'out')], env);
    expect(downloaded.exitCode, downloaded.stderr).toBe(0);
    expect(downloaded.stdout).toContain('SHA-256 verified');
  });
});
