// Archives the agent never made (SkySQL's "created via mariabackup or mysqldump"): a dump by
// plain `mariadb-dump | gzip` and a stream by plain `mariadb-backup --stream=xbstream`, uploaded
// to a bucket of their own by the test, restored with `agent restore --from … --key … --method …`.
// The format is told by the bytes; a wrong method, an unknown format or a cut archive is refused
// before anything is written. Real s3rver, real servers, real tools.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { createS3Bucket, s3Client } from '../harness/s3-server.ts';
import { agent, freshServer, sourceSql, testDir, uniqueName, writeConfig, schemaChecksums } from '../helpers.ts';

describe('restore --from --key: archives made by plain mariadb-dump and mariabackup', () => {
  let schema: string;
  let bucket: string;
  let dir: string;
  let target: Sandbox;
  let config: string;
  let before: string;
  const endpoint = () => inject('s3').endpoint;
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', TARGET_DB_PASSWORD: 'target-pw' };
  const from = () => ['--from', `s3://${bucket}/incoming`, '--endpoint', endpoint(), '--from-option', 'checksum=when_required'];
  const put = (key: string, body: Buffer) => s3Client(endpoint()).send(new PutObjectCommand({ Bucket: bucket, Key: `incoming/${key}`, Body: body }));
  const m = () => inject('mariadb');
  const rootArgs = () => [`--defaults-file=${join(m().dir, 'my.cnf')}`];

  beforeAll(async () => {
    schema = uniqueName('foreign').replace('-', '_');
    await sourceSql(sampleDataSql(schema, 600));
    before = await schemaChecksums(sourceSql, schema);
    bucket = uniqueName('foreign');
    await createS3Bucket(endpoint(), bucket);
    dir = await testDir('restore-foreign');
    target = await freshServer('foreign-target');
    config = await writeConfig(dir, ['storage:', '  type: local', `  path: ${join(dir, 'store')}`, 'databases:', '  - name: target', '    host: 127.0.0.1', `    port: ${target.port}`, '    user: agent', '    password: ${TARGET_DB_PASSWORD}', ''].join('\n'));

    // What a user brings: plain tools, no agent involved.
    const dump = await execa('bash', ['-c', `mariadb-dump "$1" --single-transaction --routines --events --databases "$2" | gzip`, 'dump', ...rootArgs(), schema], { encoding: 'buffer', stripFinalNewline: false });
    await put('shop.sql.gz', Buffer.from(dump.stdout));
    const single = await execa('mariadb-dump', [...rootArgs(), '--single-transaction', schema, 'customers'], { encoding: 'buffer', stripFinalNewline: false });
    await put('customers.sql', Buffer.from(single.stdout));
    const gz = Buffer.from(dump.stdout);
    await put('cut.sql.gz', gz.subarray(0, Math.floor(gz.length / 2)));
    await put('noise.bin', Buffer.from('just some bytes that are no archive at all\n'));
    const stream = join(dir, 'backup.xb');
    await execa('bash', ['-c', `mariadb-backup "$1" --user=root --socket="$2" --backup --stream=xbstream --target-dir="$3" > "$4"`, 'backup', ...rootArgs(), m().socket, join(dir, 'xb-work'), stream]);
    await put('full.xb', await readFile(stream));
    // A backup directory, not a stream, packed by tar and gzip (as many hosts ship theirs).
    const tarSource = join(dir, 'tar-source');
    await execa('mariadb-backup', [...rootArgs(), '--user=root', `--socket=${m().socket}`, '--backup', `--target-dir=${tarSource}`]);
    const tarball = join(dir, 'full.tar.gz');
    await execa('tar', ['-C', tarSource, '-czf', tarball, '.']);
    await put('full.tar.gz', await readFile(tarball));
  });

  afterAll(async () => {
    await target?.stop();
  });

  it('restores a gzip dump of plain mariadb-dump into a configured entry, checksums equal', async () => {
    const result = await agent(['--config', config, 'restore', ...from(), '--key', 'shop.sql.gz', '--method', 'mysqldump', '--target', 'target'], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toMatch(new RegExp(`^restored shop\\.sql\\.gz, a SQL dump \\(gzip\\) of .+, into target \\(${schema}\\) in `));
    expect(result.stderr).not.toContain('warning');
    expect(await schemaChecksums(target.sql, schema)).toBe(before);
  });

  it('refuses to restore a dump over schemas that hold data without --yes', async () => {
    const refused = await agent(['--config', config, 'restore', ...from(), '--key', 'shop.sql.gz', '--method', 'mysqldump', '--target', 'target'], env);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`error: restore into target: schema ${schema} (`);
  });

  it('a dump made without --databases needs --schema, and restores into it', async () => {
    const refused = await agent(['--config', config, 'restore', ...from(), '--key', 'customers.sql', '--method', 'mysqldump', '--target', 'target'], env);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain('error: --key customers.sql: the dump names no schema (it was made without --databases): say which schema receives it with --schema NAME');
    const into = `${schema}_copy`;
    const restored = await agent(['--config', config, 'restore', ...from(), '--key', 'customers.sql', '--method', 'mysqldump', '--target', 'target', '--schema', into], env);
    expect(restored.exitCode, restored.stderr).toBe(0);
    expect(await target.sql(`CHECKSUM TABLE \`${into}\`.customers EXTENDED`)).toBe((await sourceSql(`CHECKSUM TABLE \`${schema}\`.customers EXTENDED`)).replace(schema, into));
  });

  it('restores a plain mariabackup xbstream into a datadir, prepared, and it verifies with no configuration', async () => {
    const datadir = join(dir, 'datadir');
    const result = await agent(['restore', ...from(), '--key', 'full.xb', '--method', 'mariabackup', '--datadir', datadir, '--verify'], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain(`restored full.xb, a mariabackup xbstream of`);
    expect(result.stdout).toContain('verified: every table checks OK and has a checksum');
    expect(result.stdout).toContain(`${schema}.customers`);
  });

  it('restores a tar.gz of a mariabackup directory into a datadir, prepared and verified', async () => {
    const result = await agent(['restore', ...from(), '--key', 'full.tar.gz', '--method', 'mariabackup', '--datadir', join(dir, 'from-tar'), '--verify'], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('restored full.tar.gz, a mariabackup tar (gzip) of');
    expect(result.stdout).toContain(`${schema}.customers`);
    expect(result.stdout).toContain('verified: every table checks OK and has a checksum');
  });

  it('refuses a wrong method, an unknown format and a cut archive before writing anything', async () => {
    const marker = `${schema}_untouched`;
    const wrong = await agent(['--config', config, 'restore', ...from(), '--key', 'full.xb', '--method', 'mysqldump', '--target', 'target'], env);
    expect(wrong.exitCode).toBe(2);
    expect(wrong.stderr).toContain('error: --key full.xb is an xbstream (mariabackup --stream), not what --method mysqldump restores; nothing was written');
    expect(wrong.stderr).toContain('hint: restore it with --method mariabackup --datadir DIR');

    const noise = await agent(['restore', ...from(), '--key', 'noise.bin', '--method', 'mariabackup', '--datadir', join(dir, 'noise')], env);
    expect(noise.exitCode).toBe(2);
    expect(noise.stderr).toContain('error: --key noise.bin: not a format the agent restores (it starts with 6a75737420736f6d); nothing was written');

    await target.sql(`DROP DATABASE IF EXISTS \`${marker}\``);
    const cut = await agent(['--config', config, 'restore', ...from(), '--key', 'cut.sql.gz', '--method', 'mysqldump', '--target', 'target', '--yes'], env);
    expect(cut.exitCode).toBe(1);
    expect(cut.stderr).toMatch(/error: --key cut\.sql\.gz: .*\(a cut or damaged archive\); nothing was written/);
    // The half that could be read was not applied: the schema is as before.
    expect(await schemaChecksums(target.sql, schema)).toBe(before);

    const missing = await agent(['restore', ...from(), '--key', 'nope.sql', '--method', 'mysqldump', '--target', 'target', '--config', config], env);
    expect(missing.exitCode).toBe(2);
    expect(missing.stderr).toContain(`error: --key nope.sql: no such object in s3://${bucket}/incoming`);
  });

  it('names what --key needs and refuses flags of the catalog with it', async () => {
    const cases: [string[], string][] = [
      [['--key', 'x.sql', '--method', 'mysqldump', '--target', 'target'], 'error: --key needs --from: the store that holds the object'],
      [[...from(), '--key', 'x.sql', '--target', 'target'], 'error: --key needs --method mysqldump or --method mariabackup'],
      [[...from(), '--method', 'mysqldump'], 'error: --method needs --key'],
      [[...from(), '--key', 'x.xb', '--method', 'mariabackup'], 'error: --method mariabackup needs --datadir'],
      [[...from(), '--key', 'x.sql', '--method', 'mysqldump'], 'error: --method mysqldump needs --target'],
      [[...from(), '--key', 'x.sql', '--method', 'mysqldump', '--target', 'target', '--to-time', '2026-01-01T00:00:00Z'], "error: --to-time does not go with --key"],
    ];
    for (const [args, message] of cases) {
      const result = await agent(['--config', config, 'restore', ...args], env);
      expect(result.exitCode, args.join(' ')).toBe(2);
      expect(result.stderr).toContain(message);
    }
  });
});
