import { setTimeout as sleep } from 'node:timers/promises';
import { isTransientStorageError } from './errors.ts';

/** How often and how patiently a storage request is retried. */
export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  /** The cap of the first wait; it doubles per attempt (full jitter: a random wait below the cap). */
  baseDelayMs: number;
  /** The largest cap a wait can reach. */
  maxDelayMs: number;
}

/** ~0.25 + 0.5 + 1 + 2 s of waits at most: rides out a store restart or a throttling burst. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 10_000 };

export interface RetryOptions {
  policy?: Partial<RetryPolicy>;
  signal?: AbortSignal;
  /** Which failures to retry (after failed attempt `attempt`); default isTransientStorageError. */
  retryable?: (err: unknown, attempt: number) => boolean;
  /**
   * Called after each failed attempt that will be retried, before the wait; awaited. Throwing
   * ends the retries with that error (a caller's own bound, e.g. the binlog spool's).
   */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void | Promise<void>;
}

/** The wait after failed attempt `attempt` (1-based): a random time below the capped exponential bound. */
export function retryDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const bound = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * bound);
}

/**
 * Decides after failed attempt `attempt`: throws `err` when it is not to be retried (aborted,
 * attempts used up, not retryable), else reports it and waits. An abort mid-wait rejects at once
 * with the signal's reason.
 */
export async function retryOrThrow(err: unknown, attempt: number, options: RetryOptions = {}): Promise<void> {
  const policy = { ...DEFAULT_RETRY_POLICY, ...options.policy };
  const retryable = options.retryable ?? isTransientStorageError;
  const { signal } = options;
  if (signal?.aborted || attempt >= policy.attempts || !retryable(err, attempt)) throw err;
  const delayMs = retryDelayMs(attempt, policy);
  await options.onRetry?.(err, attempt, delayMs);
  await sleep(delayMs, undefined, signal ? { signal } : {}).catch(() => signal?.throwIfAborted());
}

/**
 * Runs `fn` until it succeeds, fails with an error that is not retryable, or the attempts run
 * out (then the last error is thrown). An aborted signal ends it at once, also mid-wait, with the
 * signal's reason. The one retry loop of the agent: RetryingDriver, the parts of an S3 upload
 * and the binlog segment upload use it.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    options.signal?.throwIfAborted();
    try {
      return await fn(attempt);
    } catch (err) {
      await retryOrThrow(err, attempt, options);
    }
  }
}
