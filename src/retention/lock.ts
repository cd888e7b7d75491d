import type { StorageDriver } from '../storage/driver.ts';
import { acquireLease, type HeldLease, type LeaseRecord } from '../lease/lease.ts';

/**
 * The prune lock: a lease (src/lease/lease.ts) at `<database>/prune.lock`, so two agents on
 * different hosts that share a bucket never prune the same database at once. The owner refreshes
 * it while working; an expired one is stale and taken over (compare-and-swap on its version).
 */

export type LockRecord = LeaseRecord;
export type HeldLock = HeldLease;

export function lockKey(database: string): string {
  return `${database}/prune.lock`;
}

export interface AcquireOptions {
  database: string;
  purpose: string;
  ttlMs: number;
  now?: () => Date;
}

export function acquireLock(storage: StorageDriver, options: AcquireOptions): Promise<HeldLock> {
  return acquireLease(storage, {
    key: lockKey(options.database),
    purpose: options.purpose,
    subject: `database ${options.database}`,
    ttlMs: options.ttlMs,
    ...(options.now ? { now: options.now } : {}),
  });
}
