// Conditional writes (putIfAbsent, putIfMatch, deleteIfMatch) on S3 and GCS. s3rver ignores
// If-None-Match/If-Match and the GCS emulator ignores ifGenerationMatch, so the request shapes run
// against small doubles of the SDK clients (named as such): they answer conditional requests the
// way the real services document them (412 Precondition Failed, 404 for a missing object).
import type { Bucket } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { GcsDriver } from '../../src/storage/gcs.ts';
import { S3Driver, type S3Like } from '../../src/storage/s3.ts';

/** A named double of the S3 client: answers conditional PutObject/DeleteObject/GetObject as AWS documents. */
function s3ClientDouble(): { client: S3Like; requests: Record<string, unknown>[] } {
  const objects = new Map<string, { data: Buffer; etag: string }>();
  let etags = 0;
  const requests: Record<string, unknown>[] = [];
  const fail = (status: number, name: string) =>
    Object.assign(new Error(`${name}: the precondition did not hold`), { name, $metadata: { httpStatusCode: status } });
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    requests.push({ command: command.constructor.name, ...command.input, Body: undefined });
    const key = String(command.input['Key']);
    const found = objects.get(key);
    const ifMatch = command.input['IfMatch'];
    switch (command.constructor.name) {
      case 'GetObjectCommand':
        if (!found) throw fail(404, 'NoSuchKey');
        return { ETag: found.etag, Body: { transformToByteArray: async () => new Uint8Array(found.data) } };
      case 'PutObjectCommand': {
        if (command.input['IfNoneMatch'] === '*' && found) throw fail(412, 'PreconditionFailed');
        if (ifMatch !== undefined && !found) throw fail(404, 'NoSuchKey');
        if (ifMatch !== undefined && found?.etag !== ifMatch) throw fail(412, 'PreconditionFailed');
        const etag = `"etag-${++etags}"`;
        objects.set(key, { data: Buffer.from(command.input['Body'] as Buffer), etag });
        return { ETag: etag };
      }
      case 'HeadObjectCommand':
        if (!found) throw fail(404, 'NotFound');
        return { ETag: found.etag, ContentLength: found.data.length, LastModified: new Date() };
      case 'DeleteObjectCommand':
        if (ifMatch !== undefined && !found) throw fail(404, 'NoSuchKey');
        if (ifMatch !== undefined && found?.etag !== ifMatch) throw fail(412, 'PreconditionFailed');
        objects.delete(key);
        return {};
      default:
        throw new Error(`the double does not answer ${command.constructor.name}`);
    }
  };
  return { client: { send: send as unknown as S3Like['send'], config: {} }, requests };
}

/** A named double of a GCS bucket: generations and ifGenerationMatch as the JSON API documents them. */
function gcsBucketDouble(): { bucket: Bucket; calls: Record<string, unknown>[] } {
  const objects = new Map<string, { data: Buffer; generation: number }>();
  let generations = 1_700_000_000_000_000;
  const calls: Record<string, unknown>[] = [];
  const preconditionFailed = () => Object.assign(new Error('At least one of the pre-conditions you specified did not hold.'), { code: 412 });
  const bucket = {
    name: 'double',
    file: (key: string, fileOptions: { generation?: string } = {}) => {
      const file = {
        metadata: {} as { generation?: string },
        getMetadata: async () => {
          const found = objects.get(key);
          if (!found) throw Object.assign(new Error('No such object'), { code: 404 });
          return [{ generation: String(found.generation), size: found.data.length }];
        },
        download: async () => {
          calls.push({ op: 'download', key, ...fileOptions });
          const found = objects.get(key);
          if (!found) throw Object.assign(new Error('No such object'), { code: 404 });
          return [found.data];
        },
        save: async (data: Buffer, options: { preconditionOpts?: { ifGenerationMatch?: number | string } }) => {
          calls.push({ op: 'save', key, ...options });
          const want = options.preconditionOpts?.ifGenerationMatch;
          if (want !== undefined && String(objects.get(key)?.generation ?? 0) !== String(want)) throw preconditionFailed();
          const generation = ++generations;
          objects.set(key, { data, generation });
          file.metadata = { generation: String(generation) };
        },
        delete: async (options: { ifGenerationMatch?: number | string }) => {
          calls.push({ op: 'delete', key, ...options });
          const found = objects.get(key);
          if (!found) throw Object.assign(new Error('No such object'), { code: 404 });
          if (options.ifGenerationMatch !== undefined && String(found.generation) !== String(options.ifGenerationMatch)) throw preconditionFailed();
          objects.delete(key);
        },
      };
      return file;
    },
  };
  return { bucket: bucket as unknown as Bucket, calls };
}

describe('conditional writes with an S3 client double (s3rver ignores If-None-Match and If-Match)', () => {
  it('sends If-None-Match: * and If-Match: <ETag>, and reports a failed precondition as "not written"', async () => {
    const { client, requests } = s3ClientDouble();
    const driver = new S3Driver(client, { bucket: 'b', partSizeBytes: 5 * 1024 * 1024, queueSize: 1 });
    expect(driver.conditionalWrites).toBe(true);
    const v1 = await driver.putIfAbsent('db/lock.json', Buffer.from('a'));
    expect(v1).toBe('"etag-1"');
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('b'))).toBeUndefined();
    expect(requests[0]).toMatchObject({ command: 'PutObjectCommand', Bucket: 'b', Key: 'db/lock.json', IfNoneMatch: '*' });

    expect(await driver.getVersioned('db/lock.json')).toEqual({ data: Buffer.from('a'), version: '"etag-1"' });
    const v2 = await driver.putIfMatch('db/lock.json', Buffer.from('c'), '"etag-1"');
    expect(v2).toBe('"etag-2"');
    expect(requests.at(-1)).toMatchObject({ command: 'PutObjectCommand', Key: 'db/lock.json', IfMatch: '"etag-1"' });
    expect(await driver.putIfMatch('db/lock.json', Buffer.from('d'), '"etag-1"')).toBeUndefined();
    expect(await driver.putIfMatch('db/other.json', Buffer.from('d'), '"etag-1"')).toBeUndefined(); // 404

    expect(await driver.deleteIfMatch('db/lock.json', '"etag-1"')).toBe(false);
    expect(requests.at(-1)).toMatchObject({ command: 'DeleteObjectCommand', Key: 'db/lock.json', IfMatch: '"etag-1"' });
    expect(await driver.deleteIfMatch('db/lock.json', '"etag-2"')).toBe(true);
    expect(await driver.getVersioned('db/lock.json')).toBeUndefined();
  });

  it('with conditional_writes: false, sends no precondition and compares itself', async () => {
    const { client, requests } = s3ClientDouble();
    const driver = new S3Driver(client, { bucket: 'b', partSizeBytes: 5 * 1024 * 1024, queueSize: 1, conditionalWrites: false });
    expect(driver.conditionalWrites).toBe(false);
    const v1 = (await driver.putIfAbsent('db/lock.json', Buffer.from('a'))) ?? '';
    expect(await driver.putIfMatch('db/lock.json', Buffer.from('b'), 'stale')).toBeUndefined();
    expect(await driver.putIfMatch('db/lock.json', Buffer.from('b'), v1)).toEqual(expect.any(String));
    for (const r of requests) {
      expect(r['IfMatch']).toBeUndefined();
      expect(r['IfNoneMatch']).toBeUndefined();
    }
  });
});

describe('conditional writes with a GCS bucket double (the emulator ignores ifGenerationMatch)', () => {
  it('uses ifGenerationMatch 0 to create and the generation as the version to replace and delete', async () => {
    const { bucket, calls } = gcsBucketDouble();
    const driver = new GcsDriver(bucket);
    const v1 = await driver.putIfAbsent('db/lock.json', Buffer.from('a'));
    expect(v1).toBe('1700000000000001');
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('b'))).toBeUndefined();
    expect(calls[0]).toMatchObject({ op: 'save', key: 'db/lock.json', resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });

    expect(await driver.getVersioned('db/lock.json')).toEqual({ data: Buffer.from('a'), version: v1 });
    expect(calls.at(-1)).toMatchObject({ op: 'download', key: 'db/lock.json', generation: v1 });
    const v2 = await driver.putIfMatch('db/lock.json', Buffer.from('c'), v1 ?? '');
    expect(v2).toBe('1700000000000002');
    expect(calls.at(-1)).toMatchObject({ op: 'save', preconditionOpts: { ifGenerationMatch: v1 } });
    expect(await driver.putIfMatch('db/lock.json', Buffer.from('d'), v1 ?? '')).toBeUndefined();

    expect(await driver.deleteIfMatch('db/lock.json', v1 ?? '')).toBe(false);
    expect(calls.at(-1)).toMatchObject({ op: 'delete', key: 'db/lock.json', ifGenerationMatch: v1 });
    expect(await driver.deleteIfMatch('db/lock.json', v2 ?? '')).toBe(true);
    expect(await driver.deleteIfMatch('db/lock.json', v2 ?? '')).toBe(false);
  });
});

describe('abortIncompleteUploads with an S3 client double (s3rver answers ListMultipartUploads with 405)', () => {
  it('aborts the uploads under the prefix started before the cut-off, across pages', async () => {
    const sent: Record<string, unknown>[] = [];
    const pages = [
      {
        IsTruncated: true,
        NextKeyMarker: 'shop/b',
        NextUploadIdMarker: 'u2',
        Uploads: [
          { Key: 'shop/20261101T000000.000Z-aaaaaa/dump.sql.zst', UploadId: 'u1', Initiated: new Date('2026-11-01T00:00:00Z') },
          { Key: 'shop/20261121T115900.000Z-bbbbbb/dump.sql.zst', UploadId: 'u2', Initiated: new Date('2026-11-21T11:59:00Z') },
        ],
      },
      { IsTruncated: false, Uploads: [{ Key: 'shop/20261102T000000.000Z-cccccc/dump.sql.zst', UploadId: 'u3', Initiated: new Date('2026-11-02T00:00:00Z') }] },
    ];
    const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
      sent.push({ command: command.constructor.name, ...command.input });
      if (command.constructor.name === 'ListMultipartUploadsCommand') return pages.shift();
      if (command.constructor.name === 'AbortMultipartUploadCommand') return {};
      throw new Error(`the double does not answer ${command.constructor.name}`);
    };
    const driver = new S3Driver({ send: send as unknown as S3Like['send'], config: {} }, { bucket: 'b', partSizeBytes: 5 * 1024 * 1024, queueSize: 1 });
    const aborted = await driver.abortIncompleteUploads('shop/', new Date('2026-11-21T11:00:00Z'));
    expect(aborted).toEqual(['shop/20261101T000000.000Z-aaaaaa/dump.sql.zst', 'shop/20261102T000000.000Z-cccccc/dump.sql.zst']);
    expect(sent).toEqual([
      { command: 'ListMultipartUploadsCommand', Bucket: 'b', Prefix: 'shop/', KeyMarker: undefined, UploadIdMarker: undefined },
      { command: 'AbortMultipartUploadCommand', Bucket: 'b', Key: 'shop/20261101T000000.000Z-aaaaaa/dump.sql.zst', UploadId: 'u1' },
      { command: 'ListMultipartUploadsCommand', Bucket: 'b', Prefix: 'shop/', KeyMarker: 'shop/b', UploadIdMarker: 'u2' },
      { command: 'AbortMultipartUploadCommand', Bucket: 'b', Key: 'shop/20261102T000000.000Z-cccccc/dump.sql.zst', UploadId: 'u3' },
    ]);
  });
});
