// parseConfig: YAML text + environment → the normalised configuration, or one AgentError of kind
// `config` that names every problem by line and YAML path.
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/normalize.ts';
import { Secret } from '../../src/config/secret.ts';
import { AgentError } from '../../src/errors.ts';
import { testDir } from '../helpers.ts';

const parse = (yaml: string, env: Record<string, string> = {}): AgentConfig => parseConfig(yaml, 'agent.yaml', env);

/** The AgentError parseConfig throws for `yaml` (fails the test when it does not throw one). */
function configError(yaml: string, env: Record<string, string> = {}): AgentError {
  try {
    parse(yaml, env);
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    const agentError = err as AgentError;
    expect(agentError.kind).toBe('config');
    expect(agentError.exitCode).toBe(2);
    return agentError;
  }
  throw new Error('expected parseConfig to throw');
}

/** The problem lines of an error message (without the "invalid configuration …:" header). */
const problems = (err: AgentError): string[] => err.message.split('\n').slice(1).map((l) => l.trim());

const LOCAL = ['storage:', '  type: local', '  path: /var/backups'].join('\n');

describe('parseConfig: a valid configuration', () => {
  it('normalises a minimal file with defaults', () => {
    const config = parse(`${LOCAL}\ndatabases:\n  - name: shop\n`);
    expect(config.timezone).toBe('UTC');
    expect(config.logLevel).toBe('info');
    expect(config.databases).toHaveLength(1);
    const db = config.databases[0];
    expect(db).toMatchObject({
      name: 'shop',
      connection: { host: '127.0.0.1', port: 3306, socket: undefined, user: 'root', password: undefined, tls: undefined },
      schemas: undefined,
      excludeSchemas: [],
      dump: { binlog_coordinates: 'auto', extra_args: [] },
      storage: { type: 'local', path: '/var/backups' },
      compression: { algorithm: 'zstd', level: 3 },
    });
  });

  it('gives each database the shared storage unless it names its own', () => {
    const config = parse(
      [
        LOCAL,
        'databases:',
        '  - name: a',
        '  - name: b',
        '    storage:',
        '      type: s3',
        '      bucket: bkt',
        '      prefix: x/y',
        '  - name: c',
        '    storage:',
        '      type: gcs',
        '      bucket: g',
      ].join('\n'),
    );
    expect(config.databases.map((d) => d.storage)).toEqual([
      { type: 'local', path: '/var/backups' },
      expect.objectContaining({ type: 's3', bucket: 'bkt', prefix: 'x/y', region: 'us-east-1', part_size_mb: 8, upload_concurrency: 2, checksum: 'when_supported', force_path_style: false }),
      expect.objectContaining({ type: 'gcs', bucket: 'g', prefix: '' }),
    ]);
  });

  it('uses the algorithm default level, and a database compression override', () => {
    const config = parse(
      [
        'compression:',
        '  algorithm: gzip',
        LOCAL,
        'databases:',
        '  - name: a',
        '  - name: b',
        '    compression:',
        '      algorithm: zstd',
        '      level: 19',
        '  - name: c',
        '    compression:',
        '      algorithm: none',
      ].join('\n'),
    );
    expect(config.databases.map((d) => d.compression)).toEqual([
      { algorithm: 'gzip', level: 6 },
      { algorithm: 'zstd', level: 19 },
      { algorithm: 'none', level: 0 },
    ]);
  });

  it('connects over a socket without a host', () => {
    const config = parse(`${LOCAL}\ndatabases:\n  - name: a\n    socket: /run/mysqld/mysqld.sock\n    user: backup\n`);
    expect(config.databases[0]?.connection).toMatchObject({ host: undefined, socket: '/run/mysqld/mysqld.sock', user: 'backup' });
  });

  it('accepts a valid IANA time zone', () => {
    expect(parse(`timezone: Europe/Paris\n${LOCAL}\ndatabases:\n  - name: a\n`).timezone).toBe('Europe/Paris');
  });

  it('accepts the aliases Intl accepts besides the canonical names (Etc/UTC, US/Eastern, Europe/Kiev)', () => {
    for (const zone of ['Etc/UTC', 'US/Eastern', 'Europe/Kiev', 'UTC']) {
      expect(parse(`timezone: ${zone}\n${LOCAL}\ndatabases:\n  - name: a\n`).timezone).toBe(zone);
    }
  });
});

describe('parseConfig: errors name the line and the YAML path', () => {
  it('an out-of-range value in the second database', () => {
    const yaml = [LOCAL, 'databases:', '  - name: a', '  - name: b', '    port: 99999'].join('\n');
    const err = configError(yaml);
    expect(err.message).toMatch(/^invalid configuration agent\.yaml:\n/);
    expect(problems(err)).toEqual([expect.stringMatching(/^line 7: databases\[1\]\.port: .*65535/)]);
    expect(err.hint).toMatch(/config validate/);
  });

  it('an unknown key (a typo) is named, with its line', () => {
    const yaml = ['storage:', '  type: s3', '  bukcet: backups', 'databases:', '  - name: a'].join('\n');
    const lines = problems(configError(yaml));
    expect(lines).toContainEqual('line 3: storage: unknown key "bukcet"');
    // …and the key it was meant to be is missing.
    expect(lines).toContainEqual(expect.stringMatching(/^line 2: storage\.bucket: missing/));
  });

  it('an unknown key in a database entry', () => {
    const lines = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    pasword: x\n`));
    expect(lines).toEqual(['line 6: databases[0]: unknown key "pasword"']);
  });

  it('a missing required key names its path', () => {
    const yaml = [LOCAL, 'databases:', '  - name: a', '    storage:', '      type: s3', '      region: eu-west-1'].join('\n');
    const lines = problems(configError(yaml));
    expect(lines).toEqual([expect.stringMatching(/^line 7: databases\[0\]\.storage\.bucket: missing/)]);
  });

  it('no databases at all', () => {
    expect(problems(configError(`${LOCAL}\n`))).toEqual([expect.stringMatching(/^line 1: databases: /)]);
    expect(problems(configError(`${LOCAL}\ndatabases: []\n`))).toEqual(['line 4: databases: name at least one database']);
  });

  it('no storage anywhere', () => {
    expect(problems(configError('databases:\n  - name: a\n'))).toEqual([
      expect.stringMatching(/^line 2: databases\[0\]\.storage: no storage/),
    ]);
  });

  it('duplicate database names', () => {
    const lines = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n  - name: b\n  - name: a\n`));
    expect(lines).toEqual(['line 7: databases[2].name: duplicate database name "a" (also databases[0])']);
  });

  it('both password and password_file', async () => {
    const file = join(await testDir('config'), 'pw');
    await writeFile(file, 'pw\n');
    const lines = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    password: x\n    password_file: ${file}\n`));
    expect(lines).toEqual(['line 7: databases[0].password_file: give password or password_file, not both']);
  });

  it('socket together with host or port', () => {
    const withHost = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    host: db\n    socket: /s.sock\n`));
    expect(withHost).toEqual(['line 7: databases[0].socket: give socket, or host and port, not both']);
    const withPort = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    port: 3307\n    socket: /s.sock\n`));
    expect(withPort).toEqual(['line 7: databases[0].socket: give socket, or host and port, not both']);
  });

  it('an s3 access key without a secret, and a secret without an access key', () => {
    const noSecret = ['storage:', '  type: s3', '  bucket: b', '  access_key_id: AKIA', 'databases:', '  - name: a'].join('\n');
    expect(problems(configError(noSecret))).toEqual([expect.stringMatching(/^line 2: storage\.secret_access_key: access_key_id and secret_access_key go together/)]);
    const noKey = ['storage:', '  type: s3', '  bucket: b', '  secret_access_key: s', 'databases:', '  - name: a'].join('\n');
    expect(problems(configError(noKey))).toEqual([expect.stringMatching(/^line 2: storage\.access_key_id: /)]);
  });

  it('an unknown time zone', () => {
    const lines = problems(configError(`timezone: Mars/Olympus\n${LOCAL}\ndatabases:\n  - name: a\n`));
    expect(lines).toEqual(['line 1: timezone: unknown time zone "Mars/Olympus" (expected an IANA name like Europe/Paris)']);
  });

  it('a gzip level above 9', () => {
    const lines = problems(configError(`compression:\n  algorithm: gzip\n  level: 12\n${LOCAL}\ndatabases:\n  - name: a\n`));
    expect(lines).toEqual([expect.stringMatching(/^line \d+: databases\[0\]\.compression\.level: gzip level must be 1–9/)]);
  });

  it('an s3 prefix with ".." segments', () => {
    const yaml = ['storage:', '  type: s3', '  bucket: b', '  prefix: a/../b', 'databases:', '  - name: a'].join('\n');
    expect(problems(configError(yaml))).toEqual([expect.stringMatching(/^line 4: storage\.prefix: must be a relative key prefix/)]);
  });

  it('reports every problem at once', () => {
    const yaml = [`timezone: Nowhere/Land`, LOCAL, 'databases:', '  - name: a', '  - name: a', '    socket: /s', '    host: h'].join('\n');
    const lines = problems(configError(yaml));
    expect(lines).toHaveLength(3);
    expect(lines.map((l) => l.split(': ')[1])).toEqual(['timezone', 'databases[1].name', 'databases[1].socket']);
  });

  it('YAML syntax errors and duplicate keys give the line', () => {
    expect(problems(configError(`${LOCAL}\n  path: /other\ndatabases:\n  - name: a\n`))).toEqual([expect.stringMatching(/^line 4: .*unique/)]);
    expect(problems(configError('storage: [\ndatabases:\n'))[0]).toMatch(/^line \d+: /);
  });
});

describe('parseConfig: ${VAR} interpolation', () => {
  const yaml = (password: string): string => `${LOCAL}\ndatabases:\n  - name: a\n    password: "${password}"\n    user: \${DB_USER}\n`;

  it('substitutes set variables, also inside longer strings', () => {
    const config = parse(yaml('pre-${DB_PW}-post'), { DB_PW: 's3cr3t', DB_USER: 'backup' });
    expect(config.databases[0]?.connection.password?.reveal()).toBe('pre-s3cr3t-post');
    expect(config.databases[0]?.connection.user).toBe('backup');
  });

  it('an unset variable is an error naming the variable and the path', () => {
    const lines = problems(configError(yaml('${DB_PW}'), { DB_USER: 'backup' }));
    expect(lines).toEqual(['line 6: databases[0].password: environment variable DB_PW is not set']);
  });

  it('an empty variable is not a silently empty password', () => {
    const lines = problems(configError(yaml('${DB_PW}'), { DB_PW: '', DB_USER: 'backup' }));
    expect(lines).toEqual([expect.stringMatching(/^line 6: databases\[0\]\.password: must not be empty/)]);
  });

  it('$${ writes a literal ${', () => {
    const config = parse(yaml('a$${DB_PW}b'), { DB_PW: 'never', DB_USER: 'u' });
    expect(config.databases[0]?.connection.password?.reveal()).toBe('a${DB_PW}b');
  });

  it('a malformed reference is an error', () => {
    const lines = problems(configError(yaml('${1BAD}'), { DB_USER: 'u' }));
    expect(lines).toEqual([expect.stringMatching(/^line 6: databases\[0\]\.password: invalid variable reference/)]);
  });
});

describe('parseConfig: password_file', () => {
  it('reads the file and drops one trailing newline', async () => {
    const dir = await testDir('config');
    await writeFile(join(dir, 'pw'), 'from-file  \n');
    await writeFile(join(dir, 'pw2'), 'two\n\n');
    const config = parse(
      `${LOCAL}\ndatabases:\n  - name: a\n    password_file: ${join(dir, 'pw')}\n  - name: b\n    password_file: ${join(dir, 'pw2')}\n`,
    );
    expect(config.databases[0]?.connection.password?.reveal()).toBe('from-file  ');
    expect(config.databases[1]?.connection.password?.reveal()).toBe('two\n');
  });

  it('a missing file is an error naming the file and the YAML path', async () => {
    const missing = join(await testDir('config'), 'does-not-exist');
    const lines = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    password_file: ${missing}\n`));
    expect(lines).toEqual([`line 6: databases[0].password_file: cannot read secret file ${missing} (ENOENT)`]);
  });

  it('an empty file is an error', async () => {
    const file = join(await testDir('config'), 'empty');
    await writeFile(file, '\n');
    const lines = problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    password_file: ${file}\n`));
    expect(lines).toEqual([`line 6: databases[0].password_file: secret file ${file} is empty`]);
  });
});

describe('Secret redaction', () => {
  const PASSWORD = 'hunter2-very-secret';

  it('prints **redacted** through JSON.stringify, String() and util.inspect', () => {
    const secret = new Secret(PASSWORD);
    expect(secret.reveal()).toBe(PASSWORD);
    expect(JSON.stringify({ secret })).toBe('{"secret":"**redacted**"}');
    expect(String(secret)).toBe('**redacted**');
    expect(`${secret}`).toBe('**redacted**');
    expect(inspect(secret)).toBe('**redacted**');
    expect(inspect({ nested: { secret } }, { depth: 5 })).not.toContain(PASSWORD);
  });

  it('JSON.stringify and util.inspect of a whole configuration never contain a secret', () => {
    const yaml = [
      'storage:',
      '  type: s3',
      '  bucket: b',
      '  access_key_id: ${AK}',
      '  secret_access_key: ${SK}',
      '  session_token: ${ST}',
      'databases:',
      '  - name: a',
      '    password: ${PW}',
    ].join('\n');
    const env = { AK: 'AKIA-access-key-id', SK: 'secret-access-key-value', ST: 'session-token-value', PW: PASSWORD };
    const config = parse(yaml, env);
    const json = JSON.stringify(config);
    const inspected = inspect(config, { depth: 10 });
    for (const value of Object.values(env)) {
      expect(json).not.toContain(value);
      expect(inspected).not.toContain(value);
    }
    expect(json).toContain('**redacted**');
    expect(config.databases[0]?.connection.password?.reveal()).toBe(PASSWORD);
  });
});

describe('parseConfig: fixes found in review', () => {
  it('a database that sets only a level inherits the shared algorithm', () => {
    const config = parse(`${LOCAL}\ncompression: { algorithm: gzip, level: 9 }\ndatabases:\n  - name: a\n    compression: { level: 4 }\n  - name: b\n`);
    expect(config.databases[0]?.compression).toEqual({ algorithm: 'gzip', level: 4 });
    expect(config.databases[1]?.compression).toEqual({ algorithm: 'gzip', level: 9 });
  });

  it("a database that switches algorithm does not take the shared algorithm's level", () => {
    const config = parse(`${LOCAL}\ncompression: { algorithm: gzip, level: 9 }\ndatabases:\n  - name: a\n    compression: { algorithm: zstd }\n`);
    expect(config.databases[0]?.compression).toEqual({ algorithm: 'zstd', level: 3 });
  });

  it('keeps spaces that are part of a password', () => {
    const config = parse(`${LOCAL}\ndatabases:\n  - name: a\n    password: " sp ace "\n`);
    expect(config.databases[0]?.connection.password?.reveal()).toBe(' sp ace ');
  });

  it('takes numbers and booleans from ${VAR}', () => {
    const config = parse(
      'storage:\n  type: s3\n  bucket: b\n  force_path_style: ${PATH_STYLE}\n  part_size_mb: ${PART}\ndatabases:\n  - name: a\n    port: ${DB_PORT}\n',
      { DB_PORT: '3307', PATH_STYLE: 'true', PART: '16' },
    );
    expect(config.databases[0]?.connection.port).toBe(3307);
    expect(config.databases[0]?.storage).toMatchObject({ force_path_style: true, part_size_mb: 16 });
  });

  it('still rejects a port that is not a number', () => {
    expect(problems(configError(`${LOCAL}\ndatabases:\n  - name: a\n    port: \${DB_PORT}\n`, { DB_PORT: 'x' }))).toEqual([
      'line 6: databases[0].port: Invalid input: expected number, received string',
    ]);
  });
});

const ALIAS_BOMB = [
  'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
  ...['b', 'c', 'd', 'e', 'f', 'g'].map((name, i) => `${name}: &${name} [${Array(9).fill(`*${'abcdef'[i]}`).join(',')}]`),
  'databases: *g',
  '',
].join('\n');

describe('parseConfig: an alias bomb', () => {
  it('is a configuration error, not a crash or a hang', () => {
    expect(problems(configError(ALIAS_BOMB))).toEqual(['aliases expand too far (a resource exhaustion attack?): write the values out instead']);
  });

  it('a few ordinary aliases still work', () => {
    const config = parse(`${LOCAL}\ndatabases:\n  - name: a\n    host: &host db1\n  - name: b\n    host: *host\n`);
    expect(config.databases.map((d) => d.connection.host)).toEqual(['db1', 'db1']);
  });
});

describe('verify.record_figures', () => {
  it('is off by default and can be turned on per entry', () => {
    const config = parse(`${LOCAL}\ndatabases:\n  - name: a\n  - name: b\n    verify: { record_figures: true }\n`);
    expect(config.databases.map((d) => d.verify.record_figures)).toEqual([false, true]);
  });

  it('is refused, naming its YAML path, without the dump coordinates that say which point the figures describe', () => {
    const err = configError(`${LOCAL}\ndatabases:\n  - name: a\n    dump: { binlog_coordinates: 'off' }\n    verify: { record_figures: true }\n`);
    expect(problems(err)).toEqual([
      expect.stringContaining("databases[0].verify.record_figures: needs dump.binlog_coordinates: auto: the figures are compared only when their binlog position is the backup's own"),
    ]);
  });

  it('is refused for an encrypted entry: the figures would sit in the manifest unencrypted', () => {
    const err = configError(
      `${LOCAL}\nencryption:\n  recipients: [age1wp679wqnhntv2lh3kjegsmdp96tl2cvyk4hwgk7eacc4fy2juclsr36lsz]\ndatabases:\n  - name: a\n    verify: { record_figures: true }\n`,
    );
    expect(problems(err)).toEqual([expect.stringContaining('databases[0].verify.record_figures: the figures (table names, row counts, checksums) would be stored unencrypted in the manifest of an encrypted backup; turn one of them off')]);
  });

  it('names an unknown key under verify', () => {
    const err = configError(`${LOCAL}\ndatabases:\n  - name: a\n    verify: { record_figure: true }\n`);
    expect(problems(err).join('\n')).toContain('databases[0].verify');
  });
});
