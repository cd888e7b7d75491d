import type { Logger } from 'pino';
import { listBackups } from '../catalog/catalog.ts';
import { isBackupId, MANIFEST_NAME, manifestKey } from '../catalog/keys.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { acquireLock, lockKey } from './lock.ts';
import { applyRetention, type RetentionItem } from './policy.ts';

/** A backup as retention sees it, with the manifest it came from. */
export interface PruneCandidate extends RetentionItem {
  manifest: Manifest;
}

export interface PrunePlan {
  database: string;
  keep: { manifest: Manifest; reasons: string[] }[];
  remove: Manifest[];
  /** Objects under the database's prefix that belong to no backup (failed or abandoned uploads). */
  orphans: ObjectInfo[];
}

function toCandidate(manifest: Manifest): PruneCandidate {
  return {
    id: manifest.id,
    time: new Date(manifest.startedAt),
    trigger: manifest.trigger,
    kind: manifest.type,
    // An incremental needs its parent (and, through it, the whole chain down to the full).
    dependsOn: manifest.physical?.parent ? [manifest.physical.parent] : [],
    manifest,
  };
}

/**
 * Pure: objects under `<database>/` that are not part of any backup, old enough to be sure no
 * upload is still writing them: keys under a backup ID with no manifest, last modified before
 * `now - graceMs`. The lock and unrecognised keys are left alone.
 */
export function findOrphans(objects: readonly ObjectInfo[], database: string, withManifest: ReadonlySet<string>, now: Date, graceMs: number): ObjectInfo[] {
  return objects.filter((o) => {
    if (o.key === lockKey(database)) return false;
    const [db, id, ...rest] = o.key.split('/');
    if (db !== database || !id || rest.length === 0 || !isBackupId(id)) return false;
    if (withManifest.has(id) || rest.join('/') === MANIFEST_NAME) return false;
    return o.modifiedAt.getTime() < now.getTime() - graceMs;
  });
}

/** What prune would do for one database: the retention decision plus the orphans to clean up. */
export async function planPrune(storage: StorageDriver, database: DatabaseConfig, timeZone: string, now: Date, orphanGraceMs: number): Promise<PrunePlan> {
  const { backups } = await listBackups(storage, database.name);
  const result = applyRetention(backups.map(toCandidate), database.retention, timeZone);
  const objects: ObjectInfo[] = [];
  for await (const o of storage.list(`${database.name}/`)) objects.push(o);
  return {
    database: database.name,
    keep: result.keep.map((k) => ({ manifest: k.item.manifest, reasons: k.reasons })),
    remove: result.remove.map((r) => r.manifest),
    orphans: findOrphans(objects, database.name, new Set(backups.map((b) => b.id)), now, orphanGraceMs),
  };
}

export interface PruneOutcome {
  removed: string[];
  orphansRemoved: string[];
  /** Unfinished uploads cleaned up (S3 multipart uploads, local temp files). */
  uploadsAborted: string[];
}

export interface PruneOptions {
  timeZone: string;
  orphanGraceMs: number;
  lockTtlMs: number;
  dryRun: boolean;
  logger: Logger;
  now?: () => Date;
  signal?: AbortSignal;
}

/**
 * Prunes one database. A dry run only plans. Otherwise the plan is made and carried out under the
 * database's prune lock, so it sees no other prune's half-done work. Each backup goes manifest
 * first, then its data: a prune interrupted at any point leaves every backup that is still listed
 * complete, and at worst data without a manifest, which a later prune removes as an orphan.
 */
export async function prune(storage: StorageDriver, database: DatabaseConfig, options: PruneOptions): Promise<{ plan: PrunePlan; outcome: PruneOutcome | undefined }> {
  const now = options.now ?? (() => new Date());
  const makePlan = () => planPrune(storage, database, options.timeZone, now(), options.orphanGraceMs);
  if (options.dryRun) return { plan: await makePlan(), outcome: undefined };

  const lock = await acquireLock(storage, { database: database.name, purpose: 'prune', ttlMs: options.lockTtlMs, now });
  const log = options.logger.child({ database: database.name });
  const refresher = setInterval(() => {
    lock.refresh().catch((err: unknown) => log.error({ error: messageOf(err) }, 'could not refresh the prune lock'));
  }, Math.max(1000, Math.floor(options.lockTtlMs / 3)));
  try {
    const plan = await makePlan();
    const outcome: PruneOutcome = { removed: [], orphansRemoved: [], uploadsAborted: [] };
    for (const manifest of plan.remove) {
      if (options.signal?.aborted) throw new AgentError('internal', 'prune cancelled', { cause: options.signal.reason });
      try {
        await storage.delete(manifestKey(manifest.database, manifest.id));
        for (const object of manifest.objects) await storage.delete(object.key);
      } catch (err) {
        throw new AgentError('storage', `remove backup ${manifest.id} of ${database.name} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
      }
      outcome.removed.push(manifest.id);
      log.info({ backup: manifest.id, trigger: manifest.trigger, createdAt: manifest.startedAt }, 'backup removed by retention');
    }
    for (const orphan of plan.orphans) {
      await storage.delete(orphan.key);
      outcome.orphansRemoved.push(orphan.key);
      log.info({ key: orphan.key, modifiedAt: orphan.modifiedAt.toISOString() }, 'orphaned object removed');
    }
    // Best effort: some S3-compatible stores (s3rver among them) do not implement listing
    // multipart uploads. The backups themselves are pruned either way.
    const before = new Date(now().getTime() - options.orphanGraceMs);
    try {
      outcome.uploadsAborted = (await storage.abortIncompleteUploads?.(`${database.name}/`, before)) ?? [];
      for (const key of outcome.uploadsAborted) log.info({ key }, 'unfinished upload removed');
    } catch (err) {
      log.warn({ error: describeStorageError(err) }, 'could not clean up unfinished uploads');
    }
    return { plan, outcome };
  } finally {
    clearInterval(refresher);
    await lock.release().catch((err: unknown) => log.error({ error: messageOf(err) }, 'could not release the prune lock'));
  }
}
