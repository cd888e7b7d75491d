// Archives the agent never made (SkySQL's "created via mariabackup or mysqldump"): a dump by
// plain `mariadb-dump | gzip` and a stream by plain `mariadb-backup --stream=xbstream`, uploaded
// to a bucket of their own by the test, restored with `agent restore --from … --key … --method …`.
// The format is told by the bytes; a wrong method, an unknown format or a cut archive is refused
// before anything is written. Archives the stock `age` CLI encrypted (to an X25519 key, or to a
// passphrase) are decrypted with the key given, after being read in full: a wrong key or a cut
// archive is refused before anything is written. Real s3rver, real servers, real tools.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { execa } from 'execa';
import { readFile, stat, writeFile } from 'node:fs/promises';
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

describe('restore --from --key: archives the stock age CLI encrypted', () => {
  let schema: string;
  let bucket: string;
  let dir: string;
  let before: string;
  let key: { file: string; recipient: string };
  let wrongKey: string;
  let passphraseFile: string;
  const endpoint = () => inject('s3').endpoint;
  const env = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER', TARGET_DB_PASSWORD: 'target-pw' };
  const from = () => ['--from', `s3://${bucket}/vault`, '--endpoint', endpoint(), '--from-option', 'checksum=when_required'];
  const put = (name: string, body: Buffer) => s3Client(endpoint()).send(new PutObjectCommand({ Bucket: bucket, Key: `vault/${name}`, Body: body }));
  const m = () => inject('mariadb');
  const rootArgs = () => [`--defaults-file=${join(m().dir, 'my.cnf')}`];
  const configFor = async (server: Sandbox) =>
    writeConfig(await testDir('foreign-age-config'), ['storage:', '  type: local', `  path: ${join(dir, 'store')}`, 'databases:', '  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: ${TARGET_DB_PASSWORD}', ''].join('\n'));
  const untouched = async (server: Sandbox, gtidBefore: string) => {
    expect(await server.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${schema}'`)).toBe('0');
    expect(await server.sql('SELECT @@gtid_binlog_pos')).toBe(gtidBefore);
  };

  beforeAll(async () => {
    schema = uniqueName('sealed').replace('-', '_');
    await sourceSql(sampleDataSql(schema, 500));
    before = await schemaChecksums(sourceSql, schema);
    // A second bucket: the agent's own store (local) is not where these come from.
    bucket = uniqueName('sealed');
    await createS3Bucket(endpoint(), bucket);
    dir = await testDir('restore-foreign-age');
    key = { file: join(dir, 'key.txt'), recipient: '' };
    await execa('age-keygen', ['-o', key.file]);
    key.recipient = (await execa('age-keygen', ['-y', key.file])).stdout.trim();
    wrongKey = join(dir, 'wrong.txt');
    await execa('age-keygen', ['-o', wrongKey]);
    passphraseFile = join(dir, 'passphrase');
    await writeFile(passphraseFile, 'ocelot-saffron-glacier-71\n', { mode: 0o600 });

    // What a user brings: plain tools and the stock age CLI, no agent involved.
    const sealed = join(dir, 'shop.sql.zst.age');
    await execa('bash', ['-c', 'set -o pipefail; mariadb-dump "$1" --single-transaction --databases "$2" | zstd -q | age -r "$3" > "$4"', 'dump', ...rootArgs(), schema, key.recipient, sealed]);
    const bytes = await readFile(sealed);
    expect(bytes.subarray(0, 22).toString('latin1')).toBe('age-encryption.org/v1\n');
    await put('shop.sql.zst.age', bytes);
    await put('cut.sql.zst.age', bytes.subarray(0, Math.floor(bytes.length / 2)));
    // An armored one, gzip inside, named without its extensions: told by the bytes.
    await execa('bash', ['-c', 'set -o pipefail; mariadb-dump "$1" --single-transaction --databases "$2" | gzip | age -a -r "$3" > "$4"', 'dump', ...rootArgs(), schema, key.recipient, join(dir, 'armored')]);
    await put('armored-dump', await readFile(join(dir, 'armored')));
    // A plain .sql encrypted to a passphrase: `age -p` asks for it (twice) on a terminal.
    await execa('bash', ['-c', 'mariadb-dump "$1" --single-transaction --databases "$2" > "$3"', 'dump', ...rootArgs(), schema, join(dir, 'plain.sql')]);
    await execa('sh', ['-c', '(sleep 1; p="$(cat "$1")"; printf "%s\\n" "$p"; sleep 1; printf "%s\\n" "$p") | script -qec "age -p -o $2 $3" /dev/null', 'sh', passphraseFile, join(dir, 'plain.sql.age'), join(dir, 'plain.sql')]);
    const scrypt = await readFile(join(dir, 'plain.sql.age'));
    expect(scrypt.subarray(0, 32).toString('latin1')).toMatch(/^age-encryption\.org\/v1\n-> scrypt /);
    await put('plain.sql.age', scrypt);
    // mariabackup's stream, compressed and encrypted the same way.
    await execa('bash', ['-c', 'set -o pipefail; mariadb-backup "$1" --user=root --socket="$2" --backup --stream=xbstream --target-dir="$3" | zstd -q | age -r "$4" > "$5"', 'backup', ...rootArgs(), m().socket, join(dir, 'xb-work'), key.recipient, join(dir, 'full.xb.zst.age')]);
    await put('full.xb.zst.age', await readFile(join(dir, 'full.xb.zst.age')));
  });

  it('restores mariadb-dump | zstd | age -r into a configured entry with --identity, checksums equal', async () => {
    const server = await freshServer('foreign-age');
    try {
      const config = await configFor(server);
      const result = await agent(['--config', config, 'restore', ...from(), '--key', 'shop.sql.zst.age', '--method', 'mysqldump', '--target', 'target', '--identity', key.file], env);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^restored shop\\.sql\\.zst\\.age, an age-encrypted SQL dump \\(zstd\\) of .+, into target \\(${schema}\\) in `));
      expect(await schemaChecksums(server.sql, schema)).toBe(before);
    } finally {
      await server.stop();
    }
  });

  it('refuses a wrong identity, no identity and a cut archive with exit code 1 and the reason; the target is untouched', async () => {
    const server = await freshServer('foreign-age-refused');
    try {
      const config = await configFor(server);
      const gtidBefore = await server.sql('SELECT @@gtid_binlog_pos');
      const restore = (name: string, extra: string[]) => agent(['--config', config, 'restore', ...from(), '--key', name, '--method', 'mysqldump', '--target', 'target', ...extra], env);

      const wrong = await restore('shop.sql.zst.age', ['--identity', wrongKey]);
      expect(wrong.exitCode).toBe(1);
      expect(wrong.stderr).toContain(`error: --key shop.sql.zst.age: the identity in ${wrongKey} does not open it: it was encrypted to 1 X25519 recipient (an age header does not name them); nothing was written`);
      expect(wrong.stderr).toContain('hint: give the identity file of one of these recipients');
      await untouched(server, gtidBefore);

      const none = await restore('shop.sql.zst.age', []);
      expect(none.exitCode).toBe(1);
      expect(none.stderr).toContain('error: --key shop.sql.zst.age: it is encrypted with age to 1 X25519 recipient (an age header does not name them), and no identity is configured; nothing was written');
      await untouched(server, gtidBefore);

      const cut = await restore('cut.sql.zst.age', ['--identity', key.file]);
      expect(cut.exitCode).toBe(1);
      expect(cut.stderr).toMatch(/error: --key cut\.sql\.zst\.age: age cannot decrypt it: age: error: .+; nothing was written/);
      await untouched(server, gtidBefore);

      const wrongPassphrase = join(dir, 'wrong-passphrase');
      await writeFile(wrongPassphrase, 'not-it\n');
      const badPass = await restore('plain.sql.age', ['--passphrase-file', wrongPassphrase]);
      expect(badPass.exitCode).toBe(1);
      expect(badPass.stderr).toContain(`error: --key plain.sql.age: the passphrase in ${wrongPassphrase} does not open it: it was encrypted to a passphrase (scrypt); nothing was written`);
      await untouched(server, gtidBefore);
    } finally {
      await server.stop();
    }
  });

  it('restores an armored gzip dump (told by its bytes) and a passphrase-encrypted plain .sql', async () => {
    const server = await freshServer('foreign-age-more');
    try {
      const config = await configFor(server);
      const armored = await agent(['--config', config, 'restore', ...from(), '--key', 'armored-dump', '--method', 'mysqldump', '--target', 'target', '--identity', key.file], env);
      expect(armored.exitCode, armored.stderr).toBe(0);
      expect(armored.stdout).toContain('restored armored-dump, an age-encrypted SQL dump (gzip) of');
      expect(await schemaChecksums(server.sql, schema)).toBe(before);
      const scrypt = await agent(['--config', config, 'restore', ...from(), '--key', 'plain.sql.age', '--method', 'mysqldump', '--target', 'target', '--passphrase-file', passphraseFile, '--yes'], env);
      expect(scrypt.exitCode, scrypt.stderr).toBe(0);
      expect(scrypt.stdout).toContain('restored plain.sql.age, an age-encrypted SQL dump of');
      expect(await schemaChecksums(server.sql, schema)).toBe(before);
    } finally {
      await server.stop();
    }
  });

  it('restores mariabackup --stream | zstd | age -r into a datadir, prepared and verified; a wrong identity leaves no datadir', async () => {
    const refusedDir = join(dir, 'refused');
    const refused = await agent(['restore', ...from(), '--key', 'full.xb.zst.age', '--method', 'mariabackup', '--datadir', refusedDir, '--identity', wrongKey], env);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`the identity in ${wrongKey} does not open it`);
    await expect(stat(refusedDir)).rejects.toThrow(/ENOENT/);
    const result = await agent(['restore', ...from(), '--key', 'full.xb.zst.age', '--method', 'mariabackup', '--datadir', join(dir, 'datadir'), '--identity', key.file, '--verify'], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stdout).toContain('restored full.xb.zst.age, an age-encrypted mariabackup xbstream (zstd) of');
    expect(result.stdout).toContain(`${schema}.customers`);
    expect(result.stdout).toContain('verified: every table checks OK and has a checksum');
  });
});
