// Restores of encrypted (age) backups through the daemon's API, on a real daemon process over real
// HTTP, the harness's MariaDB, a fresh target server, a local store and s3rver: with the entry's
// configured identity file, with an identity given in the request (for an entry whose host holds
// no key, and for another bucket given as `source`), a wrong identity refused before anything is
// written, naming the recipients, and the identity text never in the daemon's log, any answer,
// job listings, age's argv, or left on disk.
import { execa } from 'execa';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { agent, FIXTURES, fixtureWith, freshServer, schemaChecksums, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName } from '../helpers.ts';

const TOKEN = 'e'.repeat(48);

interface Key {
  file: string;
  recipient: string;
  /** The whole key file, as a client would send it. */
  text: string;
  secret: string;
}

const short = (recipient: string) => `${recipient.slice(0, 10)}…${recipient.slice(-6)}`;

describe('encrypted backups restored through the API', () => {
  const schema = uniqueName('apienc').replace('-', '_');
  let dir: string;
  let tmp: string;
  let record: string;
  let copy: Sandbox;
  let daemon: DaemonProcess | undefined;
  let port: number;
  let keyed: Key;
  let given: Key;
  let wrong: Key;
  /** Every answer the API gave in this file, to search for secrets. */
  const answers: string[] = [];

  const keygen = async (name: string): Promise<Key> => {
    const file = join(dir, `${name}.key`);
    await execa('age-keygen', ['-o', file]);
    const text = await readFile(file, 'utf8');
    return { file, text, recipient: (await execa('age-keygen', ['-y', file])).stdout.trim(), secret: text.split('\n').find((l) => l.startsWith('AGE-SECRET-KEY-1')) ?? '' };
  };

  const call = async (method: string, path: string, body?: unknown) => {
    const response = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    answers.push(text);
    return { status: response.status, json: JSON.parse(text) as any, text };
  };

  const finished = async (path: string, field: 'job' | 'restore') => {
    const deadline = Date.now() + 90_000;
    for (;;) {
      const { json } = await call('GET', path);
      if (json[field].finished_at) return json[field];
      if (Date.now() > deadline) throw new Error(`${path} did not finish:\n${daemon?.output()}`);
      await sleep(200);
    }
  };

  const backupOnce = async (database: string) => {
    const started = await call('POST', '/v1/backups/schedules', { database, type: 'dump', schedule: 'once' });
    expect(started.status, started.text).toBe(202);
    const job = await finished(`/v1/jobs/${started.json.job.id}`, 'job');
    expect(job.status, job.message).toBe('succeeded');
    return job.backup_id as string;
  };

  const restore = async (body: Record<string, unknown>) => {
    const started = await call('POST', '/v1/restores', body);
    expect(started.status, started.text).toBe(202);
    return finished(`/v1/restores/${started.json.restore.id}`, 'restore');
  };

  beforeAll(async () => {
    await sourceSql(sampleDataSql(schema, 150));
    copy = await freshServer('apienc-copy');
    dir = await testDir('api-enc');
    tmp = join(dir, 'tmp');
    record = join(dir, 'record');
    await mkdir(tmp);
    await mkdir(record);
    [keyed, given, wrong] = await Promise.all([keygen('keyed'), keygen('given'), keygen('wrong')]);
    port = await freePort();
    await writeFile(join(dir, 'token'), TOKEN, { mode: 0o600 });
    const age = await fixtureWith(record, join(FIXTURES, 'recording-age.sh'), { RECORD_DIR: record });
    const config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      [
        'storage:',
        '  type: local',
        `  path: ${join(dir, 'store')}`,
        'tools:',
        `  age: ${age}`,
        'daemon:',
        `  listen_port: ${port}`,
        '  catch_up: false',
        'api:',
        '  tokens:',
        `    - { name: restorer, role: admin, token_file: ${join(dir, 'token')} }`,
        'databases:',
        // This host holds the key of `keyed` …
        '  - name: keyed',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        `    encryption: { recipients: [${keyed.recipient}], identity_file: ${keyed.file} }`,
        // … and only the public key of `keyless`: a restore needs the identity in the request.
        '  - name: keyless',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        `    encryption: { recipients: [${given.recipient}] }`,
        // … and nothing of `sealed`, backed up elsewhere with a passphrase: a restore needs it in the request.
        '  - name: sealed',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '  - name: copy',
        '    host: 127.0.0.1',
        `    port: ${copy.port}`,
        '    user: agent',
        '    password: target-pw',
        '',
      ].join('\n'),
    );
    daemon = await startDaemon(config, { env: { ...sourceEnv(), TMPDIR: tmp, STATE_DIRECTORY: join(dir, 'state') } });
  });

  afterAll(async () => {
    await daemon?.stop();
    await copy?.stop();
  });

  it('restores with the identity file of the entry; checksums equal', async () => {
    await backupOnce('keyed');
    const done = await restore({ database: 'keyed', target: 'copy' });
    expect(done.status, done.message).toBe('succeeded');
    expect(await schemaChecksums(copy.sql, schema)).toBe(await schemaChecksums(sourceSql, schema));
  });

  it('restores with an identity given in the request when the host holds none; checksums equal', async () => {
    const id = await backupOnce('keyless');
    const manifest = JSON.parse(await readFile(join(dir, 'store', 'keyless', 'backups', id, 'manifest.json'), 'utf8'));
    expect(manifest.encryption.recipients.map((r: { recipient: string }) => r.recipient)).toEqual([given.recipient]);
    await copy.sql(`DROP DATABASE \`${schema}\``);
    const done = await restore({ database: 'keyless', target: 'copy', identity: given.text });
    expect(done.status, done.message).toBe('succeeded');
    expect(await schemaChecksums(copy.sql, schema)).toBe(await schemaChecksums(sourceSql, schema));
  });

  it('refuses a wrong identity before anything is written, naming the recipients; and a restore without one', async () => {
    await copy.sql(`INSERT INTO \`${schema}\`.customers (name, email, created_at) VALUES ('kept', 'kept@example.com', NOW())`);
    const before = await schemaChecksums(copy.sql, schema);
    const refused = await restore({ database: 'keyless', target: 'copy', overwrite: true, identity: wrong.text });
    expect(refused.status).toBe('failed');
    expect(refused.message).toMatch(
      new RegExp(`^restore backup \\S+ into copy: the identity given in the request \\(${short(wrong.recipient).replace('…', '.')}\\) does not open it: it was encrypted to ${short(given.recipient).replace('…', '.')}; nothing was written$`),
    );
    expect(refused.hint).toBe('give the identity of one of these recipients (body.identity of POST /v1/restores, or encryption.identity_file of the source or target entry on the daemon host); `age-keygen -y FILE` prints the recipient of a key file');
    expect(await schemaChecksums(copy.sql, schema)).toBe(before);

    const none = await restore({ database: 'keyless', target: 'copy', overwrite: true });
    expect(none.status).toBe('failed');
    expect(none.message).toContain(`it is encrypted with age to ${short(given.recipient)}, and no identity is configured; nothing was written`);
    expect(await schemaChecksums(copy.sql, schema)).toBe(before);
  });

  it('restores a passphrase-encrypted backup with the passphrase given in the request; a wrong one is refused, target untouched', async () => {
    const PASSPHRASE = 'correct horse battery staple in the request';
    const passphraseFile = join(dir, 'passphrase.txt');
    await writeFile(passphraseFile, `${PASSPHRASE}\n`, { mode: 0o600 });
    const sealedConfig = join(dir, 'sealed.yaml');
    await writeFile(
      sealedConfig,
      ['storage:', '  type: local', `  path: ${join(dir, 'store')}`, 'databases:', '  - name: sealed', sourceConnectionYaml(), `    schemas: [${schema}]`, `    encryption: { passphrase_file: ${passphraseFile}, scrypt_work_factor: 10 }`, ''].join('\n'),
    );
    const made = await agent(['--config', sealedConfig, 'run-now', '--database', 'sealed'], sourceEnv());
    expect(made.exitCode, made.stderr).toBe(0);
    await copy.sql(`DROP DATABASE IF EXISTS \`${schema}\``);
    await copy.sql(`CREATE DATABASE \`${schema}\``);
    await copy.sql(`CREATE TABLE \`${schema}\`.kept (id INT PRIMARY KEY)`);
    await copy.sql(`INSERT INTO \`${schema}\`.kept VALUES (1)`);
    const before = await schemaChecksums(copy.sql, schema);
    const refused = await restore({ database: 'sealed', target: 'copy', overwrite: true, passphrase: 'not the passphrase' });
    expect(refused.status).toBe('failed');
    expect(refused.message).toContain('does not open it: it was encrypted to a passphrase (scrypt); nothing was written');
    expect(await schemaChecksums(copy.sql, schema)).toBe(before);

    const done = await restore({ database: 'sealed', target: 'copy', overwrite: true, passphrase: PASSPHRASE });
    expect(done.status, done.message).toBe('succeeded');
    await copy.sql(`DROP TABLE \`${schema}\`.kept`);
    expect(await schemaChecksums(copy.sql, schema)).toBe(await schemaChecksums(sourceSql, schema));
    const bad = await call('POST', '/v1/restores', { database: 'sealed', target: 'copy', overwrite: true, passphrase: 'two\nlines' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toContain('body.passphrase: holds more than one line');
    for (const text of [daemon?.output() ?? '', ...answers]) {
      expect(text).not.toContain(PASSPHRASE);
      expect(text).not.toContain('not the passphrase');
    }
  });

  it('refuses an identity that is not one (400 naming the field, never quoting it)', async () => {
    const notAKey = `AGE-SECRET-KEY-1${'Q'.repeat(58)}`;
    for (const [identity, message] of [
      [notAKey, "body.identity: line 1: the key's checksum does not match"],
      ['# only a comment\n', 'body.identity: holds no age identity'],
      [`${given.secret.slice(0, -1)}b`, 'body.identity: line 1: a character that cannot occur in an age key'],
      [given.recipient, 'body.identity: line 1 is not an age identity'],
    ] as const) {
      const bad = await call('POST', '/v1/restores', { database: 'keyless', target: 'copy', overwrite: true, identity });
      expect(bad.status).toBe(400);
      expect(bad.json.error).toContain(message);
      expect(bad.text).not.toContain(identity.trim());
    }
  });

  it('restores from another bucket given in the request with the identity of the request', async () => {
    const bucket = uniqueName('bkt');
    const endpoint = inject('s3').endpoint;
    await createS3Bucket(endpoint, bucket);
    const other = join(dir, 'other.yaml');
    await writeFile(
      other,
      [
        'storage:',
        '  type: s3',
        `  bucket: ${bucket}`,
        `  endpoint: ${endpoint}`,
        '  force_path_style: true',
        '  access_key_id: S3RVER',
        '  secret_access_key: S3RVER',
        '  checksum: when_required',
        `encryption: { recipients: [${given.recipient}] }`,
        'databases:',
        '  - name: elsewhere',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '',
      ].join('\n'),
    );
    const made = await agent(['--config', other, 'run-now', '--local'], sourceEnv());
    expect(made.exitCode, made.stderr).toBe(0);
    const source = { url: `s3://${bucket}`, endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER', options: { checksum: 'when_required', delimiter_listing: false } };
    const done = await restore({ database: 'elsewhere', target: 'copy', overwrite: true, source, identity: given.text });
    expect(done.status, done.message).toBe('succeeded');
    expect(await schemaChecksums(copy.sql, schema)).toBe(await schemaChecksums(sourceSql, schema));
  });

  it('never shows an identity: not in the log, answers, job listings or argv; its file was 0600 and is gone', async () => {
    answers.push((await call('GET', '/v1/restores')).text, (await call('GET', '/v1/jobs')).text);
    const argvs = await Promise.all((await readdir(record)).filter((f) => f.startsWith('age-argv.')).map((f) => readFile(join(record, f), 'utf8')));
    const modes = await Promise.all((await readdir(record)).filter((f) => f.startsWith('age-identity.')).map((f) => readFile(join(record, f), 'utf8')));
    // age read the request's identities through the daemon's descriptor of an unlinked 0600 file.
    expect(argvs.filter((a) => /^--decrypt\n--identity\n\/proc\/\d+\/fd\/\d+\n$/.test(a)).length).toBeGreaterThanOrEqual(3);
    expect(modes.length).toBeGreaterThan(0);
    for (const mode of modes) expect(mode.trim()).toBe('600');
    for (const key of [given, wrong]) {
      const secret = key.secret.slice('AGE-SECRET-KEY-1'.length);
      expect(secret.length).toBe(58);
      for (const text of [daemon?.output() ?? '', ...answers, ...argvs]) expect(text).not.toContain(secret);
    }
    // Nothing of the request's identities (nor any other private file of the agent) is left in the daemon's temporary directory.
    expect((await readdir(tmp)).filter((name) => name.startsWith('backup-agent-'))).toEqual([]);
  });
});
