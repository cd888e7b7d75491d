import { messageOf } from '../errors.ts';

/**
 * A one-line description of a storage failure that a person can act on. SDK errors carry their
 * meaning in `name`/`Code` and HTTP status more than in `message` (s3rver answers some failures
 * with an empty message), and network errors in `code`.
 */
export function describeStorageError(err: unknown): string {
  const e = err as { name?: string; Code?: string; code?: string | number; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  const name = e?.Code ?? (e?.name && e.name !== 'Error' ? e.name : undefined);
  const parts = [messageOf(err)];
  if (name && !parts[0]?.includes(name)) parts.push(name);
  if (status) parts.push(`HTTP ${status}`);
  if (typeof e?.code === 'string' && !parts[0]?.includes(e.code)) parts.push(e.code);
  return parts.filter(Boolean).join(' — ') || 'unknown error';
}

/** What the user can do about a storage failure, when its kind is recognisable. */
export function storageHint(err: unknown): string | undefined {
  const e = err as { name?: string; Code?: string; code?: string | number; $metadata?: { httpStatusCode?: number } };
  const name = e?.Code ?? e?.name ?? '';
  const status = e?.$metadata?.httpStatusCode ?? (typeof e?.code === 'number' ? e.code : undefined);
  if (/InvalidAccessKeyId|SignatureDoesNotMatch|AccessDenied|Forbidden|ExpiredToken/.test(name) || status === 401 || status === 403) {
    return 'the store rejected the credentials: check access_key_id/secret_access_key (or credentials_file) and the bucket policy';
  }
  if (/NoSuchBucket/.test(name)) return 'the bucket does not exist: create it, or fix bucket: in the configuration';
  if (e?.code === 'ECONNREFUSED' || e?.code === 'ENOTFOUND' || e?.code === 'ETIMEDOUT' || e?.code === 'EAI_AGAIN') {
    return 'the storage endpoint cannot be reached: check endpoint: and the network';
  }
  if (e?.code === 'EACCES' || e?.code === 'EROFS') return 'the agent cannot write to the storage path: check its permissions';
  if (e?.code === 'ENOTDIR') return 'the storage path (or a directory in it) is a file, not a directory: fix path: in the storage configuration';
  if (e?.code === 'ENOENT' && (err as { syscall?: string }).syscall === 'mkdir') {
    return 'the storage path cannot be created there: fix path: in the storage configuration (a directory the agent may create)';
  }
  if (e?.code === 'ENOSPC' || e?.code === 'EDQUOT') return 'the storage is full: free space there (agent prune removes what retention allows) or give it more';
  return undefined;
}

/** `{ hint }` for AgentError options when a hint applies, else `{}`. */
export function storageHintOption(err: unknown): { hint?: string } {
  const hint = storageHint(err);
  return hint === undefined ? {} : { hint };
}

/** Network failures where the request may not have reached the store, or its answer was lost. */
const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'ESOCKETTIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/** Store answers that mean "try again later": throttling and server-side failures. */
const TRANSIENT_NAMES = /^(SlowDown|Throttling|ThrottlingException|TooManyRequests|RequestTimeout|RequestTimeoutException|InternalError|ServiceUnavailable|TimeoutError)$/;

/**
 * Whether a storage failure is worth retrying: a network reset or timeout, HTTP 408/429/5xx, or
 * the S3/GCS names for throttling. Never a cancellation, a missing object, a refused credential
 * or a failed precondition: those are answers, and asking again gives the same one.
 */
export function isTransientStorageError(err: unknown, depth = 0): boolean {
  const e = err as { name?: string; Code?: string; code?: string | number; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; cause?: unknown; message?: string } | undefined;
  if (!e || typeof e !== 'object') return false;
  if (e.name === 'AbortError' || e.name === 'StorageNotFoundError') return false;
  const status = e.$metadata?.httpStatusCode ?? (typeof e.code === 'number' ? e.code : undefined);
  if (status !== undefined && status >= 400) return status === 408 || status === 429 || status >= 500;
  if (e.$retryable) return true;
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  if (TRANSIENT_NAMES.test(e.Code ?? e.name ?? '')) return true;
  if (e.message === 'socket hang up') return true;
  return depth < 3 && e.cause !== undefined && isTransientStorageError(e.cause, depth + 1);
}
