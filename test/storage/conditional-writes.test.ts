// putIfAbsent on S3 and GCS. s3rver ignores If-None-Match and the GCS emulator ignores
// ifGenerationMatch, so these paths run against small doubles of the SDK clients (named as such):
// they answer the conditional request the way the real services document it (412 Precondition
// Failed when the object exists).
import type { Bucket } from '@google-cloud/storage';
import { describe, expect, it } from 'vitest';
import { GcsDriver } from '../../src/storage/gcs.ts';
import { S3Driver, type S3Like } from '../../src/storage/s3.ts';

function s3ClientDouble(): { client: S3Like; requests: Record<string, unknown>[] } {
  const objects = new Map<string, Buffer>();
  const requests: Record<string, unknown>[] = [];
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }) => {
    requests.push({ command: command.constructor.name, ...command.input, Body: undefined });
    const key = String(command.input['Key']);
    if (command.constructor.name !== 'PutObjectCommand') throw new Error(`the double does not answer ${command.constructor.name}`);
    if (command.input['IfNoneMatch'] === '*' && objects.has(key)) {
      throw Object.assign(new Error('At least one of the pre-conditions you specified did not hold'), {
        name: 'PreconditionFailed',
        $metadata: { httpStatusCode: 412 },
      });
    }
    objects.set(key, Buffer.from(command.input['Body'] as Buffer));
    return {};
  };
  return { client: { send: send as unknown as S3Like['send'], config: {} }, requests };
}

function gcsBucketDouble(): { bucket: Bucket; saves: Record<string, unknown>[] } {
  const objects = new Map<string, Buffer>();
  const saves: Record<string, unknown>[] = [];
  const bucket = {
    name: 'double',
    file: (key: string) => ({
      save: async (data: Buffer, options: { preconditionOpts?: { ifGenerationMatch?: number } }) => {
        saves.push({ key, ...options });
        if (options.preconditionOpts?.ifGenerationMatch === 0 && objects.has(key)) {
          throw Object.assign(new Error('At least one of the pre-conditions you specified did not hold.'), { code: 412 });
        }
        objects.set(key, data);
      },
    }),
  };
  return { bucket: bucket as unknown as Bucket, saves };
}

describe('putIfAbsent with an S3 client double (s3rver ignores If-None-Match)', () => {
  it('sends If-None-Match: * and reports an existing object as false', async () => {
    const { client, requests } = s3ClientDouble();
    const driver = new S3Driver(client, { bucket: 'b', partSizeBytes: 5 * 1024 * 1024, queueSize: 1 });
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('a'))).toBe(true);
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('b'))).toBe(false);
    expect(requests[0]).toMatchObject({ command: 'PutObjectCommand', Bucket: 'b', Key: 'db/lock.json', IfNoneMatch: '*' });
  });
});

describe('putIfAbsent with a GCS bucket double (the emulator ignores ifGenerationMatch)', () => {
  it('saves with ifGenerationMatch: 0 and reports an existing object as false', async () => {
    const { bucket, saves } = gcsBucketDouble();
    const driver = new GcsDriver(bucket);
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('a'))).toBe(true);
    expect(await driver.putIfAbsent('db/lock.json', Buffer.from('b'))).toBe(false);
    expect(saves[0]).toMatchObject({ key: 'db/lock.json', resumable: false, preconditionOpts: { ifGenerationMatch: 0 } });
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
