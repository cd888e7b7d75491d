import type { Readable } from 'node:stream';
import { BufferBody } from './buffer-body.ts';
import type { CallOptions, GetOptions, ObjectInfo, PutOptions, StorageDriver, VersionedObject } from './driver.ts';
import { ForwardingDriver } from './forwarding.ts';
import { retryOrThrow, withRetries, type RetryOptions, type RetryPolicy } from './retry-loop.ts';

export interface RetryReport {
  method: string;
  key: string;
  attempt: number;
  delayMs: number;
  error: unknown;
}

export interface RetryingDriverOptions {
  policy?: Partial<RetryPolicy>;
  /** Each failed attempt that will be retried (to log it), before the wait. */
  onRetry?: (report: RetryReport) => void;
}

/**
 * Retries the transient failures of any driver (network resets, timeouts, HTTP 408/429/5xx: see
 * isTransientStorageError) with capped exponential backoff and full jitter, so the drivers stay
 * dumb and no caller writes its own loop (restic's backend/retry). Answers are never retried (a
 * missing object, a refused credential, a failed precondition), an aborted signal ends the wait
 * at once, and:
 * - put is retried only for a BufferBody (bytes in memory); a streamed body is read once and
 *   cannot be replayed, so its failure goes to the caller (the S3 driver retries each buffered
 *   part of a streamed upload itself).
 * - get retries opening the object; a failure of the stream once opened is the reader's.
 * - list and listPrefixes resume after the last key they yielded (ascending order), so a retry
 *   never repeats or skips an entry.
 * - a conditional write whose request failed may still have been applied: before trying again
 *   it reads the object back and compares with what it wrote (same bytes: it was ours; a write
 *   by another writer of the very same bytes would be taken as ours, which for lease records
 *   that name their owner does not happen).
 */
export class RetryingDriver extends ForwardingDriver {
  readonly #options: RetryingDriverOptions;

  constructor(inner: StorageDriver, options: RetryingDriverOptions = {}) {
    super(inner);
    this.#options = options;
  }

  #retryOptions(method: string, key: string, options: CallOptions | undefined): RetryOptions {
    const { onRetry, policy } = this.#options;
    return {
      ...(policy ? { policy } : {}),
      ...(options?.signal ? { signal: options.signal } : {}),
      ...(onRetry ? { onRetry: (error: unknown, attempt: number, delayMs: number) => onRetry({ method, key, attempt, delayMs, error }) } : {}),
    };
  }

  #retry<T>(method: string, key: string, options: CallOptions | undefined, fn: (attempt: number) => Promise<T>): Promise<T> {
    return withRetries(fn, this.#retryOptions(method, key, options));
  }

  override put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    if (!(body instanceof BufferBody)) return this.inner.put(key, body, options);
    return this.#retry('put', key, options, (attempt) => this.inner.put(key, attempt === 1 ? body : body.replay(), options));
  }

  override get(key: string, options?: GetOptions): Promise<Readable> {
    return this.#retry('get', key, options, () => this.inner.get(key, options));
  }

  override getVersioned(key: string, options?: CallOptions): Promise<VersionedObject | undefined> {
    return this.#retry('getVersioned', key, options, () => this.inner.getVersioned(key, options));
  }

  override stat(key: string, options?: CallOptions): Promise<ObjectInfo | undefined> {
    return this.#retry('stat', key, options, () => this.inner.stat(key, options));
  }

  override delete(key: string, options?: CallOptions): Promise<void> {
    return this.#retry('delete', key, options, () => this.inner.delete(key, options));
  }

  override list(prefix: string, options?: CallOptions): AsyncIterable<ObjectInfo> {
    return this.#resuming('list', prefix, options, () => this.inner.list(prefix, options), (info) => info.key);
  }

  override listPrefixes(prefix: string, options?: CallOptions): AsyncIterable<string> {
    return this.#resuming('listPrefixes', prefix, options, () => this.inner.listPrefixes(prefix, options), (dir) => dir);
  }

  /** Lists again after a transient failure, skipping what was yielded; progress resets the attempts. */
  async *#resuming<T>(method: string, prefix: string, options: CallOptions | undefined, open: () => AsyncIterable<T>, keyOf: (item: T) => string): AsyncIterable<T> {
    let last: string | undefined;
    for (let attempt = 1, resumed = false; ; attempt++, resumed = true) {
      try {
        for await (const item of open()) {
          const key = keyOf(item);
          if (resumed && last !== undefined && key <= last) continue;
          last = key;
          attempt = 1;
          yield item;
        }
        return;
      } catch (err) {
        await retryOrThrow(err, attempt, this.#retryOptions(method, prefix, options));
      }
    }
  }

  override putIfAbsent(key: string, data: Buffer, options?: CallOptions): Promise<string | undefined> {
    return this.#retry('putIfAbsent', key, options, async (attempt) => {
      if (attempt > 1) {
        const current = await this.inner.getVersioned(key, options);
        if (current) return current.data.equals(data) ? current.version : undefined;
      }
      return this.inner.putIfAbsent(key, data, options);
    });
  }

  override putIfMatch(key: string, data: Buffer, version: string, options?: CallOptions): Promise<string | undefined> {
    return this.#retry('putIfMatch', key, options, async (attempt) => {
      if (attempt > 1) {
        const current = await this.inner.getVersioned(key, options);
        if (!current) return undefined;
        if (current.version !== version) return current.data.equals(data) ? current.version : undefined;
      }
      return this.inner.putIfMatch(key, data, version, options);
    });
  }

  override deleteIfMatch(key: string, version: string, options?: CallOptions): Promise<boolean> {
    return this.#retry('deleteIfMatch', key, options, async (attempt) => {
      if (attempt > 1) {
        const current = await this.inner.getVersioned(key, options);
        if (!current) return true; // gone: the failed attempt removed it
        if (current.version !== version) return false;
      }
      return this.inner.deleteIfMatch(key, version, options);
    });
  }

  override abortIncompleteUploads(prefix: string, before: Date, spare?: (key: string, startedAt: Date) => boolean, options?: CallOptions): Promise<string[]> {
    return this.#retry('abortIncompleteUploads', prefix, options, () => this.inner.abortIncompleteUploads(prefix, before, spare, options));
  }
}
