import { open } from 'node:fs/promises';
import { hostname } from 'node:os';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { openCompressor } from '../pipeline/compress.ts';
import { createEncryptor, recordOf, type Encrypt } from '../pipeline/encryption.ts';
import { DigestStream } from '../pipeline/digest.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { withRetries, type RetryPolicy } from '../storage/retry-loop.ts';
import { AGENT_VERSION } from '../version.ts';
import type { SegmentDraft } from './draft.ts';
import { formatGtidPosition } from './events.ts';
import { commitSegment, ENCRYPTED_SEGMENT_VERSION, SEGMENT_VERSION, segmentDataKey, type SegmentManifest } from './segments.ts';

/** Spool bytes read per step: the size of the capture's one read buffer (tail and uploads). */
export const READ_BYTES = 1024 * 1024;

/**
 * A segment is retried until it is archived: the spool bound (checked in `onFailure`), not a count
 * of attempts, ends an outage. Waits up to 1, 2, 4 … 30 s.
 */
export const SEGMENT_RETRY_POLICY: RetryPolicy = { attempts: Number.POSITIVE_INFINITY, baseDelayMs: 1000, maxDelayMs: 30_000 };

/** Attempts at most once the capture is stopping: a last segment gets a few tries, not an outage's worth. */
export const ATTEMPTS_WHEN_STOPPING = 4;

export interface UploadInput {
  database: DatabaseConfig;
  storage: StorageDriver;
  path: string;
  file: string;
  draft: SegmentDraft;
  header: { serverId: number; createdAt: string };
  /** The compression's extension and, when encrypted, `.age`. */
  extension: string;
  /** Encrypt each segment after compression; undefined: store as compressed. */
  encrypt?: Encrypt | undefined;
  log: Logger;
  follows: { file: string; end: number } | null;
  signal: AbortSignal;
  now: () => Date;
  /**
   * The buffer the segment is read through, reused chunk after chunk (the capture's one read
   * buffer: the tail does not read while a segment uploads). A read stream would allocate a new
   * buffer per chunk, garbage that V8 frees late: tens of MiB of RSS during a backlog catch-up.
   */
  buffer: Buffer;
  /**
   * After each failed attempt, before the wait: the capture reports the outage (status, metrics,
   * webhooks) and checks its spool bound. Throwing ends the retries with that error.
   */
  onFailure: (error: unknown, attempt: number) => Promise<void>;
}

/**
 * Uploads one segment (data, then manifest), retrying with backoff (the one retry loop,
 * storage/retry-loop.ts) until it succeeds, the capture stops (then four attempts at most), or
 * `onFailure` gives up by throwing.
 */
export async function uploadSegment(input: UploadInput): Promise<SegmentManifest> {
  const { database, storage, path, file, draft, header, extension, log, follows } = input;
  const { start, end } = draft;
  const key = segmentDataKey(database.name, file, start, end, extension);
  const archiveOnce = async (): Promise<SegmentManifest> => {
    const began = Date.now();
    const digest = new DigestStream();
    // The zstd command when installed, as for backups: its buffers and compression context live in
    // that short process, not in the capture's heap and thread-pool arenas (Node's zlib zstd left
    // a ~3 MiB context per thread-pool thread resident under a steady load).
    const { stage: compressor } = await openCompressor(database.compression);
    const encryptor = input.encrypt ? createEncryptor(input.encrypt) : undefined;
    const put = storage.put(key, digest, { contentType: 'application/octet-stream' });
    try {
      await Promise.all([feed(path, start, end, input.buffer, compressor), pipeline([compressor, ...(encryptor ? [encryptor] : []), digest]), put]);
    } catch (err) {
      // The first failure ends the attempt: stop the rest (the feed stops at its next write; age is killed).
      compressor.destroy();
      encryptor?.destroy(err instanceof Error ? err : new Error(String(err)));
      digest.destroy();
      throw err;
    }
    const manifest: SegmentManifest = {
      format: 'backup-agent/binlog-segment',
      version: input.encrypt ? ENCRYPTED_SEGMENT_VERSION : SEGMENT_VERSION,
      database: database.name,
      file,
      start,
      end,
      firstEventAt: new Date(draft.firstTimestamp * 1000).toISOString(),
      lastEventAt: new Date(draft.lastTimestamp * 1000).toISOString(),
      gtidFirst: draft.first.size > 0 ? formatGtidPosition(draft.first) : null,
      gtidLast: draft.last.size > 0 ? formatGtidPosition(draft.last) : null,
      transactions: draft.transactions,
      serverId: header.serverId,
      fileCreatedAt: header.createdAt,
      nextFile: draft.nextFile,
      ...(draft.start === 0 ? { follows } : {}),
      object: { key, sizeBytes: digest.bytes, sha256: digest.sha256, compression: database.compression.algorithm, rawSizeBytes: end - start },
      ...(input.encrypt ? { encryption: recordOf(input.encrypt) } : {}),
      capturedAt: input.now().toISOString(),
      agent: { version: AGENT_VERSION, hostname: hostname() },
    };
    await commitSegment(storage, manifest);
    log.debug({ file, start, end, transactions: draft.transactions, waitedMs: began - draft.since, uploadMs: Date.now() - began }, 'binlog segment archived');
    return manifest;
  };
  // No signal for the retries: a stopping capture still gets its last segments out (a few tries).
  return withRetries(archiveOnce, {
    policy: SEGMENT_RETRY_POLICY,
    retryable: (_err, attempt) => !(input.signal.aborted && attempt >= ATTEMPTS_WHEN_STOPPING),
    onRetry: async (err, attempt, delayMs) => {
      log.error({ file, start, end, attempt, retryInMs: delayMs, error: messageOf(err) }, 'binlog segment upload failed; retrying');
      await input.onFailure(err, attempt);
    },
  });
}

/**
 * Writes bytes [start, end) of the file at `path` into `sink` through `buffer`, one chunk at a
 * time: the next read waits until the sink has consumed the chunk (its write callback), so the
 * buffer is reused, never handed on. A file shorter than `end` is an error, not a short segment.
 * On failure the sink is destroyed with the error, which fails the pipeline it heads.
 */
export async function feed(path: string, start: number, end: number, buffer: Buffer, sink: Writable): Promise<void> {
  try {
    const fh = await open(path, 'r');
    try {
      for (let at = start; at < end; ) {
        const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, end - at), at);
        if (bytesRead === 0) throw new Error(`read ${path}: it ends at ${at}, before the segment's end ${end}`);
        at += bytesRead;
        await written(sink, buffer.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
    sink.end();
  } catch (err) {
    if (!sink.destroyed) sink.destroy(err as Error);
    throw err;
  }
}

/** Resolves once `sink` has consumed `chunk`; rejects when it fails or closes first (a destroyed stage may never call back). */
function written(sink: Writable, chunk: Buffer): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onClose = () => reject(new Error('the compressor closed before it took the segment'));
    sink.once('close', onClose);
    sink.write(chunk, (err) => {
      sink.off('close', onClose);
      if (err) reject(err);
      else resolve();
    });
  });
}
