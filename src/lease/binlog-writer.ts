import type { Logger } from 'pino';
import { messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { keepLease } from './keeper.ts';
import { acquireLease } from './lease.ts';
import { binlogLeaseKey } from './leases.ts';

export interface BinlogWriterOptions {
  storage: StorageDriver;
  database: string;
  ttlMs: number;
  log: Logger;
  /** The caller's stop signal (SIGTERM, daemon shutdown). */
  signal: AbortSignal;
}

/**
 * Runs a binlog capture as the one writer of the database's archive: takes the lease
 * `<database>/leases/binlog.json` (a second writer — the other daemon of an HA pair, or `agent
 * binlog capture` beside a daemon — gets a 'locked' AgentError naming the holder, exit 3), keeps
 * it refreshed, stops the capture through its signal if the lease is lost, and releases it when
 * the capture ends. Wraps the capture from the outside: the capture loop knows nothing of leases.
 */
export async function asBinlogWriter<T>(options: BinlogWriterOptions, capture: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const { storage, database, log } = options;
  const held = await acquireLease(storage, {
    key: binlogLeaseKey(database),
    purpose: 'binlog capture',
    subject: `the binlog archive of ${database}`,
    ttlMs: options.ttlMs,
  });
  const keeper = keepLease(held, (err) => log.warn({ error: messageOf(err) }, 'could not refresh the binlog writer lease; retrying'));
  let result: T;
  try {
    result = await capture(AbortSignal.any([options.signal, keeper.signal]));
  } finally {
    await keeper.stop().catch((err: unknown) => log.warn({ error: messageOf(err), key: held.key }, 'could not remove the binlog writer lease; it expires on its own'));
  }
  // A capture stopped because the lease was lost ends "normally": report it as the failure it is.
  if (keeper.signal.aborted && !options.signal.aborted) throw keeper.signal.reason as Error;
  return result;
}
