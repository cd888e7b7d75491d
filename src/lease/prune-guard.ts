import type { Logger } from 'pino';
import { commitManifest } from '../catalog/catalog.ts';
import { manifestKey, parseBackupKey } from '../catalog/keys.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { isProtectedKey, leaseProtection, readLeases, type LeaseProtection, type StoredLease } from './leases.ts';

/**
 * Prune's side of the leases. Prune reads every lease of the database before it plans (any it
 * cannot read stops it: it deletes nothing), and checks again right before each deletion, because
 * backups start while it works:
 *
 * - an orphan candidate is deleted only if, read in this order, no live lease names its backup and
 *   its manifest does not exist. A backup writes its lease before its data and removes it only
 *   after its manifest commits, so one of the two reads sees it.
 * - a backup is removed only if no live lease needs it (a running incremental's parent or that
 *   parent's chain), checked before its manifest goes and again after: an incremental names its
 *   parent in its lease and then checks the parent's manifest still exists, so if its lease landed
 *   after the first check, the second sees it and the manifest is put back before any data goes.
 */
export class PruneGuard {
  readonly #storage: StorageDriver;
  readonly #database: string;
  readonly #now: () => Date;
  #protection: LeaseProtection;
  /** Parent of each backup the plan knows, to walk a protected parent's chain. */
  readonly #parents = new Map<string, string | null>();

  private constructor(storage: StorageDriver, database: string, now: () => Date, protection: LeaseProtection) {
    this.#storage = storage;
    this.#database = database;
    this.#now = now;
    this.#protection = protection;
  }

  static async load(storage: StorageDriver, database: string, now: () => Date): Promise<PruneGuard> {
    return new PruneGuard(storage, database, now, leaseProtection(await readLeases(storage, database), new Map(), now()));
  }

  /** The backups the plan knows, for chains: call before checking removals. */
  know(manifests: readonly Manifest[]): void {
    for (const m of manifests) this.#parents.set(m.id, m.physical?.parent ?? null);
  }

  async #reread(): Promise<LeaseProtection> {
    this.#protection = leaseProtection(await readLeases(this.#storage, this.#database), this.#parents, this.#now());
    return this.#protection;
  }

  /** Orphan candidates minus what the leases read at load time protect (dry runs show this too). */
  orphans(candidates: readonly ObjectInfo[]): ObjectInfo[] {
    return candidates.filter((o) => !isProtectedKey(this.#protection, this.#database, o.key, o.modifiedAt));
  }

  /**
   * Reads the leases again, for abortIncompleteUploads: a backup that started after the plan was
   * made has a lease the load-time read did not see. Call it, then spare every upload younger
   * than the moment of the call (a backup writes its lease before its first byte).
   */
  async refresh(): Promise<void> {
    await this.#reread();
  }

  /** For abortIncompleteUploads: leave a running backup's (and the live binlog writer's) uploads alone. */
  readonly spare = (key: string, startedAt: Date): boolean => isProtectedKey(this.#protection, this.#database, key, startedAt);

  /** Right before deleting an orphan: leases first, then the manifest (see the class comment). */
  async mayDeleteOrphan(orphan: ObjectInfo): Promise<boolean> {
    if (isProtectedKey(await this.#reread(), this.#database, orphan.key, orphan.modifiedAt)) return false;
    const backup = parseBackupKey(orphan.key);
    const committed = backup ? manifestKey(this.#database, backup.id, backup.layout) : segmentManifestOf(orphan.key);
    if (!committed) return true;
    try {
      return (await this.#storage.stat(committed)) === undefined;
    } catch (err) {
      throw new AgentError('storage', `check ${committed} before removing ${orphan.key} from ${this.#storage.location}: ${describeStorageError(err)}`, { cause: err });
    }
  }

  /** Right before removing a backup: why a live lease needs it, or undefined. */
  async neededBy(id: string): Promise<string | undefined> {
    return (await this.#reread()).needed.get(id);
  }

  /**
   * After a backup's manifest went, before its data goes: if a lease now needs it, the manifest is
   * put back and the reason returned; the caller then keeps the data.
   */
  async restoreIfNeeded(manifest: Manifest): Promise<string | undefined> {
    const why = (await this.#reread()).needed.get(manifest.id);
    if (why) await commitManifest(this.#storage, manifest);
    return why;
  }

  /** Removes expired leases found at load time, if still the version found (a holder that came back keeps its own). */
  async removeStale(log: Logger): Promise<string[]> {
    const removed: string[] = [];
    for (const lease of this.#protection.stale) {
      if (await this.#storage.deleteIfMatch(lease.key, lease.version)) {
        removed.push(lease.key);
        log.info({ key: lease.key, holder: `${lease.record.host} (pid ${lease.record.pid})`, expiresAt: lease.record.expiresAt }, 'stale lease removed');
      }
    }
    return removed;
  }

  get stale(): readonly StoredLease[] {
    return this.#protection.stale;
  }
}

/** `<db>/binlog/<file>/<range>.binlog[.ext]` → its segment manifest `<range>.json`. */
function segmentManifestOf(key: string): string | undefined {
  const m = /^(.*\/binlog\/[^/]+\/\d{12}-\d{12})\.binlog(\.[a-z]+)?$/.exec(key);
  return m ? `${m[1]}.json` : undefined;
}
