// Probe: both emulators start, and the real SDKs behave as the storage backends expect.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import {
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { ApiError, type GetFilesOptions, type GetFilesResponse, Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { killStale } from './child-process.ts';
import { startGcsServer, type GcsServer } from './gcs-server.ts';
import { createS3Bucket, s3Client, startS3Server, type S3Server } from './s3-server.ts';

const MiB = 1024 * 1024;
const RUN_DIR = fileURLToPath(new URL('../../.tmp/harness-probe', import.meta.url));

/** `total` random bytes in 1 MiB chunks; `failAfter` bytes in, the stream errors instead. */
function source(total: number, failAfter?: number): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  async function* gen(): AsyncGenerator<Buffer> {
    for (let sent = 0; sent < total; sent += MiB) {
      if (failAfter !== undefined && sent >= failAfter) throw new Error('source failed on purpose');
      const chunk = randomBytes(Math.min(MiB, total - sent));
      hash.update(chunk);
      yield chunk;
    }
  }
  return { stream: Readable.from(gen(), { objectMode: false }), sha256: () => hash.digest('hex') };
}

async function sha256Of(body: AsyncIterable<Uint8Array>): Promise<{ sha: string; size: number }> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of body) {
    hash.update(chunk);
    size += chunk.length;
  }
  return { sha: hash.digest('hex'), size };
}

let s3: S3Server;
let gcs: GcsServer;
let dataDir: string;
const timings: Record<string, number> = {};

beforeAll(async () => {
  await killStale(RUN_DIR);
  dataDir = await mkdtemp(join(tmpdir(), 's3rver-'));
  const t0 = performance.now();
  const s3p = startS3Server({ dir: dataDir, runDir: RUN_DIR }).then((s) => ((timings['s3rver'] = performance.now() - t0), s));
  const gcsp = startGcsServer({ runDir: RUN_DIR }).then((s) => ((timings['gcs'] = performance.now() - t0), s));
  [s3, gcs] = await Promise.all([s3p, gcsp]);
  console.log(`startup ms (in parallel): s3rver ${timings['s3rver']?.toFixed(0)}, gcs emulator ${timings['gcs']?.toFixed(0)}`);
}, 30_000);

afterAll(async () => {
  const t0 = performance.now();
  await Promise.all([s3?.stop(), gcs?.stop()]);
  console.log(`stop ms (both): ${(performance.now() - t0).toFixed(0)}`);
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('s3rver', () => {
  const Bucket = 'probe';
  let client: S3Client;
  beforeAll(async () => {
    await createS3Bucket(s3.endpoint, Bucket);
    client = s3Client(s3.endpoint);
  });
  afterAll(() => client?.destroy());

  it('round-trips a 20 MiB streamed multipart upload byte-equal', async () => {
    const src = source(20 * MiB);
    const upload = new Upload({ client, params: { Bucket, Key: 'big.bin', Body: src.stream }, partSize: 5 * MiB, queueSize: 2 });
    await upload.done();
    const got = await client.send(new GetObjectCommand({ Bucket, Key: 'big.bin' }));
    const { sha, size } = await sha256Of(got.Body as Readable);
    expect(size).toBe(20 * MiB);
    expect(sha).toBe(src.sha256());
    await client.send(new DeleteObjectCommand({ Bucket, Key: 'big.bin' }));
    await expect(client.send(new GetObjectCommand({ Bucket, Key: 'big.bin' }))).rejects.toMatchObject({ name: 'NoSuchKey' });
  });

  it('pages ListObjectsV2 with MaxKeys 2 over 5 objects', async () => {
    for (let i = 0; i < 5; i++) await client.send(new PutObjectCommand({ Bucket, Key: `list/o${i}`, Body: `x${i}` }));
    const pages: string[][] = [];
    let ContinuationToken: string | undefined;
    do {
      const r = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'list/', MaxKeys: 2, ContinuationToken }));
      pages.push((r.Contents ?? []).map((o) => o.Key ?? ''));
      ContinuationToken = r.IsTruncated ? r.NextContinuationToken : undefined;
    } while (ContinuationToken);
    expect(pages).toEqual([['list/o0', 'list/o1'], ['list/o2', 'list/o3'], ['list/o4']]);
    for (const key of pages.flat()) await client.send(new DeleteObjectCommand({ Bucket, Key: key }));
  });

  // s3rver answers AbortMultipartUpload with 405. lib-storage aborts on failure and, when that abort
  // throws, the abort's error replaces the source's (no `cause`). Parts stay on disk, invisible.
  it.each([
    { failAtMiB: 12, leavePartsOnError: false, mpuLeft: 1, expected: { name: 'MethodNotAllowed', $metadata: { httpStatusCode: 405 } } },
    { failAtMiB: 12, leavePartsOnError: true, mpuLeft: 1, expected: { message: 'source failed on purpose' } },
    { failAtMiB: 2, leavePartsOnError: false, mpuLeft: 0, expected: { message: 'source failed on purpose' } }, // before part 1: no MPU
  ])('a source failing at $failAtMiB MiB (leavePartsOnError $leavePartsOnError) leaves no object', async (c) => {
    const Key = `failed-${c.failAtMiB}-${c.leavePartsOnError}.bin`;
    const mpus = (): Promise<number> => readdir(join(dataDir, Bucket, '._S3rver_uploads')).then((d) => d.length, () => 0);
    const mpusBefore = await mpus();
    const src = source(20 * MiB, c.failAtMiB * MiB);
    const upload = new Upload({ client, params: { Bucket, Key, Body: src.stream }, partSize: 5 * MiB, queueSize: 1, leavePartsOnError: c.leavePartsOnError });
    const err: unknown = await upload.done().then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject(c.expected);
    expect((err as Error).cause).toBeUndefined();
    const listed = await client.send(new ListObjectsV2Command({ Bucket, Prefix: 'failed' }));
    expect(listed.KeyCount ?? 0).toBe(0);
    await expect(client.send(new GetObjectCommand({ Bucket, Key }))).rejects.toMatchObject({ name: 'NoSuchKey' });
    expect((await mpus()) - mpusBefore).toBe(c.mpuLeft); // uploaded parts stay on s3rver's disk
  });
});

describe('gcs emulator', () => {
  let storage: Storage;
  const bucketName = 'probe-bucket'; // buckets exist implicitly
  beforeAll(() => {
    storage = new Storage({ apiEndpoint: gcs.endpoint, projectId: 'test' });
  });

  it('round-trips a 3 MiB resumable stream upload byte-equal', async () => {
    const file = storage.bucket(bucketName).file('dir/big.bin');
    const src = source(3 * MiB);
    await pipeline(src.stream, file.createWriteStream({ resumable: true }));
    const { sha, size } = await sha256Of(file.createReadStream());
    expect(size).toBe(3 * MiB);
    expect(sha).toBe(src.sha256());
    const [meta] = await file.getMetadata();
    expect(Number(meta.size)).toBe(3 * MiB);
    await file.delete();
    const [exists] = await file.exists();
    expect(exists).toBe(false);
  });

  it('pages getFiles with maxResults 2 over 5 objects', async () => {
    const bucket = storage.bucket(bucketName);
    for (let i = 0; i < 5; i++) await bucket.file(`list/o${i}`).save(`x${i}`, { resumable: false });
    const pages: string[][] = [];
    let query: GetFilesOptions | undefined = { prefix: 'list/', autoPaginate: false, maxResults: 2 };
    while (query) {
      const [files, next]: GetFilesResponse = await bucket.getFiles(query);
      pages.push(files.map((f) => f.name));
      const nextQuery = next as GetFilesOptions | null; // null after the last page
      query = nextQuery?.pageToken ? nextQuery : undefined;
    }
    expect(pages).toEqual([['list/o0', 'list/o1'], ['list/o2', 'list/o3'], ['list/o4']]);
    await Promise.all(pages.flat().map((n) => bucket.file(n).delete()));
  });

  it('a missing object is an ApiError with code 404', async () => {
    const file = storage.bucket(bucketName).file('nope/missing.bin');
    const errs = await Promise.all([
      file.getMetadata().then(() => undefined, (e: unknown) => e),
      file.download().then(() => undefined, (e: unknown) => e),
      file.delete().then(() => undefined, (e: unknown) => e),
    ]);
    for (const e of errs) {
      expect(e).toBeInstanceOf(ApiError);
      expect(e).toMatchObject({ code: 404, message: 'No such object: probe-bucket/nope/missing.bin' });
    }
    expect(await file.exists()).toEqual([false]);
  });

  it('a source failing mid-resumable-upload leaves no object', async () => {
    const file = storage.bucket(bucketName).file('failed.bin');
    const src = source(3 * MiB, 2 * MiB);
    const err: unknown = await pipeline(src.stream, file.createWriteStream({ resumable: true })).then(() => undefined, (e: unknown) => e);
    expect(err).toMatchObject({ message: 'source failed on purpose' }); // the source's own error, unchanged
    const [exists] = await file.exists();
    expect(exists).toBe(false);
    const [files] = await storage.bucket(bucketName).getFiles({ prefix: 'failed' });
    expect(files).toHaveLength(0);
  });
});
