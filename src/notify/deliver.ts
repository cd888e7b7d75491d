import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Secret } from '../config/secret.ts';
import { messageOf } from '../errors.ts';

export interface DeliveryRequest {
  /** May carry a token (in the path or query): revealed only to make the request, never logged. */
  url: Secret;
  method: 'GET' | 'POST';
  /** A string is sent as text/plain; anything else as JSON. */
  body?: unknown;
}

export interface DeliveryOptions {
  /** Attempts in all, the first included (at least 1). */
  attempts: number;
  /** Per attempt, the whole exchange included. */
  timeoutMs: number;
  /** The wait before the second attempt; it doubles after each failure. Default 1000 ms. */
  backoffMs?: number;
  logger: Logger;
  /** What is being delivered, for the logs, e.g. "webhook" or "heartbeat start". */
  what: string;
  /** Aborting stops at once (the current attempt and any further ones): the delivery is given up. */
  signal?: AbortSignal;
}

/** No single wait longer than this, whatever the backoff or a Retry-After header asks. */
const MAX_DELAY_MS = 30_000;

/**
 * How a URL may appear in logs and errors: its origin only (`https://hc-ping.com/…`), since the
 * path or query of a webhook or ping URL is often the token itself.
 */
export function displayUrl(url: Secret): string {
  try {
    const parsed = new URL(url.reveal());
    const rest = parsed.username + parsed.password + parsed.pathname.replace(/^\/$/, '') + parsed.search + parsed.hash;
    return rest === '' ? parsed.origin : `${parsed.origin}/…`;
  } catch {
    // An unparseable URL could be anything, the token included: show none of it.
    return '(invalid url)';
  }
}

type Attempt =
  | { outcome: 'delivered'; status: number }
  | { outcome: 'retry'; status?: number; error?: string; retryAfterMs?: number }
  | { outcome: 'refused'; status: number }
  | { outcome: 'invalid'; error: string };

/**
 * Delivers one HTTP notification with retries: network errors, timeouts, 5xx and 429 are retried
 * with exponential backoff; other 4xx are not (the same request would be refused again). Resolves
 * true once delivered, false when given up. Never throws: a lost notification is logged at error,
 * and must never fail the backup it reports on.
 */
export async function deliver(request: DeliveryRequest, options: DeliveryOptions): Promise<boolean> {
  const target = displayUrl(request.url);
  const log = options.logger;
  const attempts = Math.max(1, Math.floor(options.attempts));
  let delay = options.backoffMs ?? 1000;
  const fields = { notification: options.what, target, attempts };

  for (let attempt = 1; attempt <= attempts; attempt++) {
    if (options.signal?.aborted) break;
    const result = await attemptOnce(request, options);
    if (result.outcome === 'delivered') {
      log.debug({ ...fields, attempt, status: result.status }, 'notification delivered');
      return true;
    }
    if (result.outcome === 'invalid') {
      log.error({ ...fields, attempt, err: result.error }, 'notification cannot be sent');
      return false;
    }
    if (result.outcome === 'refused') {
      log.error({ ...fields, attempt, status: result.status }, 'notification refused, not retrying');
      return false;
    }
    const reason = result.status !== undefined ? { status: result.status } : { err: result.error };
    if (attempt === attempts || options.signal?.aborted) {
      log.error({ ...fields, attempt, ...reason }, 'notification not delivered, giving up');
      return false;
    }
    const wait = Math.min(Math.max(delay, result.retryAfterMs ?? 0), MAX_DELAY_MS);
    log.warn({ ...fields, attempt, ...reason, retryInMs: wait }, 'notification attempt failed');
    try {
      await sleep(wait, undefined, options.signal ? { signal: options.signal } : undefined);
    } catch {
      // Only an abort rejects the sleep; it is reported just below.
      break;
    }
    delay *= 2;
  }
  log.error({ ...fields }, 'notification not delivered, cancelled');
  return false;
}

async function attemptOnce(request: DeliveryRequest, options: DeliveryOptions): Promise<Attempt> {
  let prepared: { url: string; init: RequestInit };
  try {
    prepared = prepare(request);
  } catch (err) {
    return { outcome: 'invalid', error: describe(err, undefined, request.url) };
  }
  const timeout = AbortSignal.timeout(options.timeoutMs);
  const signal = options.signal ? AbortSignal.any([timeout, options.signal]) : timeout;
  try {
    const response = await fetch(prepared.url, { ...prepared.init, signal });
    // Read the body to the end (it is small) so the connection is reused, and so a reset midway counts as a failure.
    await response.arrayBuffer();
    const { status } = response;
    if (status < 400) return { outcome: 'delivered', status };
    if (status === 429 || status >= 500) return { outcome: 'retry', status, ...retryAfter(response.headers.get('retry-after')) };
    return { outcome: 'refused', status };
  } catch (err) {
    return { outcome: 'retry', error: describe(err, timeout, request.url) };
  }
}

/** The fetch arguments; throws on a URL or body that no attempt could send. */
function prepare(request: DeliveryRequest): { url: string; init: RequestInit } {
  const { url, authorization } = splitCredentials(request.url.reveal());
  const headers: Record<string, string> = { 'user-agent': 'backup-agent' };
  if (authorization !== undefined) headers['authorization'] = authorization;
  let body: string | undefined;
  if (request.body !== undefined) {
    const isText = typeof request.body === 'string';
    body = isText ? (request.body as string) : JSON.stringify(request.body);
    headers['content-type'] = isText ? 'text/plain; charset=utf-8' : 'application/json';
  }
  return { url, init: { method: request.method, headers, body, redirect: 'follow' } };
}

/**
 * fetch refuses URLs with credentials (`https://user:pass@host/…`); receivers behind basic auth
 * are common, so move them to an Authorization header.
 */
function splitCredentials(text: string): { url: string; authorization?: string } {
  const parsed = new URL(text);
  if (parsed.username === '' && parsed.password === '') return { url: text };
  const credentials = `${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`;
  parsed.username = '';
  parsed.password = '';
  return { url: parsed.toString(), authorization: `Basic ${Buffer.from(credentials).toString('base64')}` };
}

/** Retry-After in seconds (the HTTP-date form is rare for these services and is ignored). */
function retryAfter(header: string | null): { retryAfterMs?: number } {
  if (header === null || !/^\d+$/.test(header.trim())) return {};
  return { retryAfterMs: Number(header.trim()) * 1000 };
}

/**
 * The cause of a failed attempt in words, without the URL: fetch's "fetch failed" says nothing,
 * the useful part (ECONNREFUSED, ENOTFOUND, a TLS error) is its cause.
 */
function describe(err: unknown, timeout: AbortSignal | undefined, url: Secret): string {
  if (timeout?.aborted) return 'timed out';
  const cause = err instanceof Error && err.cause !== undefined ? messageOf(err.cause) : undefined;
  const text = cause ? `${messageOf(err)}: ${cause}` : messageOf(err);
  // Belt and braces: no error message we know of quotes the URL, but one that did would leak the token.
  let safe = text;
  for (const form of urlForms(url.reveal())) safe = safe.split(form).join(displayUrl(url));
  return safe;
}

function urlForms(text: string): string[] {
  try {
    const parsed = new URL(text);
    const bare = new URL(text);
    bare.username = '';
    bare.password = '';
    return [...new Set([text, parsed.href, bare.href])].sort((a, b) => b.length - a.length);
  } catch {
    return [text];
  }
}
