// The command line as a user meets it: exit codes (0 ok, 1 failure, 2 usage/config), `error:` and
// `hint:` lines, secrets kept out of argv, logs and output, and a download that refuses corrupt data.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import {
  agent,
  fixtureWith,
  FIXTURES,
  sourceConnectionYaml,
  sourceEnv,
  sourceSql,
  storageYaml,
  testDir,
  uniqueName,
  writeConfig,
} from '../helpers.ts';

const schema = uniqueName('cli').replace('-', '_');
let dir: string;
let config: string;
let storePath: string;

beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 300));
  dir = await testDir('cli');
  const storage = await storageYaml('local');
  storePath = /path: (.*)/.exec(storage)?.[1] ?? '';
  config = await writeConfig(
    dir,
    ['storage:', storage, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, '  - name: other', '    socket: /nonexistent.sock', ''].join('\n'),
  );
});

describe('usage and configuration errors exit 2', () => {
  it('an unknown flag', async () => {
    const result = await agent(['--config', config, 'list', '--colour']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("error: unknown option '--colour'");
  });

  it('an unknown database entry, with the known names as a hint', async () => {
    const result = await agent(['--config', config, 'run-now', '--database', 'nope'], sourceEnv());
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: --database nope: no database entry of that name');
    expect(result.stderr).toContain('hint: the configuration names: source, other');
  });

  it('restore without --database', async () => {
    const result = await agent(['--config', config, 'restore'], sourceEnv());
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: --database is required: the database entry whose backup to restore');
    expect(result.stderr).toContain('hint: the configuration names: source, other');
  });

  it('an invalid configuration names file, line and YAML path', async () => {
    const bad = await writeConfig(await testDir('bad-config'), 'storage:\n  type: s3\n  bukcet: x\ndatabases:\n  - name: a\n    port: 99999\n');
    const result = await agent(['--config', bad, 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`error: invalid configuration ${bad}:`);
    expect(result.stderr).toMatch(/line 3: storage: unknown key "bukcet"/);
    expect(result.stderr).toMatch(/line 6: databases\[0\]\.port: /);
    expect(result.stderr).toContain('hint: ');
  });

  it('a missing configuration file, found through AGENT_CONFIG', async () => {
    const result = await agent(['list'], { AGENT_CONFIG: '/nonexistent/agent.yaml' });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: read configuration /nonexistent/agent.yaml: ENOENT');
    expect(result.stderr).toContain('hint: pass --config PATH or set AGENT_CONFIG');
  });

  it('a backup ID that is not one (a path) is refused by every command that takes one', async () => {
    for (const args of [['download', '--database', 'source'], ['restore', '--database', 'source']]) {
      const result = await agent(['--config', config, ...args, '--backup', '../../etc'], sourceEnv());
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain("error: option '-b, --backup <id>' argument '../../etc' is invalid. not a backup ID");
    }
  });

  it('a YAML alias bomb is a configuration error, exit 2', async () => {
    const levels = ['b', 'c', 'd', 'e', 'f', 'g'].map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdef'[i]}`).join(',')}]`);
    const bomb = await writeConfig(await testDir('alias-bomb'), ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]', ...levels, 'databases: *g', ''].join('\n'));
    const result = await agent(['--config', bomb, 'list']);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain(`error: invalid configuration ${bomb}:\n  aliases expand too far`);
  });

  it('config validate prints a configuration that loads again, defaults filled in, secrets redacted', async () => {
    const result = await agent(['--config', config, 'config', 'validate'], sourceEnv());
    expect(result.exitCode).toBe(0);
    // A reference to the environment stays a reference; the value never shows.
    expect(result.stdout).toContain('password: ${SOURCE_DB_PASSWORD}');
    expect(result.stdout).toContain('segment_age: 3s');
    expect(result.stdout).toContain('orphan_grace: 1d');
    expect(result.stdout).not.toContain(sourceEnv()['SOURCE_DB_PASSWORD']);
    const again = await writeConfig(await testDir('validated'), result.stdout);
    const second = await agent(['--config', again, 'config', 'validate'], sourceEnv());
    expect(second.exitCode).toBe(0);
    expect(second.stdout).toBe(result.stdout);
  });
});

describe('secrets', () => {
  // Secrets the agent's own environment holds: none of them may reach the tool.
  const secrets = {
    AWS_SECRET_ACCESS_KEY: 'aws-secret-value',
    GOOGLE_APPLICATION_CREDENTIALS: '/secret/gcs-key.json',
    MYSQL_PWD: 'mysql-pwd-value',
    DB_PASSWORD: 'db-password-value',
    AGENT_TOKEN: 'agent-token-value',
  };
  let record: string;

  it('reach the dump tool through a private 0600 defaults file, never argv or logs', async () => {
    record = await testDir('record');
    const recording = await writeConfig(
      record,
      (await readFile(config, 'utf8')).replace(
        'databases:',
        `tools:\n  dump: ${await fixtureWith(record, join(FIXTURES, 'recording-dump.sh'), { RECORD_DIR: record })}\ndatabases:`,
      ),
    );
    const password = sourceEnv()['SOURCE_DB_PASSWORD'] ?? '';
    const result = await agent(['--config', recording, '--log-level', 'trace', 'run-now', '--database', 'source', '--json'], {
      ...sourceEnv(),
      ...secrets,
      LC_ALL: 'C.UTF-8',
      TZ: 'Europe/Paris',
    });
    expect(result.exitCode).toBe(0);
    const argv = await readFile(join(record, 'argv'), 'utf8');
    expect(argv.split('\n')[0]).toMatch(/^--defaults-file=\/proc\/\d+\/fd\/\d+$/);
    expect(argv).toContain('--single-transaction');
    expect(argv).not.toContain(password);
    expect(await readFile(join(record, 'cmdline'), 'utf8')).not.toContain(password);
    expect((await readFile(join(record, 'file-mode'), 'utf8')).trim()).toBe('600');
    // Read through the agent's descriptor: the file in its private directory had no name left.
    expect((await readFile(join(record, 'target'), 'utf8')).trim()).toMatch(/\/backup-agent-[^/]+\/client\.cnf \(deleted\)$/);
    expect(await readFile(join(record, 'content'), 'utf8')).toContain(`password="${password}"`);
    // The descriptor is closed once the tool has exited.
    await expect(stat((await readFile(join(record, 'path'), 'utf8')).trim())).rejects.toThrow(/ENOENT/);
    // Logs (trace level, on stderr) and output never carry it.
    expect(result.stderr).toContain('"msg":"backup completed"');
    expect(result.stderr + result.stdout).not.toContain(password);
  });

  it('the tool (of the backup above) gets a minimal environment: PATH, locale, time zone; no secret, no AGENT_*', async () => {
    const env = await readFile(join(record, 'env'), 'utf8');
    const names = env.split('\n').map((line) => line.split('=')[0] ?? '').filter(Boolean);
    // What bash itself sets (PWD, SHLVL, _) and the wrapper's RECORD_DIR aside, only the passed ones.
    const own = ['PWD', 'OLDPWD', 'SHLVL', '_', 'RECORD_DIR'];
    expect(names.filter((n) => !own.includes(n)).every((n) => ['PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR'].includes(n) || n.startsWith('LC_'))).toBe(true);
    expect(env).toMatch(/^PATH=/m);
    expect(env).toContain('LC_ALL=C.UTF-8\n');
    expect(env).toContain('TZ=Europe/Paris\n');
    for (const value of [...Object.values(secrets), sourceEnv()['SOURCE_DB_PASSWORD'] ?? '']) expect(env).not.toContain(value);
  });
});

describe('temporary directories', () => {
  it('an agent removes the private directories of agents that are gone (SIGKILL removes nothing), and only those', async () => {
    const tmp = await testDir('cli-sweep');
    const child = execa('true');
    const gone = child.pid as number;
    await child; // exited and reaped: its pid names no process now
    const left = join(tmp, `backup-agent-binlog-p${gone}-source-AbC123`);
    const live = join(tmp, `backup-agent-lsn-p${process.pid}-XyZ789`);
    const notOurs = join(tmp, 'backup-agent-demo-Kept12');
    for (const d of [left, live, notOurs]) {
      await mkdir(d);
      await writeFile(join(d, 'mysql-bin.000001'), 'row data');
    }
    const result = await agent(['--config', config, 'list', '--database', 'source'], { ...sourceEnv(), TMPDIR: tmp });
    expect(result.stderr).toBe('');
    expect(result.exitCode).toBe(0);
    expect((await readdir(tmp)).filter((name) => name.startsWith('backup-agent-')).sort()).toEqual([notOurs, live].map((d) => d.slice(tmp.length + 1)).sort());
  });
});

describe('download', () => {
  it('refuses an archive whose bytes do not match the manifest, and leaves no file', async () => {
    const backup = await agent(['--config', config, 'run-now', '--database', 'source', '--json'], sourceEnv());
    expect(backup.exitCode).toBe(0);
    const [manifest] = JSON.parse(backup.stdout) as { id: string; objects: { key: string }[] }[];
    const object = join(storePath, manifest?.objects[0]?.key ?? '');
    const bytes = await readFile(object);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
    await writeFile(object, bytes);

    const out = join(dir, 'corrupt-download');
    const result = await agent(['--config', config, 'download', '--database', 'source', '--backup', manifest?.id ?? '', '--output', out], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/error: .*SHA-256 [0-9a-f]{64} does not match the manifest's [0-9a-f]{64}/);
    expect(await readdir(out)).toEqual([]);
  });

  it('writes the downloaded file 0600: it holds the data of every table', async () => {
    const backup = await agent(['--config', config, 'run-now', '--database', 'source', '--json'], sourceEnv());
    expect(backup.exitCode).toBe(0);
    const out = join(dir, 'download-mode');
    const result = await agent(['--config', config, 'download', '--database', 'source', '--output', out], sourceEnv());
    expect(result.exitCode).toBe(0);
    const [file] = await readdir(out);
    expect(((await stat(join(out, file ?? ''))).mode & 0o777).toString(8)).toBe('600');
  });

  it('a backup ID that does not exist', async () => {
    const result = await agent(['--config', config, 'download', '--database', 'source', '--backup', '20200101T000000.000Z-000000'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: backup 20200101T000000.000Z-000000 of database source not found');
    expect(result.stderr).toContain('hint: `agent list --database source`');
  });

  it('--database is required when several databases are configured', async () => {
    const result = await agent(['--config', config, 'download'], sourceEnv());
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('error: --database is required when the configuration names several databases');
  });
});

describe('list', () => {
  it('prints a table with the documented columns, newest first', async () => {
    await agent(['--config', config, 'run-now', '--database', 'source'], sourceEnv());
    const result = await agent(['--config', config, 'list'], sourceEnv());
    expect(result.exitCode).toBe(0);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^ID\s+DATABASE\s+TYPE\s+TRIGGER\s+CREATED AT\s+SIZE\s+STATUS\s+VERIFIED\s+PARENT\s+ENCRYPTED TO$/);
    expect(lines.length).toBeGreaterThanOrEqual(3);
    const ids = lines.slice(1).map((l) => l.split(/\s+/)[0] ?? '');
    expect(ids).toEqual([...ids].sort().reverse());
    expect(lines[1]).toMatch(/source\s+dump\s+manual\s+\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC\s+[\d.]+ (B|KiB|MiB)\s+completed\s+-\s+-\s+-$/);
  });

  it('fails for a database that cannot be reached, without stopping the others (run-now)', async () => {
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stdout).toMatch(/^source: dump backup \d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6} completed/m);
    expect(result.stderr).toContain('error: other: connect to database other (/nonexistent.sock)');
    expect(result.stderr).toContain('error: 1 of 2 backups failed: other');
  });
});
