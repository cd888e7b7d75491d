// The retrying decorator (src/storage/retry.ts) around real stores behind a fault-injecting
// proxy: answers the proxy makes up (503, 429, 403), connections it resets, and requests it lets
// through but whose answer it loses. Each case counts the HTTP requests that reached the proxy.
import { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import type { S3StorageConfig } from '../../src/config/schema.ts';
import { Secret } from '../../src/config/secret.ts';
import { commitManifest, listBackups, readManifest } from '../../src/catalog/catalog.ts';
import { bufferBody } from '../../src/storage/buffer-body.ts';
import { StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver } from '../../src/storage/driver.ts';
import { ForwardingDriver } from '../../src/storage/forwarding.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { openStorage } from '../../src/storage/open.ts';
import { RetryingDriver, type RetryReport } from '../../src/storage/retry.ts';
import { generateCatalog } from '../harness/catalog-generator.ts';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { uniqueName } from '../helpers.ts';
import { listAll, readAll } from './contract.ts';

function s3Config(bucket: string, endpoint: string): S3StorageConfig {
  return {
    type: 's3',
    bucket,
    prefix: 'retry',
    endpoint,
    force_path_style: true,
    access_key_id: new Secret('S3RVER'),
    secret_access_key: new Secret('S3RVER'),
    checksum: 'when_required',
    conditional_writes: false,
    delimiter_listing: false,
    part_size_mb: 5,
    upload_concurrency: 1,
    region: 'us-east-1',
  };
}

/** Waits of a few milliseconds: the cases count attempts, they do not time them. */
const FAST = { attempts: 5, baseDelayMs: 5, maxDelayMs: 20 };

describe('RetryingDriver around S3 (s3rver behind a fault proxy)', () => {
  let proxy: FaultProxy;
  let config: S3StorageConfig;
  let driver: StorageDriver;
  let retries: RetryReport[] = [];
  /** Requests that reach the proxy while `work` runs. */
  const requestsDuring = async <T>(work: () => Promise<T>): Promise<{ result: T; requests: number }> => {
    const before = proxy.requests;
    const result = await work();
    return { result, requests: proxy.requests - before };
  };

  beforeAll(async () => {
    const bucket = uniqueName('bkt');
    await createS3Bucket(inject('s3').endpoint, bucket);
    proxy = await startFaultProxy({ upstreamPort: Number(new URL(inject('s3').endpoint).port) });
    config = s3Config(bucket, `http://127.0.0.1:${proxy.port}`);
    driver = await openStorage(config, { policy: FAST, onRetry: (report) => retries.push(report) });
  });

  afterAll(async () => {
    await driver?.close();
    await proxy?.close();
  });

  beforeEach(() => {
    retries = [];
    proxy.failRequests({ count: 0, action: 503 });
  });

  it('a request answered 503 twice succeeds on the third attempt', async () => {
    const key = `${uniqueName('s503')}/obj`;
    await driver.put(key, bufferBody('three attempts'));
    proxy.failRequests({ count: 2, method: 'HEAD', action: 503 });
    const { result, requests } = await requestsDuring(() => driver.stat(key));
    expect(result).toMatchObject({ key, size: 14 });
    expect(requests).toBe(3);
    expect(retries.map((r) => [r.method, r.attempt])).toEqual([
      ['stat', 1],
      ['stat', 2],
    ]);
  });

  it('reset connections and 429 throttling are retried', async () => {
    const key = `${uniqueName('reset')}/lease.json`;
    await driver.put(key, bufferBody('{"n":1}'));
    proxy.failRequests({ count: 2, method: 'GET', action: 'reset' });
    const { result, requests } = await requestsDuring(() => driver.getVersioned(key));
    expect(result?.data.toString()).toBe('{"n":1}');
    expect(requests).toBe(3);
    proxy.failRequests({ count: 1, method: 'GET', action: 429 });
    const listed = await requestsDuring(() => listAll(driver, key));
    expect(listed.result.map((o) => o.key)).toEqual([key]);
    expect(listed.requests).toBe(2);
  });

  it('gives up after the policy attempts with the last error', async () => {
    const key = `${uniqueName('give-up')}/obj`;
    proxy.failRequests({ count: 100, method: 'HEAD', action: 503 });
    const err: unknown = await driver.stat(key).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 503 } });
    expect(retries).toHaveLength(FAST.attempts - 1);
    expect(proxy.pendingFaults).toBe(100 - FAST.attempts);
  });

  it('a permanent error (403, 404) is not retried', async () => {
    const key = `${uniqueName('perm')}/obj`;
    await driver.put(key, bufferBody('x'));
    proxy.failRequests({ count: 1, method: 'HEAD', action: 403 });
    const denied = requestsDuring(() => driver.stat(key));
    await expect(denied).rejects.toMatchObject({ $metadata: { httpStatusCode: 403 } });
    const before = proxy.requests;
    await expect(driver.get(`${uniqueName('missing')}/obj`)).rejects.toBeInstanceOf(StorageNotFoundError);
    expect(proxy.requests - before).toBe(1);
    expect(retries).toEqual([]);
    expect(proxy.pendingFaults).toBe(0);
  });

  it('an aborted signal stops the retries at once, mid-wait', async () => {
    const patient = await openStorage(config, { policy: { attempts: 10, baseDelayMs: 60_000, maxDelayMs: 60_000 }, onRetry: () => controller.abort() });
    const controller = new AbortController();
    try {
      proxy.failRequests({ count: 100, method: 'HEAD', action: 503 });
      const before = proxy.requests;
      await expect(patient.stat(`${uniqueName('abort')}/obj`, { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
      expect(proxy.requests - before).toBe(1); // the 60 s wait was cut short, nothing more was sent
      await expect(driver.stat('x/y', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
      expect(proxy.requests - before).toBe(1);
    } finally {
      await patient.close();
    }
  });

  it('small and streamed puts survive a 503 (the buffered request is sent again, never the stream)', async () => {
    const small = `${uniqueName('put')}/manifest.json`;
    proxy.failRequests({ count: 2, method: 'PUT', action: 503 });
    await expect(driver.put(small, bufferBody('{"ok":true}'))).resolves.toEqual({ size: 11 });
    expect((await readAll(await driver.get(small))).toString()).toBe('{"ok":true}');
    const streamed = `${uniqueName('put')}/dump.sql`;
    let reads = 0;
    const body = Readable.from(
      (async function* () {
        reads++;
        yield Buffer.from('-- one pass over the source\n');
      })(),
      { objectMode: false },
    );
    proxy.failRequests({ count: 1, method: 'PUT', action: 'reset' });
    await expect(driver.put(streamed, body)).resolves.toEqual({ size: 28 });
    expect(reads).toBe(1);
    expect((await readAll(await driver.get(streamed))).toString()).toBe('-- one pass over the source\n');
  });

  it('a conditional write whose answer was lost is read back: it was applied, so it is ours', async () => {
    const key = `${uniqueName('ambiguous')}/lease.json`;
    proxy.failRequests({ count: 1, method: 'PUT', action: 'lose-answer' });
    const v1 = await driver.putIfAbsent(key, Buffer.from('{"owner":"me","n":1}'));
    expect(v1).toEqual(expect.any(String));
    expect(retries.map((r) => r.method)).toEqual(['putIfAbsent']);
    expect(await driver.getVersioned(key)).toEqual({ data: Buffer.from('{"owner":"me","n":1}'), version: v1 });
    expect(await driver.putIfAbsent(key, Buffer.from('{"owner":"other"}'))).toBeUndefined();

    proxy.failRequests({ count: 1, method: 'PUT', action: 'lose-answer' });
    const v2 = await driver.putIfMatch(key, Buffer.from('{"owner":"me","n":2}'), v1 ?? '');
    expect(v2).toEqual(expect.any(String));
    expect(v2).not.toBe(v1);
    expect((await driver.getVersioned(key))?.version).toBe(v2);

    proxy.failRequests({ count: 1, method: 'DELETE', action: 'lose-answer' });
    expect(await driver.deleteIfMatch(key, v2 ?? '')).toBe(true);
    expect(await driver.stat(key)).toBeUndefined();
    expect(retries.map((r) => r.method)).toEqual(['putIfAbsent', 'putIfMatch', 'deleteIfMatch']);
  });
});

describe('RetryingDriver around GCS (the emulator behind a fault proxy)', () => {
  /** Runs `work` against a fresh bucket of the GCS emulator behind a fault proxy, closing both after. */
  async function behindProxy(work: (gcs: StorageDriver, proxy: FaultProxy, retries: RetryReport[]) => Promise<void>): Promise<void> {
    const proxy = await startFaultProxy({ upstreamPort: Number(new URL(inject('gcs').endpoint).port) });
    const retries: RetryReport[] = [];
    const gcs = await openStorage(
      { type: 'gcs', bucket: uniqueName('bkt'), prefix: 'retry', endpoint: `http://127.0.0.1:${proxy.port}`, project_id: 'test', conditional_writes: false },
      { policy: FAST, onRetry: (report) => retries.push(report) },
    );
    try {
      await work(gcs, proxy, retries);
    } finally {
      await gcs.close();
      await proxy.close();
    }
  }

  it('a 503 and a reset connection are retried; a missing object is not', async () => {
    await behindProxy(async (gcs, proxy, retries) => {
      await gcs.put('db/manifest.json', bufferBody('{"gcs":true}'));
      proxy.failRequests({ count: 1, method: 'GET', action: 503 });
      expect((await gcs.stat('db/manifest.json'))?.size).toBe(12);
      proxy.failRequests({ count: 1, method: 'GET', action: 'reset' });
      expect((await listAll(gcs, 'db/')).map((o) => o.key)).toEqual(['db/manifest.json']);
      expect(retries.map((r) => r.method)).toEqual(['stat', 'list']);
      const before = proxy.requests;
      await expect(gcs.stat('db/missing.json')).resolves.toBeUndefined();
      expect(proxy.requests - before).toBe(1);
    });
  });

  it('a manifest commit survives a 503 on its upload (its bytes are sent again)', async () => {
    await behindProxy(async (gcs, proxy, retries) => {
      const memory = new MemoryDriver();
      await generateCatalog(memory, 'db', 1);
      const [manifest] = (await listBackups(memory, 'db')).backups;
      if (!manifest) throw new Error('the generated catalog has no backup');
      proxy.failRequests({ count: 1, method: 'POST', action: 503 });
      await commitManifest(gcs, manifest);
      expect(retries.map((r) => r.method)).toEqual(['put']);
      expect(await readManifest(gcs, 'db', manifest.id)).toEqual(manifest);
    });
  });
});

/** A store whose listing breaks after two keys the first time, and whose put reads its body, then fails. */
class Flaky extends ForwardingDriver {
  listFailures = 1;
  putCalls = 0;
  putFailures = 1;

  override async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let n = 0;
    for await (const info of super.list(prefix)) {
      if (n++ === 2 && this.listFailures-- > 0) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      yield info;
    }
  }

  override async put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    this.putCalls++;
    if (this.putFailures-- > 0) {
      await readAll(body); // the body is consumed, then the connection drops
      throw Object.assign(new Error('write EPIPE'), { code: 'EPIPE' });
    }
    return super.put(key, body, options);
  }
}

describe('RetryingDriver (its own logic, over the memory store)', () => {
  it('a listing that breaks midway resumes after the last key it yielded: none twice, none lost', async () => {
    const memory = new MemoryDriver();
    for (const k of ['a', 'b', 'c', 'd', 'e']) await memory.put(`db/${k}`, bufferBody(k));
    const flaky = new Flaky(memory);
    const retrying = new RetryingDriver(flaky, { policy: FAST });
    expect((await listAll(retrying, 'db/')).map((o) => o.key)).toEqual(['db/a', 'db/b', 'db/c', 'db/d', 'db/e']);
    expect(flaky.listFailures).toBe(-1); // it did fail once (and once only)
  });

  it('replays a BufferBody after a failed put, never a stream the store already read', async () => {
    const streamed = new Flaky(new MemoryDriver());
    const retrying = new RetryingDriver(streamed, { policy: FAST });
    await expect(retrying.put('db/dump.sql', Readable.from([Buffer.from('once')]))).rejects.toMatchObject({ code: 'EPIPE' });
    expect(streamed.putCalls).toBe(1);
    const buffered = new Flaky(new MemoryDriver());
    await expect(new RetryingDriver(buffered, { policy: FAST }).put('db/m.json', bufferBody('{"again":1}'))).resolves.toEqual({ size: 11 });
    expect(buffered.putCalls).toBe(2);
    expect((await readAll(await buffered.get('db/m.json'))).toString()).toBe('{"again":1}');
  });
});
