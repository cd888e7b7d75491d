import type { Logger } from 'pino';
import { manifestKeyOf } from '../catalog/catalog.ts';
import { checkData, type DataState } from '../catalog/data-check.ts';
import { listBackups, type ListOptions } from '../catalog/listing.ts';
import type { ManifestCache } from '../catalog/manifest-cache.ts';
import type { PackMode } from '../catalog/manifest-pack.ts';
import { CURRENT_LAYOUT_VERSION, LEGACY_LAYOUT_VERSION, MANIFEST_NAME, manifestKey, parseBackupKey } from '../catalog/keys.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';
import { chooseCover } from '../binlog/cover.ts';
import { binlogPrefix, compareFiles, parseSegmentKey, SEGMENT_DATA_KEY, type SegmentRef } from '../binlog/segments.ts';
import { acquireLock, lockKey } from './lock.ts';
import { newestRecords, recordFolder, type RecordSummary } from '../verify/record.ts';
import { PruneGuard } from '../lease/prune-guard.ts';
import { catalogUnreadableError, dataUnknownError } from './fail-closed.ts';
import { applyRetention, FAMILIES, type Family, type RetentionItem } from './policy.ts';

/** A backup as retention sees it, with the manifest it came from. */
export interface PruneCandidate extends RetentionItem {
  manifest: Manifest;
}

export interface PrunePlan {
  database: string;
  /** Every family's decisions, newest first. */
  keep: { manifest: Manifest; reasons: string[] }[];
  remove: Manifest[];
  /** The same decisions by family: each family's rules counted its own backups only. */
  families: { family: Family; keep: { manifest: Manifest; reasons: string[] }[]; remove: Manifest[] }[];
  /** Kept backups that cannot be restored (data missing or short, chain broken): reported, never counted. */
  unrestorable: { manifest: Manifest; problem: string }[];
  /** Objects under the database's prefix that belong to no backup (failed or abandoned uploads). */
  orphans: ObjectInfo[];
  binlog: BinlogPrunePlan;
}

/** Dumps are logical backups; full backups and incrementals are physical ones. */
export function familyOf(type: Manifest['type']): Family {
  return type === 'dump' ? 'logical' : 'physical';
}

function toCandidate(manifest: Manifest, data: DataState | undefined, verification: RecordSummary | undefined): PruneCandidate {
  return {
    // Its newest verification (agent verify) passed: retention keeps the newest such backup.
    verified: verification?.ok ? { depth: verification.depth, at: new Date(verification.at) } : undefined,
    id: manifest.id,
    time: new Date(manifest.startedAt),
    trigger: manifest.trigger,
    kind: manifest.type,
    family: familyOf(manifest.type),
    dataProblem: data?.state === 'missing' ? data.problem : undefined,
    // An incremental needs its parent (and, through it, the whole chain down to the full).
    dependsOn: manifest.physical?.parent ? [manifest.physical.parent] : [],
    pitrBaseAt: manifest.binlog ? new Date(manifest.completedAt) : undefined,
    manifest,
  };
}

/** What retention does with the binlog archive: files before `keepFrom` go. */
export interface BinlogPrunePlan {
  /** The first binlog file kept; null when the whole archive is kept. */
  keepFrom: string | null;
  reason: string;
  /** Files wholly before keepFrom, with their segment counts. */
  remove: { file: string; segments: number }[];
}

/**
 * Pure: binlog is worth keeping from the base that needs the oldest of it on. With pitr_window,
 * that is the base retention keeps for the window's start; without, the oldest kept backup that
 * has binlog coordinates (like pgBackRest: archive kept for every retained backup). Segments of
 * earlier files serve no restore and are removed.
 */
export function planBinlogRetention(keep: readonly { manifest: Manifest; reasons: string[] }[], segments: readonly SegmentRef[], pitr: boolean): BinlogPrunePlan {
  const withBinlog = keep.filter((k) => k.manifest.binlog);
  const floor = pitr ? withBinlog.find((k) => k.reasons.some((r) => r.startsWith('pitr_window'))) : withBinlog.at(-1);
  const files = [...new Set(segments.map((s) => s.file))];
  if (!floor?.manifest.binlog) {
    return { keepFrom: null, reason: 'no kept backup has binlog coordinates: the binlog archive is kept whole', remove: [] };
  }
  const keepFrom = floor.manifest.binlog.file;
  const why = pitr ? 'the base for the pitr_window' : 'the oldest kept backup with binlog coordinates';
  return {
    keepFrom,
    reason: `binlog from ${keepFrom} on: ${floor.manifest.type} ${floor.manifest.id} starts there (${why})`,
    remove: files.filter((f) => compareFiles(f, keepFrom) < 0).map((file) => ({ file, segments: segments.filter((s) => s.file === file).length })),
  };
}

/**
 * Pure: objects of `database` that are not part of any backup, old enough to be sure no upload is
 * still writing them (last modified before `now - graceMs`): keys in a backup folder of either
 * layout (keys.ts) whose backup has no manifest in either layout, and binlog segment data without
 * its segment manifest. Never an orphan: a key next to a manifest.json, a key of a backup in
 * `withManifest` (whichever layout it is in), a key a manifest names (`owned`), the lock, and
 * keys of no known shape.
 */
export function findOrphans(
  objects: readonly ObjectInfo[],
  database: string,
  withManifest: ReadonlySet<string>,
  now: Date,
  graceMs: number,
  owned: ReadonlySet<string> = new Set(),
): ObjectInfo[] {
  const keys = new Set(objects.map((o) => o.key));
  // A backup whose manifest key is listed, in either layout, is never an orphan, readable or not.
  const hasManifestKey = (id: string) => keys.has(manifestKey(database, id, LEGACY_LAYOUT_VERSION)) || keys.has(manifestKey(database, id, CURRENT_LAYOUT_VERSION));
  return objects.filter((o) => {
    if (o.key === lockKey(database) || owned.has(o.key)) return false;
    // A binlog segment's data with no segment manifest: an upload cut off before its commit.
    const segment = SEGMENT_DATA_KEY.exec(o.key);
    if (segment) return o.key.startsWith(`${database}/`) && !keys.has(`${segment[1]}.json`) && o.modifiedAt.getTime() < now.getTime() - graceMs;
    const backup = parseBackupKey(o.key);
    if (!backup || backup.database !== database || backup.name === '') return false;
    if (withManifest.has(backup.id) || hasManifestKey(backup.id) || backup.name === MANIFEST_NAME) return false;
    return o.modifiedAt.getTime() < now.getTime() - graceMs;
  });
}

/**
 * What prune would do for one database: the retention decision plus the orphans to clean up.
 * Fails closed: when a manifest cannot be read (or was written by a newer agent) or the store
 * cannot say whether a backup's data is there, it throws and nothing of the database is removed.
 */
export async function planPrune(
  storage: StorageDriver,
  database: DatabaseConfig,
  timeZone: string,
  now: Date,
  orphanGraceMs: number,
  listOptions: ListOptions = {},
): Promise<PrunePlan> {
  const { backups, unreadable, objects: listed } = await listBackups(storage, database.name, listOptions);
  if (unreadable.length > 0) throw catalogUnreadableError(database.name, unreadable);
  const data = await checkData(storage, backups, listed);
  const unknown = backups.flatMap((b) => {
    const state = data.get(b.id);
    return state?.state === 'unknown' ? [{ id: b.id, error: state.error }] : [];
  });
  if (unknown.length > 0) throw dataUnknownError(database.name, unknown);
  // Verification records sit in the backup folders the catalog listing walked: their keys say depth, time and result.
  const verifications = newestRecords(listed.keys());
  const result = applyRetention(
    backups.map((b) => toCandidate(b, data.get(b.id), verifications.get(b.id))),
    database.retention,
    timeZone,
    now,
  );
  // The backup folders came with the catalog listing; the binlog archive is listed on its own.
  const objects: ObjectInfo[] = [...listed.values()];
  for await (const o of storage.list(binlogPrefix(database.name))) objects.push(o);
  const keep = result.keep.map((k) => ({ manifest: k.item.manifest, reasons: k.reasons }));
  const remove = result.remove.map((r) => r.manifest);
  const segments = objects.flatMap((o) => {
    const parsed = parseSegmentKey(o.key);
    return parsed && parsed.database === database.name ? [parsed] : [];
  });
  return {
    database: database.name,
    // Counted over the readers' cover: a compaction's leftovers are not segments of their own.
    binlog: planBinlogRetention(keep, chooseCover(segments).cover, database.retention.pitrWindow !== undefined),
    keep,
    remove,
    families: FAMILIES.map((family) => ({
      family,
      keep: keep.filter((k) => familyOf(k.manifest.type) === family),
      remove: remove.filter((m) => familyOf(m.type) === family),
    })).filter((f) => f.keep.length + f.remove.length > 0),
    unrestorable: result.unrestorable.map((u) => ({ manifest: u.item.manifest, problem: u.problem })),
    orphans: findOrphans(
      objects,
      database.name,
      new Set(backups.map((b) => b.id)),
      now,
      orphanGraceMs,
      new Set(backups.flatMap((b) => b.objects.map((o) => o.key))),
    ),
  };
}

export interface PruneOutcome {
  removed: string[];
  orphansRemoved: string[];
  /** Unfinished uploads cleaned up (S3 multipart uploads, local temp files). */
  uploadsAborted: string[];
  /** Binlog files whose segments were removed. */
  binlogFilesRemoved: string[];
}

export interface PruneOptions {
  timeZone: string;
  orphanGraceMs: number;
  lockTtlMs: number;
  dryRun: boolean;
  logger: Logger;
  now?: () => Date;
  signal?: AbortSignal;
  /** Manifests already read (catalog/manifest-cache.ts): the listing still decides what exists. */
  cache?: ManifestCache | undefined;
  /** Whether the listing writes the store's manifest pack back when stale (catalog/manifest-pack.ts); never on a dry run. */
  pack?: PackMode | undefined;
}

/**
 * Prunes one database. A dry run only plans. Otherwise the plan is made and carried out under the
 * database's prune lock, so it sees no other prune's half-done work. Each backup goes manifest
 * first, then its data: a prune interrupted at any point leaves every backup that is still listed
 * complete, and at worst data without a manifest, which a later prune removes as an orphan.
 */
export async function prune(storage: StorageDriver, database: DatabaseConfig, options: PruneOptions): Promise<{ plan: PrunePlan; outcome: PruneOutcome | undefined }> {
  const now = options.now ?? (() => new Date());
  const log = options.logger.child({ database: database.name });
  // Leases first (running backups): what they protect is never an orphan, nor removed.
  const makePlan = async (guard: PruneGuard) => {
    const plan = await planPrune(storage, database, options.timeZone, now(), options.orphanGraceMs, {
      cache: options.cache,
      onCacheError: (err) => log.warn({ error: messageOf(err) }, 'could not write the manifest cache'),
      pack: options.dryRun ? (options.pack && 'read') : options.pack,
      onPackError: (err) => log.warn({ error: messageOf(err) }, 'could not use the manifest pack in the store; reading the manifests one by one'),
    });
    plan.orphans = guard.orphans(plan.orphans);
    guard.know([...plan.keep.map((k) => k.manifest), ...plan.remove]);
    for (const u of plan.unrestorable) log.warn({ backup: u.manifest.id, type: u.manifest.type, problem: u.problem }, 'backup cannot be restored: kept, not counted by retention');
    return plan;
  };
  if (options.dryRun) return { plan: await makePlan(await PruneGuard.load(storage, database.name, now)), outcome: undefined };

  const lock = await acquireLock(storage, { database: database.name, purpose: 'prune', ttlMs: options.lockTtlMs, now });
  const refresher = setInterval(() => {
    lock.refresh().catch((err: unknown) => log.error({ error: messageOf(err) }, 'could not refresh the prune lock'));
  }, Math.max(1000, Math.floor(options.lockTtlMs / 3)));
  try {
    const guard = await PruneGuard.load(storage, database.name, now);
    const plan = await makePlan(guard);
    const outcome: PruneOutcome = { removed: [], orphansRemoved: [], uploadsAborted: [], binlogFilesRemoved: [] };
    for (const manifest of plan.remove) {
      if (options.signal?.aborted) throw new AgentError('internal', 'prune cancelled', { cause: options.signal.reason });
      const needed = await guard.neededBy(manifest.id);
      if (needed) {
        log.warn({ backup: manifest.id, reason: needed }, 'backup kept: a running backup needs it');
        continue;
      }
      try {
        await storage.delete(manifestKeyOf(manifest));
        const restored = await guard.restoreIfNeeded(manifest);
        if (restored) {
          log.warn({ backup: manifest.id, reason: restored }, 'backup kept: a running backup needs it');
          continue;
        }
        for (const object of manifest.objects) await storage.delete(object.key);
        // Its verification records (agent verify) go with it: none outlives its backup.
        for await (const record of storage.list(recordFolder(manifest.database, manifest.id, manifest.version))) await storage.delete(record.key);
      } catch (err) {
        throw new AgentError('storage', `remove backup ${manifest.id} of ${database.name} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
      }
      outcome.removed.push(manifest.id);
      log.info({ backup: manifest.id, trigger: manifest.trigger, createdAt: manifest.startedAt }, 'backup removed by retention');
    }
    for (const { file, segments } of plan.binlog.remove) {
      // Segment manifests first: an interrupted prune leaves data without manifests (orphans), never a listed segment without data.
      const keys: string[] = [];
      for await (const o of storage.list(`${binlogPrefix(database.name)}${file}/`)) keys.push(o.key);
      keys.sort((a, b) => Number(b.endsWith('.json')) - Number(a.endsWith('.json')));
      try {
        for (const key of keys) await storage.delete(key);
      } catch (err) {
        throw new AgentError('storage', `remove binlog ${file} of ${database.name} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
      }
      outcome.binlogFilesRemoved.push(file);
      log.info({ file, segments, keepFrom: plan.binlog.keepFrom }, 'binlog file removed by retention');
    }
    for (const orphan of plan.orphans) {
      if (!(await guard.mayDeleteOrphan(orphan))) {
        log.info({ key: orphan.key }, 'orphan candidate kept: its backup is running or committed meanwhile');
        continue;
      }
      await storage.delete(orphan.key);
      outcome.orphansRemoved.push(orphan.key);
      log.info({ key: orphan.key, modifiedAt: orphan.modifiedAt.toISOString() }, 'orphaned object removed');
    }
    // Best effort: some S3-compatible stores (s3rver among them) do not implement listing
    // multipart uploads. The backups themselves are pruned either way.
    // Only uploads older than the lease read below can be unprotected leftovers: one started
    // after it belongs to a backup whose lease the read may have missed (a second of margin for
    // the store's clock).
    try {
      const leasesReadAt = now().getTime();
      await guard.refresh();
      const before = new Date(Math.min(now().getTime() - options.orphanGraceMs, leasesReadAt - 1000));
      outcome.uploadsAborted = await storage.abortIncompleteUploads(`${database.name}/`, before, guard.spare);
      for (const key of outcome.uploadsAborted) log.info({ key }, 'unfinished upload removed');
    } catch (err) {
      log.warn({ error: describeStorageError(err) }, 'could not clean up unfinished uploads');
    }
    // Last: an expired lease protected nothing above; removing it only tidies up after its dead holder.
    await guard.removeStale(log);
    return { plan, outcome };
  } finally {
    clearInterval(refresher);
    await lock.release().catch((err: unknown) => log.error({ error: messageOf(err) }, 'could not release the prune lock'));
  }
}
