// Passphrase encryption (age's scrypt recipient, from encryption.passphrase_file), against real
// parts: a throwaway MariaDB with binlog on, the real agent CLI and daemon, s3rver and local
// storage, the stock `age` (which asks for a passphrase on a terminal: the test gives it one
// through `script`'s pseudo-terminal), `zstd` and `mariadb`. Checked: round trips (logical on S3,
// physical, a point-in-time restore over passphrase-encrypted binlog segments), download
// --decrypt, the stock CLI opening an agent archive, and refusals before anything is written (a
// wrong passphrase, none configured).
import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { captureConnected, writeAroundT } from '../harness/binlog-capture.ts';
import { freePort } from '../harness/child-process.ts';
import { startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { agent, freshServer, storageYaml, testDir, writeConfig, type StorageKind } from '../helpers.ts';

const SCHEMA = 'till';
const PASSWORD = 'pass-pw';
const ENV = { SOURCE_PW: PASSWORD };
const PASSPHRASE = 'heron-cobalt-mosaic-fjord-lantern-91';
let dir: string;
let source: Sandbox;
let sourcePort: number;
let passphraseFile: string;
let wrongFile: string;

const tables = ['customers', 'orders', 'audit'];
const checksums = (sql: (s: string) => Promise<string>) => sql(`CHECKSUM TABLE ${tables.map((t) => `${SCHEMA}.${t}`).join(', ')} EXTENDED`);

/** A config whose encryption is the passphrase (work factor 12: the format is the same, the test is quicker). */
async function passphraseConfig(kind: StorageKind, extra: string[] = [], entryExtra: string[] = []): Promise<{ path: string; yaml: string; storageRoot: string | undefined }> {
  const storage = await storageYaml(kind);
  const yaml = [
    'storage:',
    storage,
    'encryption:',
    `  passphrase_file: ${passphraseFile}`,
    '  scrypt_work_factor: 12',
    ...extra,
    'databases:',
    '  - name: source',
    '    host: 127.0.0.1',
    `    port: ${sourcePort}`,
    '    user: agent',
    '    password: ${SOURCE_PW}',
    ...entryExtra,
    '',
  ].join('\n');
  return { path: await writeConfig(await testDir(`pass-${kind}`), yaml), yaml, storageRoot: /path: (\S+)/.exec(storage)?.[1] };
}

/** The same config with a restore target entry. */
async function withTarget(yaml: string, server: Sandbox): Promise<string> {
  return writeConfig(await testDir('pass-target'), `${yaml}${['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw', ''].join('\n')}`);
}

async function runNow(config: string, type = 'dump'): Promise<{ id: string; version: number; encryption: unknown; objects: { key: string }[] }> {
  const result = await agent(['--config', config, 'run-now', '--type', type, '--json'], ENV);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as never[])[0] as never;
}

async function untouched(server: Sandbox, gtidBefore: string): Promise<void> {
  expect(await server.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${SCHEMA}'`)).toBe('0');
  expect(await server.sql('SELECT @@gtid_binlog_pos')).toBe(gtidBefore);
}

/** The stock age CLI decrypting `file` into `out`, the passphrase typed at its prompt (a pseudo-terminal by `script`). */
async function stockDecrypt(file: string, out: string): Promise<void> {
  await execa('sh', ['-c', '(sleep 1; printf "%s\\n" "$(cat "$1")") | script -qec "age -d -o $2 $3" /dev/null', 'sh', passphraseFile, out, file]);
}

beforeAll(async () => {
  dir = await testDir('encryption-passphrase');
  sourcePort = await freePort();
  source = await startSandbox({ dir: join(dir, 'source'), port: sourcePort, serverId: 51, agentPassword: PASSWORD });
  await source.sql(sampleDataSql(SCHEMA, 700));
  await source.sql(`CREATE TABLE ${SCHEMA}.markers (label VARCHAR(32) PRIMARY KEY) ENGINE=InnoDB`);
  passphraseFile = join(dir, 'passphrase');
  wrongFile = join(dir, 'wrong-passphrase');
  await writeFile(passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  await writeFile(wrongFile, 'not-the-passphrase\n', { mode: 0o600 });
}, 60_000);

afterAll(async () => {
  await source?.stop();
});

describe('passphrase-encrypted logical backups', () => {
  it('round trip on S3: manifest and list say passphrase, restore and download --decrypt with it; a wrong or missing one is refused before anything is written', async () => {
    const backup = await passphraseConfig('s3');
    const manifest = await runNow(backup.path);
    expect(manifest.version).toBe(3);
    expect(manifest.encryption).toEqual({ format: 'age', recipients: [{ type: 'scrypt' }] });
    expect(manifest.objects[0]?.key).toMatch(/\/dump\.sql\.zst\.age$/);

    const listed = await agent(['--config', backup.path, 'list', '--json'], ENV);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: manifest.id, encryption: { format: 'age', recipients: [], passphrase: true } })]);
    expect((await agent(['--config', backup.path, 'list'], ENV)).stdout).toContain('age: a passphrase (scrypt)');

    const server = await freshServer('pass-logical');
    try {
      const config = await withTarget(backup.yaml, server);
      const gtidBefore = await server.sql('SELECT @@gtid_binlog_pos');
      const wrong = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--passphrase-file', wrongFile], ENV);
      expect(wrong.exitCode).toBe(1);
      expect(wrong.stderr).toContain(`error: restore backup ${manifest.id} into target: the passphrase in ${wrongFile} does not open it: it was encrypted to a passphrase (scrypt); nothing was written`);
      expect(wrong.stderr).toContain('hint: give the file that holds the passphrase the backup was made with');
      await untouched(server, gtidBefore);

      // A restore host whose entry has an identity only: the passphrase is what this backup needs.
      const keyFile = join(dir, 'some-key.txt');
      await execa('age-keygen', ['-o', keyFile]);
      const identityOnly = await withTarget(
        backup.yaml.replace(/encryption:\n {2}passphrase_file: .*\n {2}scrypt_work_factor: 12\n/, `encryption:\n  recipients: [${(await execa('age-keygen', ['-y', keyFile])).stdout.trim()}]\n  identity_file: ${keyFile}\n`),
        server,
      );
      const missing = await agent(['--config', identityOnly, 'restore', '--database', 'source', '--target', 'target', '--no-binlog'], ENV);
      expect(missing.exitCode).toBe(1);
      expect(missing.stderr).toContain(`error: restore backup ${manifest.id} into target: it is encrypted with age to a passphrase (scrypt), and no passphrase file is configured; nothing was written`);
      expect(missing.stderr).toContain('hint: set encryption.passphrase_file of the database entry (or pass --passphrase-file FILE)');
      await untouched(server, gtidBefore);

      // One secret: the backup host's own configuration restores.
      const result = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog'], ENV);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(await checksums(server.sql)).toBe(await checksums(source.sql));
    } finally {
      await server.stop();
    }

    const out = await testDir('pass-download');
    const asStored = await agent(['--config', backup.path, 'download', '--output', out], ENV);
    expect(asStored.exitCode).toBe(0);
    expect(asStored.stdout).toMatch(/\.sql\.zst\.age \(.*SHA-256 verified, encrypted with age: open it with age -d \(it asks for the passphrase\), or download with --decrypt\)/);
    const refused = await agent(['--config', backup.path, 'download', '--output', out, '--decrypt', '--passphrase-file', wrongFile], ENV);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('does not open it: it was encrypted to a passphrase (scrypt)');
    expect((await readdir(out)).length).toBe(1);
    const decrypted = await agent(['--config', backup.path, 'download', '--output', out, '--decrypt'], ENV);
    expect(decrypted.exitCode, decrypted.stderr).toBe(0);
    const files = (await readdir(out)).sort();
    expect(files).toEqual([expect.stringMatching(new RegExp(`_source_${manifest.id}\\.sql\\.zst$`)), expect.stringMatching(new RegExp(`_source_${manifest.id}\\.sql\\.zst\\.age$`))]);
    // The stock age CLI opens the agent's archive with the passphrase typed at its prompt.
    const opened = join(out, 'stock.sql.zst');
    await stockDecrypt(join(out, files[1] ?? ''), opened);
    expect((await readFile(opened)).equals(await readFile(join(out, files[0] ?? '')))).toBe(true);
    expect((await execa('zstd', ['-dc', opened], { encoding: 'utf8' })).stdout).toContain('CREATE TABLE `customers`');
  });

  it('the stock tools restore it: age -d (passphrase at the prompt) | zstd -dc | mariadb', async () => {
    const backup = await passphraseConfig('local');
    const manifest = await runNow(backup.path);
    const file = join(backup.storageRoot ?? '', manifest.objects[0]?.key ?? '');
    const plain = join(dir, 'stock-restore.sql.zst');
    await stockDecrypt(file, plain);
    const server = await freshServer('pass-stock');
    try {
      await execa('sh', ['-c', 'zstd -dc "$1" | mariadb --socket="$2" -uroot', 'sh', plain, server.socket]);
      expect(await checksums(server.sql)).toBe(await checksums(source.sql));
    } finally {
      await server.stop();
    }
  });
});

describe('passphrase-encrypted physical backups', () => {
  it('a full backup restores into a datadir with the passphrase; a wrong one leaves no datadir', async () => {
    const backup = await passphraseConfig('local');
    const full = await runNow(backup.path, 'full');
    expect(full.objects[0]?.key).toMatch(/\/backup\.xbstream\.zst\.age$/);
    const expected = await checksums(source.sql);
    const refusedDir = join(dir, 'physical-wrong');
    const refused = await agent(['--config', backup.path, 'restore', '--database', 'source', '--datadir', refusedDir, '--passphrase-file', wrongFile], ENV);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain(`the passphrase in ${wrongFile} does not open it`);
    await expect(stat(refusedDir)).rejects.toThrow(/ENOENT/);
    const restoredDir = join(dir, 'physical-restored');
    const result = await agent(['--config', backup.path, 'restore', '--database', 'source', '--datadir', restoredDir], ENV);
    expect(result.exitCode, result.stderr).toBe(0);
    const server = await startSandbox({ dir: join(dir, 'physical-server'), port: 0, existingDatadir: restoredDir, serverId: 52, private: true });
    try {
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }
  });
});

describe('point-in-time restore over passphrase-encrypted binlog segments', () => {
  let daemon: DaemonProcess | undefined;

  afterAll(async () => {
    await daemon?.stop();
  });

  it('the daemon archives passphrase-encrypted segments; a restore replays them with the passphrase', async () => {
    const port = await freePort();
    const spool = join(dir, 'spool');
    const backup = await passphraseConfig('local', ['daemon:', `  listen_port: ${port}`, '  catch_up: false'], [`    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ${spool} }`]);
    const running = (daemon = await startDaemon(backup.path, { env: ENV }));
    await captureConnected(port, 'source', running.output);
    expect(running.output()).toContain('binlog segments are encrypted to a passphrase: one scrypt per segment');

    await runNow(backup.path);
    const { T, expected } = await writeAroundT({ source: { port: sourcePort, password: PASSWORD, sql: source.sql }, schema: SCHEMA, updates: 40, checksums: () => checksums(source.sql), daemonPort: port, log: running.output });

    const binlogDir = join(backup.storageRoot ?? '', 'source', 'binlog');
    const files = await readdir(binlogDir, { recursive: true });
    const data = files.filter((f) => /\.binlog/.test(f));
    expect(data.length).toBeGreaterThan(0);
    expect(data.every((f) => f.endsWith('.binlog.zst.age'))).toBe(true);
    const segment = JSON.parse(await readFile(join(binlogDir, files.find((f) => /\d{12}-\d{12}\.json$/.test(f)) ?? ''), 'utf8')) as { version: number; encryption: unknown };
    expect(segment.version).toBe(3);
    expect(segment.encryption).toEqual({ format: 'age', recipients: [{ type: 'scrypt' }] });
    const head = (await readFile(join(binlogDir, data[0] ?? ''))).subarray(0, 60).toString('latin1');
    expect(head).toMatch(/^age-encryption\.org\/v1\n-> scrypt \S{22} 12\n/);

    const server = await freshServer('pass-pitr');
    try {
      const config = await withTarget(backup.yaml.replace(/\n {2}listen_port: \d+/, `\n  listen_port: ${await freePort()}`), server);
      const gtidBefore = await server.sql('SELECT @@gtid_binlog_pos');
      const refused = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString(), '--passphrase-file', wrongFile], ENV);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain('does not open it: it was encrypted to a passphrase (scrypt); nothing was written');
      await untouched(server, gtidBefore);

      const result = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString()], ENV);
      expect(result.exitCode, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/then replayed \d+ transactions of binlog up to /);
      expect(await server.sql(`SELECT GROUP_CONCAT(label) FROM ${SCHEMA}.markers`)).toBe('before-T');
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }
  });
});
