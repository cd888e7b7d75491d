import type { Logger } from 'pino';
import type { Compression, DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { compactArchive } from './compactor.ts';

/**
 * Compaction beside a running capture, off its hot path, under the same binlog writer lease (the
 * caller runs both inside `asBinlogWriter`, so two agents never compact one archive at once).
 * It runs once at start (a crashed run's leftovers), then only when there is work: a run says
 * when its earliest open window closes, and a new segment (`notify`) asks for a run at most every
 * `MIN_INTERVAL_MS`. An idle archive with nothing pending makes no requests at all.
 */

export const MIN_INTERVAL_MS = 5 * 60_000;
const RETRY_MS = 5 * 60_000;

export interface CompactionLoop {
  /** A segment was archived: compaction will have work once its window closes. */
  notify(): void;
  /** Stops after the current step (compaction is crash safe at every step) and resolves. */
  stop(): Promise<void>;
}

export function startCompactionLoop(options: { storage: StorageDriver; database: string; compression: Compression; log: Logger; signal: AbortSignal }): CompactionLoop {
  const controller = new AbortController();
  const signal = AbortSignal.any([options.signal, controller.signal]);
  const log = options.log.child({ part: 'compaction' });
  let dueAt: number | undefined = Date.now();
  let wake: (() => void) | undefined;
  const done = (async () => {
    while (!signal.aborted) {
      const wait = dueAt === undefined ? undefined : Math.max(0, dueAt - Date.now());
      await new Promise<void>((resolve) => {
        const timer = wait === undefined ? undefined : setTimeout(() => wake?.(), wait);
        const woken = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', woken);
          resolve();
        };
        wake = woken;
        signal.addEventListener('abort', woken, { once: true });
      });
      wake = undefined;
      if (signal.aborted) break;
      if (dueAt === undefined || Date.now() < dueAt) continue; // woken to reschedule
      try {
        const result = await compactArchive({ storage: options.storage, database: options.database, compression: options.compression, log, signal });
        dueAt = result.nextDueAt === undefined ? undefined : Math.max(result.nextDueAt, Date.now() + MIN_INTERVAL_MS);
        if (result.merged + result.removed > 0) log.debug({ ...result }, 'binlog compaction run finished');
      } catch (err) {
        if (signal.aborted) break;
        log.warn({ error: messageOf(err), retryInMs: RETRY_MS }, 'binlog compaction failed; the archive stays readable, retrying later');
        dueAt = Date.now() + RETRY_MS;
      }
    }
  })();
  return {
    notify() {
      if (dueAt !== undefined) return;
      dueAt = Date.now() + MIN_INTERVAL_MS;
      wake?.();
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
}

/** Runs `capture` with a compaction loop beside it (the caller holds the writer lease); stops the loop when the capture ends. */
export async function withCompaction<T>(
  options: { storage: StorageDriver; database: DatabaseConfig; log: Logger; signal: AbortSignal },
  capture: (compaction: CompactionLoop) => Promise<T>,
): Promise<T> {
  const { storage, database, log, signal } = options;
  if (database.encryption) {
    // Merging needs the plaintext: an encrypted archive is left as captured (the backup host has
    // only the public recipients, by design). Restores read its segments one by one.
    log.info('binlog compaction is off: the archive is encrypted and this host holds no key to merge it');
    return capture({ notify: () => undefined, stop: () => Promise.resolve() });
  }
  const loop = startCompactionLoop({ storage, database: database.name, compression: database.compression, log, signal });
  try {
    return await capture(loop);
  } finally {
    await loop.stop();
  }
}
