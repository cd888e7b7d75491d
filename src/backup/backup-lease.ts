import type { Logger } from 'pino';
import type { BackupType } from '../catalog/manifest.ts';
import { messageOf } from '../errors.ts';
import { keepLease } from '../lease/keeper.ts';
import { acquireLease } from '../lease/lease.ts';
import { backupLeaseKey } from '../lease/leases.ts';
import type { StorageDriver } from '../storage/driver.ts';

/**
 * The lease of a running backup (`<database>/leases/<id>.json`): taken before anything is
 * written, refreshed while it runs, removed after the manifest commits (or after the cleanup of
 * a failure). Prune honours it: the backup's objects are never orphans, its uploads are never
 * aborted, and the parent it names (with that parent's chain) is never removed.
 */
export interface BackupLease {
  /** Aborted when the lease is lost: the backup must stop, prune no longer spares it. */
  readonly signal: AbortSignal;
  /** Rewrites the lease with the type and parent chosen from the catalog. */
  name(type: BackupType, parent: string | null): Promise<void>;
  /** Right before the manifest commit: refreshes the lease, rejecting if it was lost. */
  confirm(): Promise<void>;
  /** Releases the lease; a failure is logged (the lease then expires on its own). */
  end(): Promise<void>;
}

export interface BackupLeaseRequest {
  storage: StorageDriver;
  database: string;
  id: string;
  type: BackupType;
  ttlMs: number;
  log: Logger;
  now?: () => Date;
}

export async function takeBackupLease(request: BackupLeaseRequest): Promise<BackupLease> {
  const { storage, database, id, log } = request;
  let backup = { id, type: request.type as string, parent: null as string | null };
  const held = await acquireLease(storage, {
    key: backupLeaseKey(database, id),
    purpose: 'backup',
    subject: `backup ${id} of ${database}`,
    ttlMs: request.ttlMs,
    backup,
    ...(request.now ? { now: request.now } : {}),
  });
  const keeper = keepLease(held, (err) => log.warn({ error: messageOf(err) }, 'could not refresh the backup lease; retrying'), request.now);
  return {
    signal: keeper.signal,
    async name(type, parent) {
      backup = { id, type, parent };
      await keeper.refreshNow({ backup });
    },
    confirm: () => keeper.refreshNow(),
    async end() {
      try {
        await keeper.stop();
      } catch (err) {
        log.warn({ error: messageOf(err), key: held.key }, 'could not remove the backup lease; it expires on its own');
      }
    },
  };
}
