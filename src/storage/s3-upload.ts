import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { withRetries, type RetryPolicy } from './retry-loop.ts';

/**
 * A streamed S3 upload on a fixed set of reusable part buffers: the body is copied once, into a
 * part buffer; a full part goes out as one UploadPart while the next one fills. At most `queueSize`
 * parts are in flight and one fills, so memory is partSize × (queueSize + 1), allocated once per
 * upload, whatever the object size (lib-storage's Upload concatenates every part into a new buffer
 * and leaves the old ones to the GC). A body that fits one part is one PutObject. Any failure
 * aborts the multipart upload, so no parts linger (and are billed) in the bucket, and rejects with
 * the first cause: not the abort's own failure (some S3-compatible stores answer it with 405).
 */

/** The part of S3Client an upload uses. */
export interface S3Sender {
  send: (command: never, options?: { abortSignal?: AbortSignal }) => Promise<unknown>;
  config: { requestChecksumCalculation?: () => Promise<string> };
}

export interface StreamUploadOptions {
  /** Bucket, Key and the object's headers (content type, storage class, encryption). */
  params: Omit<PutObjectCommandInput, 'Body'> & { Bucket: string; Key: string };
  partSize: number;
  queueSize: number;
  signal?: AbortSignal | undefined;
  /** Retries of one request: its body is a buffer, so it can be replayed. */
  retry?: Partial<RetryPolicy> | undefined;
}

/** S3's limit of parts per multipart upload. */
export const MAX_PARTS = 10_000;

type Checksums = Pick<CompletedPart, 'ChecksumCRC32' | 'ChecksumCRC32C' | 'ChecksumSHA1' | 'ChecksumSHA256' | 'ChecksumCRC64NVME'>;

/** Uploads `body` to params.Key; resolves with the bytes stored once the object is complete. */
export async function uploadStream(client: S3Sender, body: Readable, options: StreamUploadOptions): Promise<{ size: number }> {
  const { params, partSize, queueSize } = options;
  const { Bucket, Key } = params;
  // Everything in flight stops on the first failure, or on the caller's signal.
  const stop = new AbortController();
  let cause: unknown;
  const fail = (err: unknown) => {
    cause ??= err;
    if (!stop.signal.aborted) stop.abort(err);
  };
  // A body waiting for data is woken by destroying it: the pipeline below then fails with the cause.
  const onStop = () => body.destroy(stop.signal.reason instanceof Error ? stop.signal.reason : new Error(String(stop.signal.reason)));
  stop.signal.addEventListener('abort', onStop, { once: true });
  const onAbort = () => fail(options.signal?.reason ?? new Error('upload cancelled'));
  options.signal?.addEventListener('abort', onAbort, { once: true });
  if (options.signal?.aborted) onAbort();

  const send = <T>(command: unknown): Promise<T> =>
    withRetries(() => client.send(command as never, { abortSignal: stop.signal }) as Promise<T>, { policy: options.retry ?? {}, signal: stop.signal });
  // With the SDK's default checksums (WHEN_SUPPORTED) every part carries a CRC32, and the
  // completion lists them, as lib-storage does; WHEN_REQUIRED sends none.
  const checksum = (await client.config.requestChecksumCalculation?.()) === 'WHEN_SUPPORTED';

  // The part buffers: allocated when first needed, reused once their part is stored.
  const free: Buffer[] = [];
  let allocated = 0;
  let wake: (() => void) | undefined;
  const release = (buffer: Buffer) => {
    free.push(buffer);
    wake?.();
  };
  const acquire = async (): Promise<Buffer> => {
    for (;;) {
      stop.signal.throwIfAborted();
      const buffer = free.pop();
      if (buffer) return buffer;
      if (allocated <= queueSize) {
        allocated++;
        return Buffer.allocUnsafeSlow(partSize);
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          stop.signal.removeEventListener('abort', done);
          wake = undefined;
          resolve();
        };
        wake = done;
        stop.signal.addEventListener('abort', done, { once: true });
      });
    }
  };

  let uploadId: Promise<string> | undefined;
  const createUpload = async (): Promise<string> => {
    const out = await send<{ UploadId?: string }>(new CreateMultipartUploadCommand({ ...params, ...(checksum ? { ChecksumAlgorithm: 'CRC32' } : {}) }));
    if (!out.UploadId) throw new Error(`upload ${Key}: the store answered CreateMultipartUpload without an UploadId`);
    return out.UploadId;
  };
  const completed: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let parts = 0;
  const dispatch = (buffer: Buffer, length: number) => {
    const PartNumber = ++parts;
    if (PartNumber > MAX_PARTS) throw new Error(`upload ${Key}: more than ${MAX_PARTS} parts of ${partSize} bytes; raise part_size_mb`);
    // A rejection of createUpload fails the upload through the first part that awaits it.
    uploadId ??= createUpload();
    const task = (async () => {
      const UploadId = await uploadId;
      const out = await send<{ ETag?: string } & Checksums>(
        new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: buffer.subarray(0, length), ContentLength: length, ...(checksum ? { ChecksumAlgorithm: 'CRC32' } : {}) }),
      );
      if (!out.ETag) throw new Error(`upload ${Key}: the store answered part ${PartNumber} without an ETag`);
      const { ETag, ChecksumCRC32, ChecksumCRC32C, ChecksumSHA1, ChecksumSHA256, ChecksumCRC64NVME } = out;
      const sums: Checksums = { ChecksumCRC32, ChecksumCRC32C, ChecksumSHA1, ChecksumSHA256, ChecksumCRC64NVME };
      completed.push({ PartNumber, ETag, ...Object.fromEntries(Object.entries(sums).filter(([, v]) => v !== undefined)) });
      release(buffer);
    })().catch(fail);
    inFlight.add(task);
    void task.finally(() => inFlight.delete(task));
  };

  let size = 0;
  let current: Buffer | undefined;
  let filled = 0;
  try {
    // Copies each chunk into the part buffers as it comes. A Writable, not `for await`: the async
    // iterator reads with read(), which joins the chunks buffered by then into a new buffer (one
    // more copy, and garbage); write() hands over each chunk as it is.
    const take = async (chunk: Buffer): Promise<void> => {
      for (let offset = 0; offset < chunk.length; ) {
        // A full part goes out once more bytes follow it: a body of exactly one part stays a
        // PutObject. A free buffer first: while it is awaited the full part waits too, so at most
        // queueSize parts are in flight.
        if (current === undefined || filled === partSize) {
          const next = await acquire();
          if (current !== undefined) dispatch(current, filled);
          current = next;
          filled = 0;
        }
        const n = chunk.copy(current, filled, offset);
        filled += n;
        offset += n;
      }
      size += chunk.length;
    };
    await pipeline(
      body,
      new Writable({
        write(chunk: Buffer, _encoding, callback) {
          take(chunk).then(() => callback(), callback);
        },
      }),
    );
    stop.signal.throwIfAborted();
    if (parts === 0) {
      await send(new PutObjectCommand({ ...params, Body: current ? current.subarray(0, filled) : Buffer.alloc(0), ContentLength: filled }));
      return { size };
    }
    while (inFlight.size >= queueSize) await Promise.race(inFlight);
    stop.signal.throwIfAborted();
    if (current !== undefined) dispatch(current, filled);
    while (inFlight.size > 0) await Promise.all(inFlight);
    stop.signal.throwIfAborted();
    completed.sort((a, b) => (a.PartNumber ?? 0) - (b.PartNumber ?? 0));
    await send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: await uploadId, MultipartUpload: { Parts: completed } }));
    uploadId = undefined;
    return { size };
  } catch (err) {
    fail(err);
    // No request may still be running when the upload is aborted (a part stored after the abort lingers).
    while (inFlight.size > 0) await Promise.all(inFlight);
    const id = await uploadId?.catch(() => undefined);
    if (id !== undefined) {
      await Promise.resolve(client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: id }) as never)).catch(() => undefined);
    }
    throw cause;
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
    stop.signal.removeEventListener('abort', onStop);
  }
}
