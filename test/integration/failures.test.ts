// Failure paths with real parts: a dump tool that fails after writing output (a real fixture
// script), a wrong password, a storage endpoint that is down or rejects credentials. Each must
// give a clear error and exit code, leave no manifest and no partial object behind.
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { mkdir, readdir, readFile, stat, symlink } from 'node:fs/promises';
import { execa } from 'execa';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { createS3Bucket, s3Client, startS3Server } from '../harness/s3-server.ts';
import {
  agent,
  AGENT,
  fixtureWith,
  FIXTURES,
  sourceConnectionYaml,
  sourceEnv,
  sourceSql,
  storageYaml,
  testDir,
  uniqueName,
  writeConfig,
  type StorageKind,
} from '../helpers.ts';

const schema = uniqueName('fail').replace('-', '_');
beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 200));
});

/** Every object key in the storage a config's YAML points at, read with the store's own client. */
async function objectsIn(kind: StorageKind, storage: string): Promise<string[]> {
  const field = (name: string) => new RegExp(`^\\s*${name}: (.*)$`, 'm').exec(storage)?.[1] ?? '';
  if (kind === 'local') {
    const root = field('path');
    return (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
  }
  if (kind === 's3') {
    const client = s3Client(inject('s3').endpoint);
    try {
      const out = await client.send(new ListObjectsV2Command({ Bucket: field('bucket') }));
      return (out.Contents ?? []).map((o) => o.Key ?? '');
    } finally {
      client.destroy();
    }
  }
  const [files] = await new Storage({ apiEndpoint: inject('gcs').endpoint, projectId: 'test' }).bucket(field('bucket')).getFiles();
  return files.map((f) => f.name);
}

async function setup(kind: StorageKind, extra: string[] = [], storage?: string) {
  const dir = await testDir(`fail-${kind}`);
  const storageBlock = storage ?? (await storageYaml(kind));
  const config = await writeConfig(
    dir,
    ['storage:', storageBlock, ...extra, 'databases:', '  - name: source', sourceConnectionYaml(), `    schemas: [${schema}]`, ''].join('\n'),
  );
  return { config, storageBlock };
}

describe.each<StorageKind>(['local', 's3', 'gcs'])('a dump tool failing mid-stream, %s storage', (kind) => {
  it('fails with the tool stderr and exit code, and leaves no manifest and no object', async () => {
    const { config, storageBlock } = await setup(kind, ['tools:', `  dump: ${join(FIXTURES, 'failing-dump.sh')}`]);
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: source: dump database source: failing-dump.sh exited with code 2');
    expect(result.stderr).toContain('Lost connection to server during query when dumping table `orders` at row: 4242');
    expect(await objectsIn(kind, storageBlock)).toEqual([]);

    const listed = await agent(['--config', config, 'list', '--json'], sourceEnv());
    expect(listed.exitCode).toBe(0);
    expect(JSON.parse(listed.stdout)).toEqual([]);
  });
});

describe('the zstd command failing mid-stream', () => {
  it('fails naming zstd and its stderr, not the store, and leaves no manifest and no object', async () => {
    const { config, storageBlock } = await setup('local', ['compression: { algorithm: zstd, level: 1 }']);
    // A `zstd` first on PATH that exits 1 after reading a little: the agent picks it as the CLI.
    const bin = join(dirname(config), 'bin');
    await mkdir(bin, { recursive: true });
    await symlink(join(FIXTURES, 'failing-zstd.sh'), join(bin, 'zstd'));
    const result = await agent(['--config', config, 'run-now'], { ...sourceEnv(), PATH: `${bin}:${process.env['PATH'] ?? ''}`, AGENT_ZSTD: 'cli' });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: source: compress backup of source: zstd exited with code 1: zstd: error 70 : Write error');
    expect(result.stderr).toContain('hint: the zstd command failed');
    expect(await objectsIn('local', storageBlock)).toEqual([]);
  });
});

describe('a wrong database password', () => {
  it('fails with the server error and a hint, before anything is stored', async () => {
    const { config, storageBlock } = await setup('local');
    const result = await agent(['--config', config, 'run-now'], { SOURCE_DB_PASSWORD: 'wrong-password' });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/error: source: connect to database source \(127\.0\.0\.1:\d+\): Access denied for user 'agent'@'127\.0\.0\.1'/);
    expect(result.stderr).toContain('hint: check user and password');
    expect(result.stderr).not.toContain('wrong-password');
    expect(await objectsIn('local', storageBlock).catch(() => [])).toEqual([]);
  });
});

describe('storage failures', () => {
  it('an S3 endpoint that is down: clear error, exit 1, the dump tool is stopped', async () => {
    const port = await freePort();
    const storage = [
      '  type: s3',
      '  bucket: nowhere',
      `  endpoint: http://127.0.0.1:${port}`,
      '  force_path_style: true',
      '  access_key_id: S3RVER',
      '  secret_access_key: S3RVER',
      '  checksum: when_required',
    ].join('\n');
    const { config } = await setup('s3', ['tools:', `  dump: ${join(FIXTURES, 'hanging-dump.sh')}`], storage);
    const started = Date.now();
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode).toBe(1);
    // Checked before the dump starts: a multi-hour dump must not run into a dead store.
    expect(result.stderr).toMatch(/error: source: reach storage s3:\/\/nowhere of database source: .*ECONNREFUSED/);
    expect(result.stderr).toContain('hint: the storage endpoint cannot be reached');
    expect(Date.now() - started).toBeLessThan(60_000);
  });

  it('an S3 store that goes down mid-upload: the dump tool is killed, the error names the store', async () => {
    const dir = await testDir('s3-dies');
    const server = await startS3Server({ dir: join(dir, 'data'), runDir: join(dir, 'run') });
    try {
      await createS3Bucket(server.endpoint, 'dies');
      const storage = ['type: s3', 'bucket: dies', `endpoint: ${server.endpoint}`, 'force_path_style: true', 'access_key_id: S3RVER',
        'secret_access_key: S3RVER', 'checksum: when_required', 'part_size_mb: 5'].map((l) => `  ${l}`).join('\n');
      const endless = await fixtureWith(dir, join(FIXTURES, 'endless-dump.sh'), { RECORD_DIR: dir });
      const { config } = await setup('s3', ['tools:', `  dump: ${endless}`], storage);
      const running = agent(['--config', config, 'run-now'], sourceEnv());
      // Wait until the first multipart part has landed, then take the store away.
      const uploads = join(dir, 'data', 'dies', '._S3rver_uploads');
      for (let i = 0; i < 600 && (await readdir(uploads, { recursive: true }).catch(() => [])).length < 2; i++) await sleep(50);
      await server.stop();
      const result = await running;
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toMatch(/error: source: upload backup of source to s3:\/\/dies: .*ECONNREFUSED/);
      const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
      expect(() => process.kill(pid, 0)).toThrow(); // the endless tool is gone
    } finally {
      await server.stop();
    }
  });

  it('S3 credentials the store rejects: clear error, exit 1, nothing stored', async () => {
    const good = await storageYaml('s3');
    // s3rver does not verify SigV4 signatures, only that the access key id exists: an unknown key
    // id is the rejection it can produce (InvalidAccessKeyId, HTTP 403).
    const storage = good.replace('access_key_id: S3RVER', 'access_key_id: NOT-A-KEY').replace('secret_access_key: S3RVER', 'secret_access_key: not-the-secret');
    const { config } = await setup('s3', [], storage);
    const result = await agent(['--config', config, 'run-now'], sourceEnv());
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toMatch(/error: source: reach storage s3:\/\/bkt-[0-9a-f]+\/backups\/prod of database source: .*(SignatureDoesNotMatch|InvalidAccessKeyId|HTTP 403)/);
    expect(result.stderr).toContain('hint: the store rejected the credentials');
    expect(result.stderr).not.toContain('not-the-secret');
    expect(await objectsIn('s3', good)).toEqual([]);
  });
});

describe('cancellation', () => {
  it('SIGTERM during a backup kills the tool, removes the partial object and the credentials file', async () => {
    const dir = await testDir('sigterm');
    const endless = await fixtureWith(await testDir('sigterm-tool'), join(FIXTURES, 'endless-dump.sh'), { RECORD_DIR: dir });
    const { config, storageBlock } = await setup('local', ['tools:', `  dump: ${endless}`]);
    const child = execa(process.execPath, [AGENT, '--config', config, 'run-now'], {
      env: sourceEnv(),
      reject: false,
      stdin: 'ignore',
    });
    // Wait until the tool runs and data is flowing into the store.
    for (let i = 0; i < 400 && (await readdir(dir)).length < 2; i++) await sleep(25);
    await sleep(500);
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toContain('received SIGTERM: cancelling');
    expect(String(result.stderr)).toContain('error: source: backup of source cancelled');
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
    await expect(stat((await readFile(join(dir, 'defaults'), 'utf8')).trim())).rejects.toThrow(/ENOENT/);
    expect(await objectsIn('local', storageBlock)).toEqual([]);
  });

  it('a cancelled run-now names the databases it did not start, and fails', async () => {
    const dir = await testDir('cancel-rest');
    const endless = await fixtureWith(await testDir('cancel-rest-tool'), join(FIXTURES, 'endless-dump.sh'), { RECORD_DIR: dir });
    const config = await writeConfig(
      await testDir('cancel-rest-config'),
      ['storage:', await storageYaml('local'), 'tools:', `  dump: ${endless}`, 'databases:',
        ...['source', 'second'].flatMap((name) => [`  - name: ${name}`, sourceConnectionYaml(), `    schemas: [${schema}]`]), ''].join('\n'),
    );
    const child = execa(process.execPath, [AGENT, '--config', config, 'run-now'], { env: sourceEnv(), reject: false, stdin: 'ignore' });
    for (let i = 0; i < 400 && !(await readdir(dir)).includes('pid'); i++) await sleep(25);
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect(String(result.stderr)).toContain('error: source: backup of source cancelled');
    expect(String(result.stderr)).toContain('error: second: not started: cancelled by SIGTERM');
    expect(String(result.stderr)).toContain('error: 2 of 2 backups failed: source, second');
  });

  it('a second SIGTERM exits at once: the tool killed, the credentials file removed, exit 1', async () => {
    const dir = await testDir('second-sigterm');
    // A tool that ignores SIGTERM: the graceful cancel is still waiting for it when the second comes.
    const stubborn = await fixtureWith(await testDir('second-sigterm-tool'), join(FIXTURES, 'stubborn-dump.sh'), { RECORD_DIR: dir });
    const { config } = await setup('local', ['tools:', `  dump: ${stubborn}`]);
    const child = execa(process.execPath, [AGENT, '--config', config, 'run-now'], { env: sourceEnv(), reject: false, stdin: 'ignore', buffer: false });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    for (let i = 0; i < 400 && !(await readdir(dir)).includes('pid'); i++) await sleep(25);
    const defaults = (await readFile(join(dir, 'defaults'), 'utf8')).trim();
    const pid = Number(await readFile(join(dir, 'pid'), 'utf8'));
    child.kill('SIGTERM');
    for (let i = 0; i < 400 && !stderr.includes('received SIGTERM: cancelling'); i++) await sleep(25);
    await stat(defaults); // the first signal's cancel is still waiting for the tool
    child.kill('SIGTERM');
    const result = await child;
    expect(result.exitCode).toBe(1);
    expect(stderr).toContain('received SIGTERM again: exiting now');
    await expect(stat(dirname(defaults))).rejects.toThrow(/ENOENT/);
    // SIGKILLed: gone, or a zombie until its new parent reaps it.
    const state = () => readFile(`/proc/${pid}/stat`, 'utf8').then((text) => /\) (\S)/.exec(text)?.[1], () => 'gone');
    for (let i = 0; i < 200 && !['gone', 'Z'].includes((await state()) ?? ''); i++) await sleep(25);
    expect(['gone', 'Z']).toContain(await state());
  });
});
