/**
 * The binlog capture's decisions, as pure functions: data in, data out, the clock passed in. The
 * shells that act on them: spool-tail.ts (reading the spool), supervision.ts (the tool's life) and
 * capture.ts (uploads, state, markers).
 */
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError } from '../errors.ts';

/** Uploads are failing: the latest error, since when, and how many attempts have failed. */
export interface StorageOutage {
  message: string;
  since: Date;
  attempts: number;
}

/** What a pass over a spooled file saw once it had read what was there. */
export interface FileProgress {
  /** The next file the tool has started writing, if any: this one will not grow any more. */
  later: string | undefined;
  /** The file's size once `later` was seen (-1: not measured, or no later file). */
  finalSize: number;
  /** Where the last whole event read ends; undefined while the file's header is not read. */
  completeEnd: number | undefined;
  /** Where the archive's copy of this file ends. */
  archived: number;
}

/**
 * Pure: the server's file ended before what the archive holds (a crash without sync_binlog lost
 * binlog the archive had already captured): nothing more can come from it.
 */
export function serverLostBinlog(progress: FileProgress): boolean {
  return progress.later !== undefined && progress.finalSize >= 0 && progress.finalSize < progress.archived;
}

/** Pure: the tool has moved on to a later file and every event of this one is read (or it lost binlog). */
export function fileFinished(progress: FileProgress): boolean {
  if (progress.later === undefined || progress.completeEnd === undefined || progress.finalSize < 0) return false;
  return progress.completeEnd === progress.finalSize || serverLostBinlog(progress);
}

/**
 * Pure: the segment being filled (first event at `since`, agent clock ms) is cut now: it is
 * `segmentAgeMs` old, its file is finished, or the tool is gone or stopping (nothing more will come
 * before a reconnect).
 */
export function draftDue(since: number, now: number, segmentAgeMs: number, why: { finished: boolean; toolGone: boolean; stopping: boolean }): boolean {
  return now - since >= segmentAgeMs || why.finished || why.toolGone || why.stopping;
}

/** Pure: nothing is waiting in a file: no segment filling or ready, and all the tool wrote is read (or there is no file yet). */
export function tailIdle(tail: { filling: boolean; ready: number; size: number; scanned: number }): boolean {
  return !tail.filling && tail.ready === 0 && (tail.size < 0 || tail.scanned >= tail.size);
}

/**
 * Pure: a complete-through marker is due: the tool is connected, everything it wrote is archived,
 * and the last marker is `intervalMs` old.
 */
export function markDue(input: { toolGone: boolean; idle: boolean; headerRead: boolean; size: number; archived: number; now: number; lastMarkAt: number; intervalMs: number }): boolean {
  return !input.toolGone && input.idle && input.headerRead && input.size === input.archived && input.now - input.lastMarkAt >= input.intervalMs;
}

/**
 * Pure: the spool bound is exceeded while uploads fail; the error says why. It bounds the bytes
 * fetched and not yet archived (the spool also holds the archived head of the current file, which
 * a reconnect fetches again: that part is bounded by the server's max_binlog_size). While uploads
 * succeed, a burst larger than the bound drains by itself and is no reason to fail.
 */
export function spoolOverLimit(database: DatabaseConfig, pendingBytes: number, storageError: StorageOutage | null): AgentError | undefined {
  const limit = database.binlog.max_spool_mb * 1024 * 1024;
  if (pendingBytes <= limit || !storageError) return undefined;
  return new AgentError(
    'storage',
    `binlog capture of ${database.name}: ${pendingBytes} bytes of binlog are waiting in the spool, over binlog.max_spool_mb (${database.binlog.max_spool_mb} MiB): uploads have failed since ${storageError.since.toISOString()} (${storageError.attempts} attempts; last: ${storageError.message.split('\n')[0]})`,
    { hint: 'fix the storage: the capture is restarted and resumes from the archive (the server must still have the binlog)' },
  );
}

/** The first wait before reconnecting, and the longest. */
export const RECONNECT_FIRST_MS = 1000;
export const RECONNECT_MAX_MS = 30_000;

/**
 * Pure: the wait before the next reconnect and the one after it. An attempt that archived something
 * starts the backoff over; each failed one doubles it, up to RECONNECT_MAX_MS.
 */
export function reconnectBackoff(currentMs: number, archivedSomething: boolean): { waitMs: number; nextMs: number } {
  const waitMs = archivedSomething ? RECONNECT_FIRST_MS : currentMs;
  return { waitMs, nextMs: Math.min(waitMs * 2, RECONNECT_MAX_MS) };
}

/** Pure: the tool's error says the file it was asked for is no longer on the server (purged before it was captured). */
export function purgedOnServer(toolError: string): boolean {
  return /Could not find first log file name/i.test(toolError);
}
