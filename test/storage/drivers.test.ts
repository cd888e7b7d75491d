// The storage contract against every driver: the in-memory fake, a local directory, S3 (s3rver)
// and GCS (the firebase-tools emulator), the remote ones built the way the agent builds them.
import { mkdir, readdir, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { Storage } from '@google-cloud/storage';
import { describe, expect, inject, it } from 'vitest';
import type { GcsStorageConfig, S3StorageConfig } from '../../src/config/schema.ts';
import { Secret } from '../../src/config/secret.ts';
import { Readable } from 'node:stream';
import { StorageNotFoundError, type StorageDriver } from '../../src/storage/driver.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { openStorage } from '../../src/storage/open.ts';
import { S3Driver } from '../../src/storage/s3.ts';
import { startFaultProxy } from '../harness/fault-proxy.ts';
import { createS3Bucket, s3Client } from '../harness/s3-server.ts';
import { testDir, uniqueName } from '../helpers.ts';
import { bodyOf, generatedBody, listAll, prefixesOf, readAll, storageContract, type ContractSubject } from './contract.ts';

const MiB = 1024 * 1024;

function s3Config(bucket: string): S3StorageConfig {
  return {
    type: 's3',
    bucket,
    prefix: 'some/prefix',
    endpoint: inject('s3').endpoint,
    force_path_style: true,
    access_key_id: new Secret('S3RVER'),
    secret_access_key: new Secret('S3RVER'),
    checksum: 'when_required',
    conditional_writes: false, // s3rver ignores If-None-Match/If-Match
    delimiter_listing: false, // s3rver misses directories that hold only directories
    part_size_mb: 5,
    upload_concurrency: 2,
    region: 'us-east-1',
  };
}

function gcsConfig(bucket: string): GcsStorageConfig {
  // The emulator ignores generation preconditions.
  return { type: 'gcs', bucket, prefix: 'p', endpoint: inject('gcs').endpoint, project_id: 'test', conditional_writes: false };
}

async function s3Storage(): Promise<{ driver: StorageDriver; bucket: string }> {
  const bucket = uniqueName('bkt');
  await createS3Bucket(inject('s3').endpoint, bucket);
  return { driver: await openStorage(s3Config(bucket)), bucket };
}

/** Every file under `dir`, relative, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => `${e.parentPath}/${e.name}`.slice(dir.length + 1)).sort();
}

storageContract('memory', async () => ({ driver: new MemoryDriver() }));

storageContract('local', async () => ({ driver: new LocalDriver(await testDir('local-contract')) }));

/** The remote stores are reached through a proxy that counts their HTTP requests. */
async function behindProxy(endpoint: string, open: (endpoint: string) => Promise<StorageDriver>): Promise<ContractSubject> {
  const proxy = await startFaultProxy({ upstreamPort: Number(new URL(endpoint).port) });
  const driver = await open(`http://127.0.0.1:${proxy.port}`);
  return { driver, requests: () => proxy.requests, cleanup: () => proxy.close() };
}

storageContract(
  's3 (s3rver)',
  async () => {
    const bucket = uniqueName('bkt');
    await createS3Bucket(inject('s3').endpoint, bucket);
    return behindProxy(inject('s3').endpoint, (endpoint) => openStorage({ ...s3Config(bucket), endpoint }));
  },
  { listsByDirectoryWalk: true },
);

storageContract('gcs (emulator)', async () => behindProxy(inject('gcs').endpoint, (endpoint) => openStorage({ ...gcsConfig(uniqueName('bkt')), endpoint })));

describe('LocalDriver only', () => {
  it('leaves no *.partial file after a successful put', async () => {
    const root = await testDir('local-partial-ok');
    const driver = new LocalDriver(root);
    await driver.put('db/id/dump.sql', generatedBody(3 * MiB).stream);
    await driver.put('db/id/manifest.json', bodyOf('{}'));
    expect(await filesUnder(root)).toEqual(['db/id/dump.sql', 'db/id/manifest.json']);
  });

  it('leaves no *.partial file (and no object) after a failed put', async () => {
    const root = await testDir('local-partial-failed');
    const driver = new LocalDriver(root);
    await expect(driver.put('db/id/dump.sql', generatedBody(8 * MiB, { failAt: 2 * MiB }).stream)).rejects.toThrow(
      'source failed on purpose',
    );
    const controller = new AbortController();
    const cancelled = generatedBody(8 * MiB, { onBytes: (n) => n >= MiB && controller.abort() });
    await expect(driver.put('db/id/other.sql', cancelled.stream, { signal: controller.signal })).rejects.toMatchObject({
      name: 'AbortError',
    });
    expect(await filesUnder(root)).toEqual([]);
    expect(await listAll(driver, '')).toEqual([]);
  });

  it('stores objects as plain files under its root (keys map to paths)', async () => {
    const root = await testDir('local-layout');
    const driver = new LocalDriver(root);
    await driver.put('a/b/c.txt', bodyOf('abc'));
    expect(driver.location).toBe(root);
    expect(await filesUnder(root)).toEqual(['a/b/c.txt']);
    await driver.delete('a/b/c.txt');
    // Directories emptied by the delete are removed, so the root stays tidy.
    expect(await readdir(root)).toEqual([]);
  });
});

describe('S3 prefix (raw SDK client)', () => {
  it('puts objects under prefix/ in the bucket', async () => {
    const { driver, bucket } = await s3Storage();
    const client = s3Client(inject('s3').endpoint);
    try {
      await driver.put('db/x.txt', bodyOf('under the prefix'));
      expect(driver.location).toBe(`s3://${bucket}/some/prefix`);
      const got = await client.send(new GetObjectCommand({ Bucket: bucket, Key: 'some/prefix/db/x.txt' }));
      expect((await readAll(got.Body as AsyncIterable<Uint8Array>)).toString()).toBe('under the prefix');
      const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
      expect((listed.Contents ?? []).map((o) => o.Key)).toEqual(['some/prefix/db/x.txt']);
      // …and keys come back relative to the prefix.
      expect((await listAll(driver, 'db/')).map((o) => o.key)).toEqual(['db/x.txt']);
    } finally {
      client.destroy();
      await driver.close();
    }
  });
});

describe('S3 delimiter listing (s3rver, pages of 2)', () => {
  it('lists CommonPrefixes, and a caller that stops early stops the requests', async () => {
    const bucket = uniqueName('bkt');
    await createS3Bucket(inject('s3').endpoint, bucket);
    const client = s3Client(inject('s3').endpoint);
    let listRequests = 0;
    // A counting double around the real client that asks for pages of 2, so paging is exercised cheaply.
    const counting = {
      config: client.config,
      send: ((command: unknown, options?: unknown) => {
        if (command instanceof ListObjectsV2Command) {
          command.input.MaxKeys = 2;
          listRequests++;
        }
        return (client.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
      }) as S3Client['send'],
    };
    const driver = new S3Driver(counting, { bucket, partSizeBytes: 5 * MiB, queueSize: 1, conditionalWrites: false });
    try {
      expect(driver.delimiterListing).toBe(true);
      for (const key of ['db/e/1', 'db/a/1', 'db/c/2', 'db/b/1', 'db/c/1', 'db/g/1', 'db/top.json', 'db/a/2', 'db/a/3']) await driver.put(key, bodyOf(key));
      expect(await prefixesOf(driver, 'db/')).toEqual(['db/a/', 'db/b/', 'db/c/', 'db/e/', 'db/g/']);
      // s3rver does not count CommonPrefixes against MaxKeys (AWS does): one page here.
      listRequests = 0;
      for await (const dir of driver.listPrefixes('db/')) {
        expect(dir).toBe('db/a/');
        break;
      }
      expect(listRequests).toBe(1);
      listRequests = 0;
      for await (const info of driver.list('db/')) {
        expect(info.key).toBe('db/a/1');
        break;
      }
      expect(listRequests).toBe(1);
    } finally {
      client.destroy();
    }
  });
});

describe('GCS prefix (raw SDK client)', () => {
  it('puts objects under prefix/ in the bucket', async () => {
    const bucket = uniqueName('bkt');
    const driver = await openStorage(gcsConfig(bucket));
    await driver.put('db/x.txt', bodyOf('under the prefix'));
    expect(driver.location).toBe(`gs://${bucket}/p`);
    const raw = new Storage({ apiEndpoint: inject('gcs').endpoint, projectId: 'test' }).bucket(bucket);
    const [content] = await raw.file('p/db/x.txt').download();
    expect(content.toString()).toBe('under the prefix');
    const [files] = await raw.getFiles();
    expect(files.map((f) => f.name)).toEqual(['p/db/x.txt']);
    expect((await listAll(driver, 'db/')).map((o) => o.key)).toEqual(['db/x.txt']);
  });
});

describe('LocalDriver: keys that name a directory of other keys', () => {
  it('get and stat say not found, delete succeeds and keeps the objects below', async () => {
    const driver = new LocalDriver(await testDir('local-dirkey'));
    await driver.put('x/dir/obj', Readable.from([Buffer.from('data')]));
    await expect(driver.get('x/dir')).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(await driver.stat('x/dir')).toBeUndefined();
    await driver.delete('x/dir');
    expect(await driver.stat('x/dir/obj')).toMatchObject({ size: 4 });
  });

  it('listPrefixes counts a directory only if it holds an object, not a temp file or empty directories', async () => {
    const root = await testDir('local-prefixes');
    const driver = new LocalDriver(root);
    await driver.put('db/a/manifest.json', bodyOf('{}'));
    await mkdir(join(root, 'db', 'b-crashed', 'sub'), { recursive: true });
    await mkdir(join(root, 'db', 'c-running'), { recursive: true });
    await writeFile(join(root, 'db', 'c-running', 'dump.sql.0123456789ab.partial'), 'in flight');
    expect(await prefixesOf(driver, 'db/')).toEqual(['db/a/']);
    expect(await prefixesOf(new LocalDriver(join(root, 'missing')), 'db/')).toEqual([]);
  });

  it('list walks lazily in key order: a directory past a bounded read-ahead is read only when the walk nears it', async () => {
    // The walk runs a bounded number of objects ahead of the caller (as an S3 listing fetches a
    // page ahead), never the whole tree at once: 8 here, and 80 directories stand between the
    // walk and db/z.
    const driver = new LocalDriver(await testDir('local-lazy'), { listReadAhead: 8, workerAfter: 0 });
    const between = Array.from({ length: 80 }, (_, i) => `db/m${String(i).padStart(2, '0')}/x`);
    for (const key of ['db/1/a', 'db/1/b', ...between, 'db/z/b']) await driver.put(key, bodyOf(key));
    const seen: string[] = [];
    for await (const info of driver.list('db/')) {
      seen.push(info.key);
      if (info.key === 'db/1/a') {
        await driver.put('db/0/a', bodyOf('behind the walk'));
        await driver.put('db/z/a', bodyOf('in a directory the walk has not read yet'));
      }
    }
    expect(seen).toEqual(['db/1/a', 'db/1/b', ...between, 'db/z/a', 'db/z/b']);
  });

  it('a listing stopped early or aborted leaves the walk worker serving the next listing and get', async () => {
    const driver = new LocalDriver(await testDir('local-worker-reuse'), { listReadAhead: 4, workerAfter: 0 });
    const keys = Array.from({ length: 30 }, (_, i) => `db/${String(i).padStart(2, '0')}/x`);
    for (const key of keys) await driver.put(key, bodyOf(key));
    for await (const info of driver.list('db/')) if (info.key === keys[2]) break;
    const controller = new AbortController();
    const aborted = (async () => {
      for await (const info of driver.list('db/', { signal: controller.signal })) if (info.key === keys[5]) controller.abort();
    })();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    expect((await listAll(driver, 'db/')).map((o) => o.key)).toEqual(keys);
    expect((await readAll(await driver.get(keys[7] as string))).toString()).toBe(keys[7]);
    await driver.close();
    // A closed driver's next call starts a worker again.
    expect((await listAll(driver, 'db/')).length).toBe(30);
    await driver.close();
  });

  it.each([0, 1, 3, 7, 12, 100])('a listing handed from the main thread to the worker after %i objects lists every key once, in order', async (workerAfter) => {
    const root = await testDir('local-handoff');
    const keys = ['a/0', 'a/1/x', 'a/1/y/z', 'a/1-b', 'a/2/p/q/r', 'a/2/p/s', 'a/20', 'a/3/t', 'a/3/u', 'a/4'];
    for (const key of keys) await new LocalDriver(root).put(key, bodyOf(key));
    await writeFile(join(root, 'a', '3', 't.0123456789ab.partial'), 'in flight');
    const driver = new LocalDriver(root, { workerAfter, listReadAhead: 2 });
    expect((await listAll(driver, 'a/')).map((o) => o.key)).toEqual([...keys].sort());
    await driver.close();
  });

  it('lists a key that merely ends in .partial; only its own temp files are hidden', async () => {
    const driver = new LocalDriver(await testDir('local-partial'));
    await driver.put('a/notes.partial', Readable.from([Buffer.from('kept')]));
    const keys: string[] = [];
    for await (const info of driver.list('a/')) keys.push(info.key);
    expect(keys).toEqual(['a/notes.partial']);
  });
});

describe('LocalDriver: directories and roots', () => {
  it('a failed put leaves no empty directory behind; delete of a missing key tidies one up', async () => {
    const root = await testDir('local-empty-dirs');
    const driver = new LocalDriver(root);
    await driver.put('keep/x', bodyOf('x'));
    await expect(driver.put('db/20260101T000000.000Z-aaaaaa/dump.sql', generatedBody(2 * MiB, { failAt: MiB }).stream)).rejects.toThrow('source failed on purpose');
    expect(await readdir(root)).toEqual(['keep']);
    // A directory a crashed writer left (no file in it): a delete of the key removes it.
    await mkdir(join(root, 'db', '20260101T000000.000Z-bbbbbb'), { recursive: true });
    await driver.delete('db/20260101T000000.000Z-bbbbbb/dump.sql');
    expect(await readdir(root)).toEqual(['keep']);
  });

  it('abortIncompleteUploads removes old temp files and empty directories, sparing what it is told to', async () => {
    const root = await testDir('local-abort');
    const driver = new LocalDriver(root);
    const old = new Date('2026-01-01T00:00:00Z');
    for (const dir of ['db/a-crashed/sub', 'db/b-running', 'db/c-fresh']) await mkdir(join(root, dir), { recursive: true });
    await writeFile(join(root, 'db/b-running/dump.sql.0123456789ab.partial'), 'running');
    for (const path of ['db/a-crashed/sub', 'db/a-crashed', 'db/b-running/dump.sql.0123456789ab.partial', 'db/b-running']) await utimes(join(root, path), old, old);
    const removed = await driver.abortIncompleteUploads('db/', new Date('2026-06-01T00:00:00Z'), (key) => key.startsWith('db/b-running/'));
    expect(removed.sort()).toEqual(['db/a-crashed/', 'db/a-crashed/sub/']);
    expect((await readdir(join(root, 'db'))).sort()).toEqual(['b-running', 'c-fresh']);
  });

  it('a storage path that is a regular file: list fails, never "no objects"', async () => {
    const file = join(await testDir('local-file-root'), 'not-a-dir');
    await writeFile(file, 'x');
    const driver = new LocalDriver(file);
    await expect(listAll(driver, 'db/')).rejects.toMatchObject({ code: 'ENOTDIR' });
    await expect(driver.put('db/x', bodyOf('x'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it('a storage path the kernel cannot create (under /proc) fails at once instead of spinning', async () => {
    const driver = new LocalDriver('/proc/backup-agent-test/x');
    // Node's recursive mkdir loops forever here; this put must reject (the test would time out).
    await expect(driver.put('db/20260101T000000.000Z-aaaaaa/dump.sql', bodyOf('x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(driver.putIfAbsent('db/leases/x.json', Buffer.from('x'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(listAll(driver, 'db/')).resolves.toEqual([]);
  });
});
