// Client-side encryption with age, against real parts: a throwaway MariaDB with binlog on, the real
// agent CLI and daemon, local storage and s3rver, the stock `age`, `zstd` and `mariadb` tools.
// The backup host's configuration names only public recipients (no identity): restores get the
// identity by --identity or from their own configuration. Checked: round trips (logical on local
// and S3, a physical chain, a point-in-time restore over encrypted binlog segments), the stock CLI
// opening an agent archive, refusals before anything is written (wrong key, truncated or altered
// archive), and the identity and a passphrase never in argv (any process on the machine, as ps shows
// it), environments, logs, output or the store.
import { copyFile, readdir, readFile, readlink, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { captureConnected, writeAroundT } from '../harness/binlog-capture.ts';
import { freePort } from '../harness/child-process.ts';
import { startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { agent, FIXTURES, fixtureWith, freshServer, storageYaml, testDir, writeConfig, type StorageKind } from '../helpers.ts';

const SCHEMA = 'shop';
const PASSWORD = 'enc-pw';
const ENV = { SOURCE_PW: PASSWORD };
let dir: string;
let source: Sandbox;
let sourcePort: number;

interface Key {
  file: string;
  recipient: string;
  /** The secret line of the key file. */
  secret: string;
}
let operator: Key;
let recovery: Key;
let wrong: Key;

const tables = ['customers', 'orders', 'audit'];
const checksums = (sql: (s: string) => Promise<string>) => sql(`CHECKSUM TABLE ${tables.map((t) => `${SCHEMA}.${t}`).join(', ')} EXTENDED`);
const short = (recipient: string) => `${recipient.slice(0, 10)}…${recipient.slice(-6)}`;

async function keygen(name: string): Promise<Key> {
  const file = join(dir, `${name}.txt`);
  await execa('age-keygen', ['-o', file]);
  const recipient = (await execa('age-keygen', ['-y', file])).stdout.trim();
  const secret = (await readFile(file, 'utf8')).split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-')) ?? '';
  expect(secret).not.toBe('');
  return { file, recipient, secret };
}

/** The backup host's config: public recipients only (an operator key inline, a recovery key in a recipients file). */
async function backupConfig(kind: StorageKind, extra: string[] = []): Promise<{ path: string; yaml: string; storageRoot: string | undefined }> {
  const storage = await storageYaml(kind);
  const recipientsFile = join(dir, 'recovery-recipients.txt');
  const yaml = [
    'storage:',
    storage,
    'encryption:',
    `  recipients: [${operator.recipient}]`,
    `  recipients_file: ${recipientsFile}`,
    ...extra,
    'databases:',
    '  - name: source',
    '    host: 127.0.0.1',
    `    port: ${sourcePort}`,
    '    user: agent',
    '    password: ${SOURCE_PW}',
    '',
  ].join('\n');
  return { path: await writeConfig(await testDir(`enc-${kind}`), yaml), yaml, storageRoot: /path: (\S+)/.exec(storage)?.[1] };
}

/** The same config with a restore target entry (and optionally the identity file of the source entry). */
async function withTarget(backup: { yaml: string }, server: Sandbox, identity?: Key): Promise<string> {
  let yaml = backup.yaml;
  if (identity) yaml = yaml.replace(/ {4}password: \$\{SOURCE_PW\}\n/, `    password: \${SOURCE_PW}\n    encryption:\n      recipients: [${operator.recipient}]\n      identity_file: ${identity.file}\n`);
  yaml += ['  - name: target', '    host: 127.0.0.1', `    port: ${server.port}`, '    user: agent', '    password: target-pw', ''].join('\n');
  return writeConfig(await testDir('enc-target'), yaml);
}

async function runNow(config: string, type = 'dump'): Promise<{ id: string; version: number; encryption: { format: string; recipients: { type: string; recipient: string }[] } | null; objects: { key: string }[] }> {
  const result = await agent(['--config', config, 'run-now', '--type', type, '--json'], ENV);
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as never[])[0] as never;
}

/** What a restore target must still be when a restore was refused: no schema, no binlog written. */
async function untouched(server: Sandbox, gtidBefore: string): Promise<void> {
  expect(await server.sql(`SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = '${SCHEMA}'`)).toBe('0');
  expect(await server.sql('SELECT @@gtid_binlog_pos')).toBe(gtidBefore);
}

beforeAll(async () => {
  dir = await testDir('encryption');
  sourcePort = await freePort();
  source = await startSandbox({ dir: join(dir, 'source'), port: sourcePort, serverId: 41, agentPassword: PASSWORD });
  await source.sql(sampleDataSql(SCHEMA, 800));
  await source.sql(`CREATE TABLE ${SCHEMA}.markers (label VARCHAR(32) PRIMARY KEY) ENGINE=InnoDB`);
  [operator, recovery, wrong] = await Promise.all([keygen('operator'), keygen('recovery'), keygen('wrong')]);
  await writeFile(join(dir, 'recovery-recipients.txt'), `# recovery key, kept offline\n${recovery.recipient}\n`);
}, 60_000);

afterAll(async () => {
  await source?.stop();
});

describe('encrypted logical backups', () => {
  it.each(['local', 's3'] as const)('round trip on %s: the backup host has recipients only; restore with the identity', async (kind) => {
    const backup = await backupConfig(kind);
    const manifest = await runNow(backup.path);
    expect(manifest.version).toBe(3);
    expect(manifest.encryption).toEqual({ format: 'age', recipients: [{ type: 'X25519', recipient: operator.recipient }, { type: 'X25519', recipient: recovery.recipient }] });
    expect(manifest.objects[0]?.key).toMatch(/\/dump\.sql\.zst\.age$/);
    if (backup.storageRoot) {
      const stored = await readFile(join(backup.storageRoot, manifest.objects[0]?.key ?? ''));
      expect(stored.subarray(0, 21).toString()).toBe('age-encryption.org/v1');
      expect(stored.includes('CREATE TABLE')).toBe(false);
    }

    const listed = await agent(['--config', backup.path, 'list', '--json'], ENV);
    expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ id: manifest.id, encryption: { format: 'age', recipients: [operator.recipient, recovery.recipient], passphrase: false } })]);
    const table = await agent(['--config', backup.path, 'list'], ENV);
    expect(table.stdout).toContain(`age: ${short(operator.recipient)}, ${short(recovery.recipient)}`);

    // The backup host cannot read its own backup: no identity in its configuration.
    const server = await freshServer('enc-logical');
    try {
      const config = await withTarget(backup, server);
      const refused = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog'], ENV);
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toContain('no identity is configured; nothing was written');
      // The operator key by flag on local storage, the offline recovery key on S3.
      const key = kind === 'local' ? operator : recovery;
      const result = await agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--identity', key.file], ENV);
      expect(result.stderr).toContain('Selected the most recent successful backup');
      expect(result.exitCode).toBe(0);
      expect(await checksums(server.sql)).toBe(await checksums(source.sql));
    } finally {
      await server.stop();
    }
  });

  it('the stock tools restore an agent archive: age -d -i key | zstd -dc | mariadb', async () => {
    const backup = await backupConfig('local');
    const manifest = await runNow(backup.path);
    const file = join(backup.storageRoot ?? '', manifest.objects[0]?.key ?? '');
    const server = await freshServer('enc-stock');
    try {
      await execa('sh', ['-c', `age -d -i "$1" "$2" | zstd -dc | mariadb --socket="$3" -uroot`, 'sh', recovery.file, file, server.socket]);
      expect(await checksums(server.sql)).toBe(await checksums(source.sql));
    } finally {
      await server.stop();
    }
  });

  it('download writes the archive as stored (.age), or decrypted with --decrypt', async () => {
    const backup = await backupConfig('s3');
    const manifest = await runNow(backup.path);
    const out = await testDir('enc-download');
    const asStored = await agent(['--config', backup.path, 'download', '--output', out], ENV);
    expect(asStored.exitCode).toBe(0);
    expect(asStored.stdout).toMatch(/\.sql\.zst\.age \(.*SHA-256 verified, encrypted with age/);
    const decrypted = await agent(['--config', backup.path, 'download', '--output', out, '--decrypt', '--identity', operator.file], ENV);
    expect(decrypted.exitCode).toBe(0);
    const files = (await readdir(out)).sort();
    expect(files).toEqual([expect.stringMatching(new RegExp(`_source_${manifest.id}\\.sql\\.zst$`)), expect.stringMatching(new RegExp(`_source_${manifest.id}\\.sql\\.zst\\.age$`))]);
    const sql = (await execa('zstd', ['-dc', join(out, files[0] ?? '')], { encoding: 'utf8' })).stdout;
    expect(sql).toContain(`CREATE TABLE \`customers\``);
    const stock = (await execa('sh', ['-c', 'age -d -i "$1" "$2" | zstd -dc', 'sh', operator.file, join(out, files[1] ?? '')], { encoding: 'utf8' })).stdout;
    expect(stock).toBe(sql);
    const refused = await agent(['--config', backup.path, 'download', '--output', out, '--decrypt', '--identity', wrong.file], ENV);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain(`does not open it: it was encrypted to ${short(operator.recipient)}, ${short(recovery.recipient)}`);
    expect((await readdir(out)).length).toBe(2);
  });

  it('a wrong identity, a truncated archive and a flipped byte are refused before anything is written', async () => {
    const backup = await backupConfig('local');
    const manifest = await runNow(backup.path);
    const file = join(backup.storageRoot ?? '', manifest.objects[0]?.key ?? '');
    const original = join(dir, 'original.age');
    await copyFile(file, original);
    const server = await freshServer('enc-refused');
    try {
      const config = await withTarget(backup, server);
      const gtidBefore = await server.sql('SELECT @@gtid_binlog_pos');
      const restore = (identity: Key) => agent(['--config', config, 'restore', '--database', 'source', '--target', 'target', '--identity', identity.file], ENV);

      const wrongKey = await restore(wrong);
      expect(wrongKey.exitCode).toBe(1);
      expect(wrongKey.stderr).toContain(`error: restore backup ${manifest.id} into target: the identity in ${wrong.file} does not open it: it was encrypted to ${short(operator.recipient)}, ${short(recovery.recipient)}; nothing was written`);
      expect(wrongKey.stderr).toContain('hint: give the identity file of one of these recipients');
      await untouched(server, gtidBefore);

      const size = (await stat(file)).size;
      await truncate(file, Math.floor(size / 2));
      const truncated = await restore(operator);
      expect(truncated.exitCode).not.toBe(0);
      expect(truncated.stderr).toMatch(/size mismatch: read \d+ bytes, the manifest says \d+; nothing was written/);
      await untouched(server, gtidBefore);

      await copyFile(original, file);
      const bytes = await readFile(file);
      const middle = Math.floor(bytes.length / 2);
      bytes.writeUInt8((bytes[middle] ?? 0) ^ 0x01, middle);
      await writeFile(file, bytes);
      const flipped = await restore(operator);
      expect(flipped.exitCode).not.toBe(0);
      expect(flipped.stderr).toMatch(/checksum mismatch: SHA-256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}; nothing was written/);
      await untouched(server, gtidBefore);

      // A flipped byte the manifest agrees with (an attacker who rewrote both): age's own authentication refuses it.
      const manifestPath = join(backup.storageRoot ?? '', manifest.objects[0]?.key.replace(/dump\.sql\.zst\.age$/, 'manifest.json') ?? '');
      const stored = JSON.parse(await readFile(manifestPath, 'utf8')) as { objects: { sha256: string }[] };
      const { createHash } = await import('node:crypto');
      (stored.objects[0] as { sha256: string }).sha256 = createHash('sha256').update(bytes).digest('hex');
      await writeFile(manifestPath, JSON.stringify(stored));
      const forged = await restore(operator);
      expect(forged.exitCode).not.toBe(0);
      expect(forged.stderr).toContain('age cannot decrypt it: age: error: failed to decrypt and authenticate payload chunk; nothing was written');
      await untouched(server, gtidBefore);
    } finally {
      await server.stop();
    }
  });
});

describe('encryption failures on the backup host', () => {
  it('an age that fails fails the backup: no manifest, no object; a missing age fails before anything starts', async () => {
    const failing = await backupConfig('local', ['tools:', `  age: ${join(FIXTURES, 'failing-age.sh')}`]);
    const result = await agent(['--config', failing.path, 'run-now'], ENV);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: source: encrypt backup of source: age exited with code 1: age: error: failed to write output: disk quota exceeded');
    expect(result.stderr).toContain('hint: the age command failed');
    const left = await readdir(failing.storageRoot ?? '', { recursive: true });
    expect(left.filter((f) => /\.(age|json)$/.test(f))).toEqual([]);

    const missing = await backupConfig('local', ['tools:', `  age: ${join(dir, 'no-such-age')}`]);
    const absent = await agent(['--config', missing.path, 'run-now'], ENV);
    expect(absent.exitCode).toBe(1);
    expect(absent.stderr).toMatch(/error: source: run .*no-such-age --version: no-such-age failed to start/);
    expect(absent.stderr).toContain('hint: check tools.age in the configuration');
  });
});

describe('encrypted physical backups', () => {
  it('a full + incremental chain on S3 restores into a datadir with the identity', async () => {
    const backup = await backupConfig('s3');
    const full = await runNow(backup.path, 'full');
    expect(full.objects[0]?.key).toMatch(/\/backup\.xbstream\.zst\.age$/);
    await source.sql(`UPDATE ${SCHEMA}.customers SET note = 'after the full' WHERE id % 3 = 0`);
    const inc = await runNow(backup.path, 'incremental');
    expect(inc.encryption?.recipients).toHaveLength(2);
    const expected = await checksums(source.sql);

    const datadir = join(dir, 'physical-wrong');
    const refused = await agent(['--config', backup.path, 'restore', '--database', 'source', '--datadir', datadir, '--identity', wrong.file], ENV);
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr).toContain('does not open it');
    await expect(stat(datadir)).rejects.toThrow(/ENOENT/);

    const restoredDir = join(dir, 'physical-restored');
    const result = await agent(['--config', backup.path, 'restore', '--database', 'source', '--datadir', restoredDir, '--identity', operator.file], ENV);
    expect(result.exitCode).toBe(0);
    const server = await startSandbox({ dir: join(dir, 'physical-server'), port: 0, existingDatadir: restoredDir, serverId: 42, private: true });
    try {
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }
  });
});

describe('point-in-time restore over encrypted binlog segments', () => {
  let daemon: DaemonProcess | undefined;

  afterAll(async () => {
    await daemon?.stop();
  });

  it('the daemon archives encrypted segments; a restore to a second replays them with the identity', async () => {
    const port = await freePort();
    const spool = join(dir, 'spool');
    const backup = await backupConfig('local', ['daemon:', `  listen_port: ${port}`, '  catch_up: false']);
    const config = backup.path;
    await writeFile(config, backup.yaml.replace('    password: ${SOURCE_PW}\n', `    password: \${SOURCE_PW}\n    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ${spool} }\n`));
    const yaml = await readFile(config, 'utf8');
    const running = (daemon = await startDaemon(config, { env: ENV }));
    await captureConnected(port, 'source', running.output);
    expect(running.output()).toContain('binlog compaction is off: the archive is encrypted');

    await runNow(config);
    const { T, expected } = await writeAroundT({ source: { port: sourcePort, password: PASSWORD, sql: source.sql }, schema: SCHEMA, updates: 50, checksums: () => checksums(source.sql), daemonPort: port, log: running.output });

    const binlogDir = join(backup.storageRoot ?? '', 'source', 'binlog');
    const files = await readdir(binlogDir, { recursive: true });
    const data = files.filter((f) => /\.binlog/.test(f));
    expect(data.length).toBeGreaterThan(0);
    expect(data.every((f) => f.endsWith('.binlog.zst.age'))).toBe(true);
    const segment = JSON.parse(await readFile(join(binlogDir, files.find((f) => /\d{12}-\d{12}\.json$/.test(f)) ?? ''), 'utf8')) as { version: number; encryption: unknown; object: Record<string, unknown> };
    expect(segment.version).toBe(3);
    expect(segment.encryption).toEqual({ format: 'age', recipients: [{ type: 'X25519', recipient: operator.recipient }, { type: 'X25519', recipient: recovery.recipient }] });
    expect(segment.object['rawSha256']).toBeUndefined();
    // The stock tools read the archive: a file's segments, decrypted and decompressed in key order,
    // are the server's binlog file.
    const file = data[0]?.split('/')[0] ?? '';
    const parts: Buffer[] = [];
    for (const name of data.filter((f) => f.startsWith(`${file}/`)).sort()) {
      parts.push((await execa('sh', ['-c', 'age -d -i "$1" "$2" | zstd -dc', 'sh', recovery.file, join(binlogDir, name)], { encoding: 'buffer' })).stdout as Buffer);
    }
    const archived = Buffer.concat(parts);
    expect(archived.length).toBeGreaterThan(4);
    const onServer = await readFile(join(source.datadir, file));
    // The server flags the file it still writes as in use (LOG_EVENT_BINLOG_IN_USE_F, bit 0 of the
    // format description event's flags at byte 21); the archive's copy of that event is the one
    // the server sent, without it. Every other byte is the same.
    const unflagged = Buffer.from(onServer.subarray(0, archived.length));
    unflagged.writeUInt8((unflagged[21] ?? 0) & ~0x01, 21);
    expect(archived.equals(unflagged)).toBe(true);

    const server = await freshServer('enc-pitr');
    try {
      // A wrong key: refused before the base is written.
      const gtidBefore = await server.sql('SELECT @@gtid_binlog_pos');
      const wrongConfig = await withTarget({ yaml }, server, wrong);
      const refused = await agent(['--config', wrongConfig, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString()], ENV);
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain('does not open it');
      await untouched(server, gtidBefore);

      // The identity from the restore host's configuration.
      const restoreConfig = await withTarget({ yaml }, server, operator);
      const result = await agent(['--config', restoreConfig, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-time', T.toISOString()], ENV);
      expect(result.exitCode).toBe(0);
      expect(result.stdout).toMatch(/then replayed \d+ transactions of binlog up to /);
      expect(await server.sql(`SELECT GROUP_CONCAT(label) FROM ${SCHEMA}.markers`)).toBe('before-T');
      expect(await checksums(server.sql)).toBe(expected);
    } finally {
      await server.stop();
    }
  });
});

/**
 * Watches every process on the machine (/proc: the argv and environment `ps e` shows) until
 * stopped: the commands seen, and any whose argv or environment holds one of `secrets`.
 */
function watchProcesses(secrets: string[]): { stop: () => Promise<{ seen: Set<string>; leaks: string[] }> } {
  const seen = new Set<string>();
  const leaks: string[] = [];
  let running = true;
  const sample = async () => {
    for (const pid of (await readdir('/proc')).filter((name) => /^\d+$/.test(name))) {
      const [argv, environ, exe] = await Promise.all([
        readFile(`/proc/${pid}/cmdline`, 'latin1').catch(() => ''),
        readFile(`/proc/${pid}/environ`, 'latin1').catch(() => ''),
        readlink(`/proc/${pid}/exe`).catch(() => ''),
      ]);
      if (argv === '') continue;
      seen.add(`${exe.split('/').pop() ?? ''}: ${argv.split('\0').join(' ')}`);
      for (const secret of secrets) if (argv.includes(secret) || environ.includes(secret)) leaks.push(`pid ${pid}: ${argv.split('\0').join(' ')}`);
    }
  };
  const loop = (async () => {
    while (running) {
      await sample();
      await sleep(5);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { seen, leaks };
    },
  };
}

describe('secrets', () => {
  it('the identity reaches age as a path only: never in argv (ps), the environment, logs or output', async () => {
    const record = await testDir('enc-record');
    const recordingAge = await fixtureWith(record, join(FIXTURES, 'recording-age.sh'), { RECORD_DIR: record });
    const backup = await backupConfig('local', ['tools:', `  age: ${recordingAge}`]);
    const backupRun = await agent(['--config', backup.path, '--log-level', 'trace', 'run-now'], ENV);
    expect(backupRun.exitCode).toBe(0);
    const server = await freshServer('enc-secrets');
    const secret = operator.secret.slice('AGE-SECRET-KEY-1'.length);
    try {
      const config = await withTarget(backup, server, operator);
      const watch = watchProcesses([secret]);
      const result = await agent(['--config', config, '--log-level', 'trace', 'restore', '--database', 'source', '--target', 'target', '--no-binlog'], ENV);
      const { seen, leaks } = await watch.stop();
      expect(result.exitCode).toBe(0);
      expect(leaks).toEqual([]);
      // The watch did see the restore's process (age's own runs are short: their argv is recorded below).
      expect([...seen].some((c) => c.includes('main.js') && c.includes('--config'))).toBe(true);
      const validate = await agent(['--config', config, 'config', 'validate'], ENV);
      expect(validate.stdout).toContain(`identity_file: ${operator.file}`);
      const argvs = await Promise.all((await readdir(record)).filter((f) => f.startsWith('age-argv.')).map((f) => readFile(join(record, f), 'utf8')));
      expect(argvs.some((a) => a.startsWith('--encrypt\n'))).toBe(true);
      expect(argvs.filter((a) => a.startsWith('--decrypt\n'))).toEqual(expect.arrayContaining([`--decrypt\n--identity\n${operator.file}\n`]));
      for (const text of [...argvs, result.stdout, result.stderr, backupRun.stdout, backupRun.stderr, validate.stdout, validate.stderr]) expect(text).not.toContain(secret);
      // Trace logs of the restore did run (the assertion above looked at real logs).
      expect(result.stderr).toContain('encrypted backup: decrypting it once before applying it');
    } finally {
      await server.stop();
    }
  });

  it('the passphrase stays in its file and the worker thread: never in argv (ps), the environment, logs, output or the store', async () => {
    const passphrase = 'marble-juniper-static-oxbow-1107';
    const passphraseFile = join(dir, 'secret-passphrase');
    const wrongFile = join(dir, 'secret-wrong-passphrase');
    const wrongPassphrase = 'close-but-not-the-passphrase';
    await writeFile(passphraseFile, `${passphrase}\n`, { mode: 0o600 });
    await writeFile(wrongFile, `${wrongPassphrase}\n`, { mode: 0o600 });
    const storage = await storageYaml('local');
    const yaml = ['storage:', storage, 'encryption:', `  passphrase_file: ${passphraseFile}`, '  scrypt_work_factor: 11', 'databases:', '  - name: source', '    host: 127.0.0.1', `    port: ${sourcePort}`, '    user: agent', '    password: ${SOURCE_PW}', ''].join('\n');
    const server = await freshServer('enc-secrets-pass');
    try {
      const config = await withTarget({ yaml }, server);
      const watch = watchProcesses([passphrase, wrongPassphrase]);
      const outputs: string[] = [];
      const run = async (args: string[], exitCode: number) => {
        const result = await agent(['--config', config, '--log-level', 'trace', ...args], ENV);
        expect(result.exitCode, result.stderr).toBe(exitCode);
        outputs.push(result.stdout, result.stderr);
        return result;
      };
      await run(['run-now', '--database', 'source'], 0);
      await run(['list', '--database', 'source', '--json'], 0);
      const refused = await run(['restore', '--database', 'source', '--target', 'target', '--no-binlog', '--passphrase-file', wrongFile], 1);
      expect(refused.stderr).toContain(`the passphrase in ${wrongFile} does not open it`);
      await run(['restore', '--database', 'source', '--target', 'target', '--no-binlog'], 0);
      await run(['download', '--database', 'source', '--output', await testDir('enc-secrets-download'), '--decrypt'], 0);
      await run(['config', 'validate'], 0);
      const { seen, leaks } = await watch.stop();
      expect(leaks).toEqual([]);
      expect([...seen].some((c) => c.includes('main.js') && c.includes('restore'))).toBe(true);
      for (const text of outputs) {
        expect(text).not.toContain(passphrase);
        expect(text).not.toContain(wrongPassphrase);
      }
      expect(outputs.join('\n')).toContain(`passphrase_file: ${passphraseFile}`);
      // Nothing in the store holds it either (manifests record only the scrypt type).
      const root = /path: (\S+)/.exec(storage)?.[1] ?? '';
      for (const file of await readdir(root, { recursive: true })) {
        const bytes = await readFile(join(root, file)).catch(() => Buffer.alloc(0));
        expect(bytes.includes(Buffer.from(passphrase))).toBe(false);
      }
    } finally {
      await server.stop();
    }
  });
});
