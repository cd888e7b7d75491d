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
import { fromIni } from '@aws-sdk/credential-provider-ini';
import { Readable } from 'node:stream';
import type { S3StorageConfig } from '../config/schema.ts';
import { assertValidKey, assertValidRange, StorageNotFoundError, type ByteRange, type CallOptions, type GetOptions, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';
import { prefixesByWalking } from './prefix-listing.ts';
import type { RetryPolicy } from './retry-loop.ts';
import { uploadStream, type S3Sender } from './s3-upload.ts';

/**
 * The part of S3Client the driver uses. A streamed put also reads `config.requestChecksumCalculation`
 * (whether parts carry CRC32 checksums), so a test double provides both.
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
  /** Whether ListObjectsV2 with Delimiter returns every CommonPrefix (s3rver misses folders that hold only folders). Default true. */
  delimiterListing?: boolean | undefined;
  /**
   * Retries of one request of a streamed put (a part, whose bytes are in memory): the one place
   * below the retrying decorator that can replay a body. Default: the decorator's policy.
   */
  partRetry?: Partial<RetryPolicy> | undefined;
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
    // One attempt per request: retries live in one place, the RetryingDriver around every driver
    // (and, for the parts of a streamed upload, S3Driver.put), so attempts never multiply.
    maxAttempts: 1,
    ...(config.profile ? { profile: config.profile } : {}),
    ...(config.credentials_file ? { credentials: fromIni({ filepath: config.credentials_file, ...(config.profile ? { profile: config.profile } : {}) }) } : {}),
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

/** The SDK's per-request options carrying `signal`. */
function sendOptions(options: CallOptions): { abortSignal?: AbortSignal } {
  return options.signal ? { abortSignal: options.signal } : {};
}

/** S3 quotes its ETags; the quotes are not part of the value. */
function etagOf(etag: string | undefined): { etag?: string } {
  return etag ? { etag: etag.replace(/^"|"$/g, '') } : {};
}

function isNotFound(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/**
 * The bytes of `range` from a ranged GET's body, checked against the Content-Range the store
 * answered: S3-compatible stores differ (s3rver answers `bytes=0-0` with the whole object), so the
 * body is cut at the range's length, and a store that started elsewhere is an error, not data.
 */
function exactRange(body: Readable, contentRange: string | undefined, range: ByteRange): Readable {
  const answered = /^bytes (\d+)-\d+\/(?:\d+|\*)$/.exec(contentRange ?? '');
  const start = answered ? Number(answered[1]) : 0;
  if (start !== range.start) {
    body.destroy();
    throw new Error(`the store answered a read of bytes ${range.start}-${range.end} with ${contentRange ? contentRange : 'the whole object'}`);
  }
  let left = range.end - range.start + 1;
  return Readable.from(
    (async function* () {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (chunk.length >= left) {
          yield chunk.subarray(0, left);
          return; // ends the iteration, which destroys the body
        }
        left -= chunk.length;
        yield chunk;
      }
    })(),
    { objectMode: false },
  );
}

/** 416 Range Not Satisfiable: a ranged GET whose start is past the object's end. */
function isInvalidRange(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e.name === 'InvalidRange' || e.$metadata?.httpStatusCode === 416;
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
 * S3 and S3-compatible stores. put streams through a multipart upload on reusable part buffers
 * (s3-upload.ts; one PutObject when the body fits one part): memory is part size × (queue size + 1),
 * whatever the object size. A failed multipart upload is aborted so no parts linger (and billed)
 * in the bucket.
 */
export class S3Driver implements StorageDriver {
  readonly location: string;
  readonly conditionalWrites: boolean;
  readonly delimiterListing: boolean;
  readonly #client: S3Like;
  readonly #options: S3DriverOptions;

  constructor(client: S3Like, options: S3DriverOptions) {
    this.#client = client;
    this.#options = options;
    this.location = `s3://${options.bucket}`;
    this.conditionalWrites = options.conditionalWrites ?? true;
    this.delimiterListing = options.delimiterListing ?? true;
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    assertValidKey(key);
    return uploadStream(this.#client as unknown as S3Sender, body, {
      params: {
        Bucket: this.#options.bucket,
        Key: key,
        ContentType: options.contentType ?? 'application/octet-stream',
        ...(this.#options.storageClass ? { StorageClass: this.#options.storageClass as PutObjectCommandInput['StorageClass'] } : {}),
        ...(this.#options.serverSideEncryption ? { ServerSideEncryption: this.#options.serverSideEncryption } : {}),
        ...(this.#options.sseKmsKeyId ? { SSEKMSKeyId: this.#options.sseKmsKeyId } : {}),
      },
      partSize: this.#options.partSizeBytes,
      queueSize: this.#options.queueSize,
      signal: options.signal,
      retry: this.#options.partRetry,
    });
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    assertValidKey(key);
    assertValidRange(options.range);
    const { range } = options;
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#options.bucket, Key: key, ...(range ? { Range: `bytes=${range.start}-${range.end}` } : {}) }), sendOptions(options));
      return range ? exactRange(out.Body as Readable, out.ContentRange, range) : (out.Body as Readable);
    } catch (err) {
      if (isNotFound(err)) throw new StorageNotFoundError(key, { cause: err });
      // A start past the end: S3 answers 416 InvalidRange (for an object that exists); the contract says empty.
      if (range && isInvalidRange(err)) return Readable.from([]);
      throw err;
    }
  }

  async stat(key: string, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const out = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }), sendOptions(options));
      return { key, size: out.ContentLength ?? 0, modifiedAt: out.LastModified ?? new Date(0), ...etagOf(out.ETag) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** One ListObjectsV2 page per step of the iteration: the next page is requested only when the caller reads past this one. */
  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const out = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, ContinuationToken: token }),
        sendOptions(options),
      );
      for (const item of out.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield { key: item.Key, size: item.Size ?? 0, modifiedAt: item.LastModified ?? new Date(0), ...etagOf(item.ETag) };
      }
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  /** ListObjectsV2 with Delimiter "/": CommonPrefixes, a page at a time. */
  async *listPrefixes(prefix: string, options: CallOptions = {}): AsyncIterable<string> {
    if (!this.delimiterListing) {
      yield* prefixesByWalking(this.list(prefix, options), prefix);
      return;
    }
    let token: string | undefined;
    do {
      const out = await this.#client.send(
        new ListObjectsV2Command({ Bucket: this.#options.bucket, Prefix: prefix, Delimiter: '/', ContinuationToken: token }),
        sendOptions(options),
      );
      for (const item of out.CommonPrefixes ?? []) if (item.Prefix !== undefined) yield item.Prefix;
      token = out.IsTruncated ? out.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(key: string, options: CallOptions = {}): Promise<void> {
    assertValidKey(key);
    await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: key }), sendOptions(options));
  }

  async abortIncompleteUploads(prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean = () => false, options: CallOptions = {}): Promise<string[]> {
    const aborted: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await this.#client.send(
        new ListMultipartUploadsCommand({ Bucket: this.#options.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }),
        sendOptions(options),
      );
      for (const upload of page.Uploads ?? []) {
        if (!upload.Key || !upload.UploadId || !upload.Initiated || upload.Initiated.getTime() >= before.getTime() || spare(upload.Key, upload.Initiated)) continue;
        await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#options.bucket, Key: upload.Key, UploadId: upload.UploadId }), sendOptions(options));
        aborted.push(upload.Key);
      }
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return aborted;
  }

  async getVersioned(key: string, options: CallOptions = {}): Promise<VersionedObject | undefined> {
    assertValidKey(key);
    try {
      const out = await this.#client.send(new GetObjectCommand({ Bucket: this.#options.bucket, Key: key }), sendOptions(options));
      const body = out.Body as { transformToByteArray(): Promise<Uint8Array> } | undefined;
      return { data: Buffer.from((await body?.transformToByteArray()) ?? []), version: out.ETag ?? '' };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async #putSmall(key: string, data: Buffer, condition: { IfNoneMatch?: string; IfMatch?: string }, options: CallOptions): Promise<string> {
    const out = await this.#client.send(
      new PutObjectCommand({ Bucket: this.#options.bucket, Key: key, Body: data, ContentType: 'application/json', ...condition }),
      sendOptions(options),
    );
    return out.ETag ?? '';
  }

  async putIfAbsent(key: string, data: Buffer, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    // Without conditional writes: look, then write (a racing writer can slip in between).
    if (!this.conditionalWrites) return (await this.stat(key, options)) ? undefined : this.#putSmall(key, data, {}, options);
    try {
      return await this.#putSmall(key, data, { IfNoneMatch: '*' }, options);
    } catch (err) {
      if (isPreconditionFailure(err)) return undefined;
      throw err;
    }
  }

  async putIfMatch(key: string, data: Buffer, version: string, options: CallOptions = {}): Promise<string | undefined> {
    assertValidKey(key);
    if (!this.conditionalWrites) return (await this.getVersioned(key, options))?.version === version ? this.#putSmall(key, data, {}, options) : undefined;
    try {
      return await this.#putSmall(key, data, { IfMatch: version }, options);
    } catch (err) {
      // 404: the object is gone, which is "not at that version" too.
      if (isPreconditionFailure(err) || isNotFound(err)) return undefined;
      throw err;
    }
  }

  async deleteIfMatch(key: string, version: string, options: CallOptions = {}): Promise<boolean> {
    assertValidKey(key);
    if (!this.conditionalWrites) {
      if ((await this.getVersioned(key, options))?.version !== version) return false;
      await this.delete(key, options);
      return true;
    }
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.#options.bucket, Key: key, IfMatch: version }), sendOptions(options));
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
