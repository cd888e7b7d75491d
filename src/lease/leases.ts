import { isBackupId, parseBackupKey } from '../catalog/keys.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { holderIsGone, isLive, parseLease, type LeaseRecord } from './lease.ts';

/**
 * Where leases live and what they protect (docs/FORMAT.md):
 *
 *   <database>/leases/<backup-id>.json   a running backup (id, type, parent), until its manifest commits
 *   <database>/leases/binlog.json        the one writer of the database's binlog archive
 *
 * A third path segment under `leases/`, so no older agent takes a lease for a backup (it is not
 * `<database>/<backup-id>/…`) or a binlog segment (not under `binlog/`).
 */

export function leasePrefix(database: string): string {
  return `${database}/leases/`;
}

export function backupLeaseKey(database: string, id: string): string {
  return `${leasePrefix(database)}${id}.json`;
}

export function binlogLeaseKey(database: string): string {
  return `${leasePrefix(database)}binlog.json`;
}

export interface StoredLease {
  key: string;
  version: string;
  record: LeaseRecord;
}

/**
 * Every lease of `database`. Fails closed: a lease that cannot be listed, read or parsed is an
 * error (AgentError 'storage' or 'integrity'), because prune cannot know what it protects. A lease
 * removed between listing and reading is simply gone.
 */
export async function readLeases(storage: StorageDriver, database: string): Promise<StoredLease[]> {
  const keys: string[] = [];
  try {
    for await (const o of storage.list(leasePrefix(database))) if (o.key.endsWith('.json')) keys.push(o.key);
  } catch (err) {
    throw new AgentError('storage', `list the leases of ${database} in ${storage.location}: ${describeStorageError(err)}`, { cause: err });
  }
  const leases: StoredLease[] = [];
  for (const key of keys) {
    let found;
    try {
      found = await storage.getVersioned(key);
    } catch (err) {
      throw new AgentError('storage', `read lease ${key} in ${storage.location}: ${describeStorageError(err)}`, { cause: err });
    }
    if (!found) continue;
    try {
      leases.push({ key, version: found.version, record: parseLease(found.data) });
    } catch (err) {
      throw new AgentError('integrity', `read lease ${key} in ${storage.location}: ${messageOf(err)}`, {
        cause: err,
        hint: 'prune deletes nothing for this database while it cannot tell what the lease protects: remove the object if no agent is running',
      });
    }
  }
  return leases;
}

/** What the live leases of one database protect from prune. */
export interface LeaseProtection {
  /** Running backups: their keys are never orphans, their uploads never aborted. */
  running: Set<string>;
  /** Backups that must not be removed, with why: parents of running incrementals and their chains. */
  needed: Map<string, string>;
  /** The live binlog writer's start: segments it wrote since are never orphans. */
  binlogWriterSince: Date | undefined;
  /** Expired leases: their holders died or hung. */
  stale: StoredLease[];
}

/** Pure: the protection of `leases` at `now`, walking each named parent's chain through `parents`. */
export function leaseProtection(leases: readonly StoredLease[], parents: ReadonlyMap<string, string | null>, now: Date): LeaseProtection {
  const out: LeaseProtection = { running: new Set(), needed: new Map(), binlogWriterSince: undefined, stale: [] };
  for (const lease of leases) {
    const { record } = lease;
    // Expired, or its holder was killed on this machine (kill -9 of a run-now): it protects nothing.
    if (!isLive(record, now) || holderIsGone(record)) {
      out.stale.push(lease);
      continue;
    }
    if (record.backup && isBackupId(record.backup.id)) {
      out.running.add(record.backup.id);
      const seen = new Set<string>();
      for (let id = record.backup.parent; id && !seen.has(id); id = parents.get(id) ?? null) {
        seen.add(id);
        if (!out.needed.has(id)) out.needed.set(id, `base of running ${record.backup.type} ${record.backup.id} (${record.host}, pid ${record.pid})`);
      }
    } else if (lease.key.endsWith('/leases/binlog.json')) {
      const since = new Date(record.acquiredAt);
      out.binlogWriterSince = Number.isNaN(since.getTime()) ? new Date(0) : since;
    }
  }
  return out;
}

/**
 * Pure: whether prune must leave `key` alone (as an orphan, or as an unfinished upload started at
 * `startedAt`): keys of a running backup, lease objects themselves, and binlog written since the
 * live writer started.
 */
export function isProtectedKey(protection: LeaseProtection, database: string, key: string, startedAt: Date): boolean {
  if (key.startsWith(leasePrefix(database))) return true;
  const [db, second] = key.split('/');
  if (db !== database || !second) return false;
  // A running backup's folder, in either layout (catalog/keys.ts).
  const backup = parseBackupKey(key);
  if (backup && protection.running.has(backup.id)) return true;
  return second === 'binlog' && protection.binlogWriterSince !== undefined && startedAt.getTime() >= protection.binlogWriterSince.getTime();
}
