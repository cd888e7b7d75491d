import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type PutObjectCommandInput,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import type { Readable } from 'node:stream';
import type { S3StorageConfig } from '../config/schema.ts';
import { CountingStream } from '../pipeline/digest.ts';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver } from './driver.ts';

/**
 * The part of S3Client the driver uses. lib-storage also reads `config` (checksum mode, endpoint,
 * path style), so a test double provides both.
 */
export interface S3Like {
  send: S3Client['send'];
  config: Partial<S3Client['config']>;
  destroy?: () => void;
}

export interface S3DriverOptions {
  bucket: string;
  partSizeBytes: number;
  queueSize: number;
  storageClass?: string | undefined;
  serverSideEncryption?: 'AES256' | 'aws:kms' | undefined;
  sseKmsKeyId?: string | undefined;
}

export function createS3Client(config: S3StorageConfig): S3Client {
  const secret = config.secret_access_key ?? config.secret_access_key_file;
  const mode = config.checksum === 'when_required' ? 'WHEN_REQUIRED' : 'WHEN_SUPPORTED';
  return new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.force_path_style,
    requestChecksumCalculation: mode,
    responseChecksumValidation: mode,
    maxAttempts: 4,
    ...(config.access_key_id && secret
      ? {
          credentials: {
            accessKeyId: config.access_key_id.reveal(),
            secretAccessKey: secret.reveal(),
            ...(config.session_token ? { sessionToken: config.session_token.reveal() } : {}),
          },
        }
      : {}),
  });
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * S3 and S3-compatible stores. put streams through lib-storage's multipart Upload (one PutObject
 * when the body fits one part): memory is about part size × (queue size + 1), whatever the object
 * size. A failed multipart upload is aborted so no parts linger (and billed) in the bucket.
 */
export class S3Driver implements StorageDriver {
  readonly location: string;
  readonly #client: S3Like;
  readonly #options: S3DriverOptions;

  constructor(client: S3Like, options: S3DriverOptions) {
    this.#client = client;
    this.#options = options;
    this.location = `s3://${options.bucket}`;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    assertValidKey(key);
    const counter = new CountingStream();
    // lib-storage reports a failed abort (some S3-compatible stores answer 405) instead of the
    // reason the upload failed. Keep the first real cause and report that.
    let cause: unknown;
    const fail = (err: unknown) => {
      cause ??= err;
      counter.destroy(err as Error);
    };
    body.once('error', fail);
    body.pipe(counter);
    const onAbort = () => fail(options.signal?.reason ?? new Error('upload cancelled'));
    options.signal?.addEventListener('abort', onAbort, { once: true });
    if (options.signal?.aborted) onAbort();

    const params: PutObjectCommandInput = {
      Bucket: this.#options.bucket,
      Key: key,
      Body: counter,
      ContentType: options.contentType ?? 'application/octet-stream',
      ...(this.#options.storageClass ? { StorageClass: this.#options.storageClass as PutObjectCommandInput['StorageClass'] } : {}),
      ...(this.#options.serverSideEncryption ? { ServerSideEncryption: this.#options.serverSideEncryption } : {}),
      ...(this.#options.sseKmsKeyId ? { SSEKMSKeyId: this.#options.sseKmsKeyId } : {}),
    };
    // Same client (config through the prototype), but the first failure of any command other
    // than the abort is kept: lib-storage throws the abort's error when the abort fails too.
    const client = this.#client;
    const recording = Object.create(client) as S3Like;
    recording.send = (async (command: unknown, ...rest: unknown[]) => {
      try {
        return await (client.send as (...args: unknown[]) => Promise<unknown>)(command, ...rest);
      } catch (err) {
        if (!(command instanceof AbortMultipartUploadCommand)) cause ??= err;
        throw err;
      }
    }) as S3Like['send'];
    const upload = new Upload({
      client: recording as S3Client,
      params,
      partSize: this.#options.partSizeBytes,
      queueSize: this.#options.queueSize,
      leavePartsOnError: false,
    });
    try {
      await upload.done();
      return { size: counter.bytes };
    } catch (err) {
      body.destroy();
      throw cause ?? err;
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      body.off('error', fail);
    }
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    assertValidKey(key);
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.#options.bucket, Key: key }),
        options.signal ? { abortSignal: options.signal } : {},
      );
      return out.Body as Readable;
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(key, { cause: err });
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }));
      return { key, size: out.ContentLength ?? 0, modifiedAt: out.LastModified ?? new Date(0) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const out = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      for (const item of out.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key, size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0) };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: key }));
  }

  async abortIncompleteUploads(prefix: string, before: Date): Promise<string[]> {
    const aborted: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.#client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#options.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before.getTime()) continue;
        await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#options.bucket, Key: upload.Key, UploadId: upload.UploadId }));
        aborted.push(upload.Key);
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async putIfAbsent(key: string, data: Buffer): Promise<boolean> {
    assertValidKey(key);
    try {
      await this.#client.send(
        new PutObjectCommand({ Bucket: this.#options.bucket, Key: key, Body: data, IfNoneMatch: '*', ContentType: 'application/json' }),
      );
      return true;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      // 412: an object exists. 409: a concurrent conditional write to the same key is in flight.
      if (status === 412 || status === 409 || (err as { name?: string }).name === 'PreconditionFailed') return false;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#client.destroy?.();
  }
}
