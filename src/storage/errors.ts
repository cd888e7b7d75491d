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
