// S3Driver's failure paths for multipart uploads. s3rver answers AbortMultipartUpload with 405 and
// ignores it, so whether the driver really aborts cannot be observed against it. These cases use
// a function-field double of the SDK client instead: an object whose `send` records each command
// (constructor name and input) and answers like S3 would. Everything else — the upload (src/storage/s3-upload.ts),
// part splitting, the driver's error handling — is the real code.
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { S3Driver, type S3Like } from '../../src/storage/s3.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const KEY = 'db/20260101T000000.000Z-abcdef/dump.sql.zst';
const SOURCE_ERROR = 'source failed on purpose';

interface Sent {
  name: string;
  input: Record<string, unknown>;
}

interface DoubleOptions {
  /** What AbortMultipartUpload does: answer normally, or fail like s3rver (405). */
  abortFails?: boolean;
  /** Part number whose UploadPart the store rejects (503 SlowDown). */
  partFails?: number;
  /** Called when an UploadPart arrives, before it is answered. */
  onUploadPart?: (partNumber: number) => Promise<void> | void;
  /** The client's requestChecksumCalculation (the SDK default is WHEN_SUPPORTED). */
  checksums?: 'WHEN_SUPPORTED' | 'WHEN_REQUIRED';
}

function s3Double(opts: DoubleOptions = {}): { client: S3Like; sent: Sent[]; partBytes: Map<number, Buffer> } {
  const sent: Sent[] = [];
  const partBytes = new Map<number, Buffer>();
  const send = async (command: { constructor: { name: string }; input: Record<string, unknown> }): Promise<unknown> => {
    const name = command.constructor.name;
    const { Body, ...rest } = command.input;
    sent.push({ name, input: rest });
    switch (name) {
      case 'CreateMultipartUploadCommand':
        return { UploadId: 'upload-1', Bucket: rest['Bucket'], Key: rest['Key'] };
      case 'UploadPartCommand': {
        const partNumber = rest['PartNumber'] as number;
        await opts.onUploadPart?.(partNumber);
        if (partNumber === opts.partFails) {
          throw Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 } });
        }
        partBytes.set(partNumber, Buffer.from(Body as Uint8Array));
        return { ETag: `"etag-${partNumber}"`, ...(rest['ChecksumAlgorithm'] === 'CRC32' ? { ChecksumCRC32: `crc-${partNumber}` } : {}) };
      }
      case 'CompleteMultipartUploadCommand':
        return { ETag: '"etag-complete"', Location: `http://double.invalid/b/${KEY}`, Bucket: rest['Bucket'], Key: rest['Key'] };
      case 'AbortMultipartUploadCommand':
        if (opts.abortFails) {
          throw Object.assign(new Error(''), { name: 'MethodNotAllowed', $fault: 'client', $metadata: { httpStatusCode: 405 } });
        }
        return {};
      case 'PutObjectCommand':
        partBytes.set(0, Buffer.from(Body as Uint8Array));
        return { ETag: '"etag-single"' };
      default:
        throw new Error(`the double does not answer ${name}`);
    }
  };
  const client = {
    send: send as unknown as S3Like['send'],
    // The upload also reads the checksum mode from `client.config` (not only `send`).
    config: {
      requestChecksumCalculation: async () => opts.checksums ?? 'WHEN_REQUIRED',
      requestHandler: undefined,
      forcePathStyle: true,
      endpoint: async () => ({ protocol: 'http:', hostname: 'double.invalid', port: '', path: '/' }),
    } as unknown as S3Like['config'],
  };
  return { client, sent, partBytes };
}

/** `total` random bytes in 1 MiB chunks; throws SOURCE_ERROR once `failAt` bytes were produced. */
function body(total: number, opts: { failAt?: number; onBytes?: (n: number) => void } = {}): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  async function* gen(): AsyncGenerator<Buffer> {
    for (let produced = 0; produced < total; ) {
      if (opts.failAt !== undefined && produced >= opts.failAt) throw new Error(SOURCE_ERROR);
      const chunk = randomBytes(Math.min(MiB, total - produced));
      hash.update(chunk);
      produced += chunk.length;
      yield chunk;
      opts.onBytes?.(produced);
    }
  }
  return { stream: Readable.from(gen(), { objectMode: false }), sha256: () => hash.digest('hex') };
}

const names = (sent: Sent[]): string[] => sent.map((s) => s.name);
const driverFor = (client: S3Like): S3Driver => new S3Driver(client, { bucket: 'b', partSizeBytes: PART, queueSize: 2 });
const settle = (p: Promise<unknown>): Promise<unknown> =>
  p.then(
    () => undefined,
    (e: unknown) => e,
  );

describe('S3Driver with an S3 client double (s3rver cannot abort multipart uploads)', () => {
  it('stores every byte in order whether the body fits one part or several', async () => {
    for (const total of [1, MiB - 1, MiB + 1, 3 * MiB + 12345, PART, PART + 1, 2 * PART + 3 * MiB + 7]) {
      const { client, partBytes } = s3Double();
      const bytes = randomBytes(total);
      // Odd chunk sizes, so chunks straddle the part boundaries.
      const chunks = Array.from({ length: Math.ceil(total / 300_007) }, (_, i) => bytes.subarray(i * 300_007, (i + 1) * 300_007));
      await driverFor(client).put(KEY, Readable.from(chunks));
      const stored = Buffer.concat([...partBytes.entries()].sort(([a], [b]) => a - b).map(([, b]) => b));
      expect(stored.equals(bytes), `${total} bytes`).toBe(true);
      expect([...partBytes.keys()], `${total} bytes`).toEqual(total <= PART ? [0] : Array.from({ length: Math.ceil(total / PART) }, (_, i) => i + 1));
    }
  });

  it('a body failing after 2 full parts: rejects with the body error, aborts the upload, never completes', async () => {
    const { client, sent } = s3Double();
    // Parts are cut once more than a part's worth is buffered: 11 MiB read → parts 1 and 2 sent.
    const err = await settle(driverFor(client).put(KEY, body(30 * MiB, { failAt: 11 * MiB }).stream));
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toBe(SOURCE_ERROR);
    expect(sent.filter((s) => s.name === 'UploadPartCommand').map((s) => s.input['PartNumber'])).toEqual([1, 2]);
    const aborts = sent.filter((s) => s.name === 'AbortMultipartUploadCommand');
    expect(aborts).toHaveLength(1);
    expect(aborts[0]?.input).toEqual({ Bucket: 'b', Key: KEY, UploadId: 'upload-1' });
    expect(names(sent)).not.toContain('CompleteMultipartUploadCommand');
    expect(names(sent)).not.toContain('PutObjectCommand');
    expect(names(sent).at(-1)).toBe('AbortMultipartUploadCommand');
  });

  it('a failing abort (405 like s3rver) does not replace the body error', async () => {
    const { client, sent } = s3Double({ abortFails: true });
    const err = await settle(driverFor(client).put(KEY, body(30 * MiB, { failAt: 11 * MiB }).stream));
    expect((err as Error).message).toBe(SOURCE_ERROR);
    expect(err).not.toMatchObject({ name: 'MethodNotAllowed' });
    expect(names(sent)).toContain('AbortMultipartUploadCommand');
    expect(names(sent)).not.toContain('CompleteMultipartUploadCommand');
  });

  it('a part the store rejects, then a failing abort (405): the part error is reported', async () => {
    const { client, sent } = s3Double({ partFails: 2, abortFails: true });
    const err = await settle(driverFor(client).put(KEY, body(30 * MiB).stream));
    expect(err).toMatchObject({ name: 'SlowDown', message: 'Please reduce your request rate.' });
    expect(names(sent)).toContain('AbortMultipartUploadCommand');
    expect(names(sent)).not.toContain('CompleteMultipartUploadCommand');
  });

  it('a signal aborted mid-upload: rejects, aborts the upload, never completes', async () => {
    const controller = new AbortController();
    const { client, sent } = s3Double({
      onUploadPart: (partNumber) => {
        if (partNumber === 2) controller.abort();
      },
    });
    // The body never fails on its own: only the signal stops this put.
    const err = await settle(driverFor(client).put(KEY, body(40 * MiB).stream, { signal: controller.signal }));
    expect(err).toMatchObject({ name: 'AbortError' });
    const aborts = sent.filter((s) => s.name === 'AbortMultipartUploadCommand');
    expect(aborts.map((s) => s.input)).toEqual([{ Bucket: 'b', Key: KEY, UploadId: 'upload-1' }]);
    expect(names(sent)).not.toContain('CompleteMultipartUploadCommand');
    // It stopped early: far fewer than the 8 parts the whole body would need.
    expect(sent.filter((s) => s.name === 'UploadPartCommand').length).toBeLessThanOrEqual(4);
  });

  it('success: uploads every byte in parts and completes with the parts in order', async () => {
    // Part 1 is answered last, so parts finish out of order.
    const { client, sent, partBytes } = s3Double({
      onUploadPart: (partNumber) => (partNumber === 1 ? new Promise((resolve) => setTimeout(resolve, 50)) : undefined),
    });
    const total = 12 * MiB + 7;
    const src = body(total);
    await expect(driverFor(client).put(KEY, src.stream, { contentType: 'application/zstd' })).resolves.toEqual({ size: total });

    const create = sent.find((s) => s.name === 'CreateMultipartUploadCommand');
    expect(create?.input).toMatchObject({ Bucket: 'b', Key: KEY, ContentType: 'application/zstd' });
    expect([...partBytes.keys()].sort()).toEqual([1, 2, 3]);
    expect([1, 2, 3].map((n) => partBytes.get(n)?.length)).toEqual([PART, PART, total - 2 * PART]);
    const uploaded = createHash('sha256');
    for (const n of [1, 2, 3]) uploaded.update(partBytes.get(n) ?? Buffer.alloc(0));
    expect(uploaded.digest('hex')).toBe(src.sha256());

    const completes = sent.filter((s) => s.name === 'CompleteMultipartUploadCommand');
    expect(completes).toHaveLength(1);
    expect(completes[0]?.input).toMatchObject({
      Bucket: 'b',
      Key: KEY,
      UploadId: 'upload-1',
      MultipartUpload: {
        Parts: [
          { PartNumber: 1, ETag: '"etag-1"' },
          { PartNumber: 2, ETag: '"etag-2"' },
          { PartNumber: 3, ETag: '"etag-3"' },
        ],
      },
    });
    expect(names(sent)).not.toContain('AbortMultipartUploadCommand');
    expect(names(sent).at(-1)).toBe('CompleteMultipartUploadCommand');
  });

  it('a body smaller than one part is one PutObject, no multipart upload', async () => {
    const { client, sent } = s3Double();
    await expect(driverFor(client).put(KEY, body(MiB).stream)).resolves.toEqual({ size: MiB });
    expect(names(sent)).toEqual(['PutObjectCommand']);
    expect(sent[0]?.input).toMatchObject({ Bucket: 'b', Key: KEY });
  });

  it('with the SDK default checksums (WHEN_SUPPORTED): CRC32 on every part, listed in the completion', async () => {
    const { client, sent } = s3Double({ checksums: 'WHEN_SUPPORTED' });
    await driverFor(client).put(KEY, body(12 * MiB).stream);
    expect(sent.find((s) => s.name === 'CreateMultipartUploadCommand')?.input).toMatchObject({ ChecksumAlgorithm: 'CRC32' });
    expect(sent.filter((s) => s.name === 'UploadPartCommand').map((s) => s.input['ChecksumAlgorithm'])).toEqual(['CRC32', 'CRC32', 'CRC32']);
    expect(sent.find((s) => s.name === 'CompleteMultipartUploadCommand')?.input['MultipartUpload']).toEqual({
      Parts: [1, 2, 3].map((n) => ({ PartNumber: n, ETag: `"etag-${n}"`, ChecksumCRC32: `crc-${n}` })),
    });
  });

  it('never more than queueSize parts in flight, and the body is read no further than one more part ahead', async () => {
    let inFlight = 0;
    let most = 0;
    let read = 0;
    let readAhead = 0;
    const { client } = s3Double({
      onUploadPart: async (partNumber) => {
        most = Math.max(most, ++inFlight);
        // Bytes read beyond the parts handed to the store so far.
        readAhead = Math.max(readAhead, read - partNumber * PART);
        await new Promise((resolve) => setTimeout(resolve, 20));
        inFlight--;
      },
    });
    await driverFor(client).put(KEY, body(40 * MiB, { onBytes: (n) => (read = n) }).stream);
    expect(most).toBe(2);
    // Parts 1..n sent, part n+1 and n+2 may be filling or queued behind the in-flight ones: a bound in parts, not in the object size.
    expect(readAhead).toBeLessThanOrEqual(3 * PART);
  });

  it('a signal aborted before the put: rejects at once, even with a body that never sends a byte', async () => {
    const { client, sent } = s3Double();
    const controller = new AbortController();
    controller.abort();
    const silent = new Readable({ read() {} });
    const err = await settle(driverFor(client).put(KEY, silent, { signal: controller.signal }));
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(silent.destroyed).toBe(true);
    expect(sent).toEqual([]);
  });
});
