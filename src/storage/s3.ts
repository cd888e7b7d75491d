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
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';

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
  /** Whether the store honours If-None-Match/If-Match (AWS S3 does; s3rver and some compatibles ignore them). Default true. */
  conditionalWrites?: boolean | undefined;
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
 * A conditional request that did not hold: 412 Precondition Failed, or 409 Conflict (a concurrent
 * conditional write to the same key won). AWS documents both for PutObject and DeleteObject.
 */
function isPreconditionFailure(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  return status === 412 || status === 409 || e.name === 'PreconditionFailed' || e.name === 'ConditionalRequestConflict';
}

/**
 * S3 and S3-compatible stores. put streams through lib-storage's multipart Upload (one PutObject
 * when the body fits one part): memory is about part size × (queue size + 1), whatever the object
 * size. A failed multipart upload is aborted so no parts linger (and billed) in the bucket.
 */
export class S3Driver implements StorageDriver {
  readonly location: string;
  readonly conditionalWrites: boolean;
  readonly #client: S3Like;
  readonly #options: S3DriverOptions;

  constructor(client: S3Like, options: S3DriverOptions) {
    this.#client = client;
    this.#options = options;
    this.location = `s3://${options.bucket}`;
    this.conditionalWrites = options.conditionalWrites ?? true;
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

  async abortIncompleteUploads(prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean = () => false): Promise<string[]> {
    const aborted: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.#client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#options.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before.getTime() || spare(upload.Key, upload.Initiated)) continue;
        await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#options.bucket, Key: upload.Key, UploadId: upload.UploadId }));
        aborted.push(upload.Key);
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async getVersioned(key: string): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#options.bucket, Key: key }));
      const body = out.Body as { transformToByteArray(): Promise<Uint8Array> } | undefined;
      return { data: Buffer.from((await body?.transformToByteArray()) ?? []), version: out.ETag ?? '' };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async #putSmall(key: string, data: Buffer, condition: { IfNoneMatch?: string; IfMatch?: string }): Promise<string> {
    const out = await this.#client.send(
      new PutObjectCommand({ Bucket: this.#options.bucket, Key: key, Body: data, ContentType: 'application/json', ...condition }),
    );
    return out.ETag ?? '';
  }

  async putIfAbsent(key: string, data: Buffer): Promise<string | undefined> {
    assertValidKey(key);
    // Without conditional writes: look, then write (a racing writer can slip in between).
    if (!this.conditionalWrites) return (await this.stat(key)) ? undefined : this.#putSmall(key, data, {});
    try {
      return await this.#putSmall(key, data, { IfNoneMatch: '*' });
    } catch (err) {
      if (isPreconditionFailure(err)) return undefined;
      throw err;
    }
  }

  async putIfMatch(key: string, data: Buffer, version: string): Promise<string | undefined> {
    assertValidKey(key);
    if (!this.conditionalWrites) return (await this.getVersioned(key))?.version === version ? this.#putSmall(key, data, {}) : undefined;
    try {
      return await this.#putSmall(key, data, { IfMatch: version });
    } catch (err) {
      // 404: the object is gone, which is "not at that version" too.
      if (isPreconditionFailure(err) || isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteIfMatch(key: string, version: string): Promise<boolean> {
    assertValidKey(key);
    if (!this.conditionalWrites) {
      if ((await this.getVersioned(key))?.version !== version) return false;
      await this.delete(key);
      return true;
    }
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: key, IfMatch: version }));
      return true;
    } catch (err) {
      if (isPreconditionFailure(err) || isNotFound(err)) return false;
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#client.destroy?.();
  }
}
