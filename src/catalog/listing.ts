import { text } from 'node:stream/consumers';
import { AgentError, messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { backupsPrefix, databasePrefix, isPastLegacyKeys, manifestKey, parseManifestKey } from './keys.ts';
import type { ManifestCache } from './manifest-cache.ts';
import { NewerManifestError, parseManifest, type Manifest } from './manifest.ts';
import { mapLimit } from './map-limit.ts';
import { type ManifestPack, PACK_MIN_CHANGES, packIsStale, readManifestPack, writeManifestPack, type PackMode } from './manifest-pack.ts';

/**
 * Listing the catalog: the manifests of both layouts (keys.ts), read through a local cache. The
 * cost grows with the backups, never with the binlog archive: in key order a database's legacy
 * backup folders (IDs start with a digit) come first, then `backups/`, then `binlog/`, `leases/`
 * and `prune.lock`; one listing of `<db>/` stops at the first key past `backups/`.
 */

/** Manifests fetched at once when the cache lacks them. */
export const MANIFEST_FETCH_CONCURRENCY = 24;

/** A manifest that exists but cannot be read: shown, never silently skipped. */
export interface UnreadableBackup {
  database: string;
  id: string;
  key: string;
  error: string;
  /** Set when a newer agent wrote it: the manifest format version it has. */
  newerVersion?: number | undefined;
}

export interface CatalogListing {
  backups: Manifest[];
  unreadable: UnreadableBackup[];
  /** Every object listed in the backup folders (both layouts): data presence without a stat. */
  objects: Map<string, ObjectInfo>;
}

/** Newest first: by start time, then by ID (documented tie-break). */
export function compareNewestFirst(a: Manifest, b: Manifest): number {
  if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * The objects in the backup folders of `database`, both layouts, without walking binlog or lease
 * keys. One listing rather than one per layout: it costs the same pages on a paged store, and a
 * driver that walks the whole prefix before it yields (local, today) walks it once, not twice.
 */
export async function listBackupObjects(storage: StorageDriver, database: string): Promise<ObjectInfo[]> {
  const current = backupsPrefix(database);
  const found: ObjectInfo[] = [];
  for await (const object of storage.list(databasePrefix(database))) {
    if (object.key.startsWith(current) || !isPastLegacyKeys(database, object.key)) found.push(object);
    else if (object.key > current) break;
  }
  return found;
}

/** The databases that have something in the store (a listing of the whole store needs them). */
export async function listDatabases(storage: StorageDriver): Promise<string[]> {
  // One delimiter listing of the root: never a walk through backups or binlog segments (a store
  // without delimiter listing emulates it by walking, see StorageDriver.listPrefixes).
  const names: string[] = [];
  try {
    for await (const prefix of storage.listPrefixes('')) names.push(prefix.slice(0, -1));
  } catch (err) {
    throw new AgentError('storage', `list the databases in ${storage.location}: ${messageOf(err)}`, { cause: err });
  }
  return names.sort();
}

/** Reads and checks the manifest at `key`, which the listing said is `database`'s backup `id` in layout `layout`. */
export async function readManifestAt(storage: StorageDriver, key: string, database: string, id: string, layout: number): Promise<Manifest> {
  let body: string;
  try {
    body = await text(await storage.get(key));
  } catch (err) {
    throw new AgentError('storage', `read manifest ${key} from ${storage.location}: ${messageOf(err)}`, { cause: err });
  }
  const manifest = parseManifest(body);
  if (manifest.id !== id || manifest.database !== database) {
    throw new AgentError('integrity', `manifest ${key} names backup ${manifest.database}/${manifest.id}, not ${database}/${id}`);
  }
  if (manifestKey(database, id, manifest.version) !== manifestKey(database, id, layout)) {
    throw new AgentError('integrity', `manifest ${key} has format version ${manifest.version}, whose backups live at ${manifestKey(database, id, manifest.version)}`);
  }
  return manifest;
}

export interface ListOptions {
  /** Manifests already read: reused while the listing shows them unchanged, filled with what is fetched. */
  cache?: ManifestCache | undefined;
  /** Told when the cache cannot be written (the next run then fetches again); ignored when absent. */
  onCacheError?: ((err: unknown) => void) | undefined;
  /**
   * The store's manifest pack (manifest-pack.ts): 'read' takes from it the manifests the local
   * cache lacks, when they are many; 'refresh' also writes it back when it lacks (or holds deleted)
   * manifests enough to matter. Unused when absent.
   */
  pack?: PackMode | undefined;
  /** Told when the pack cannot be read or written (the manifests are then read one by one); ignored when absent. */
  onPackError?: ((err: unknown) => void) | undefined;
}

/** The keys of the pack as this process last read or wrote it, per location and database: a refresh needs no read to decide. */
const packKeysSeen = new Map<string, ReadonlySet<string>>();

/**
 * Every backup of `database`, newest first; of every database in the store when none is given.
 * `options` may still be on its way (a cache being read): the listing starts meanwhile.
 */
export async function listBackups(storage: StorageDriver, database?: string, pendingOptions: ListOptions | Promise<ListOptions> = {}): Promise<CatalogListing> {
  if (database === undefined) {
    Promise.resolve(pendingOptions).catch(() => undefined); // not used for a whole-store listing
    const all: CatalogListing = { backups: [], unreadable: [], objects: new Map() };
    for (const name of await listDatabases(storage)) {
      const one = await listBackups(storage, name);
      all.backups.push(...one.backups);
      all.unreadable.push(...one.unreadable);
      for (const [key, info] of one.objects) all.objects.set(key, info);
    }
    all.backups.sort(compareNewestFirst);
    return all;
  }
  const listing = listBackupObjects(storage, database).catch((err: unknown) => {
    throw new AgentError('storage', `list backups in ${storage.location}: ${messageOf(err)}`, { cause: err });
  });
  listing.catch(() => undefined); // awaited below, after the options
  const options = await pendingOptions;
  const { cache, pack: packMode } = options;
  const seenId = `${storage.location}\0${database}`;
  // With nothing cached locally (a new host), the pack is read while the listing runs.
  let packRead = packMode && (!cache || cache.size === 0) ? readPack(storage, database, options) : undefined;
  const listed = await listing;
  const objects = new Map(listed.map((o) => [o.key, o]));
  const manifests = listed.flatMap((info) => {
    const parsed = parseManifestKey(info.key);
    return parsed && parsed.database === database ? [{ ...parsed, info }] : [];
  });
  // The cache's hits are taken here, without a promise each (a warm listing of 20,000 backups is
  // all hits); only the misses go to the pack or the store, a bounded number at a time.
  type Read = { manifest: Manifest; info: ObjectInfo; unreadable?: undefined } | { manifest?: undefined; unreadable: UnreadableBackup };
  const read: Read[] = [];
  let missed: typeof manifests = [];
  const fits = (m: (typeof manifests)[number], manifest: Manifest | undefined): manifest is Manifest =>
    manifest !== undefined && manifest.id === m.id && manifest.database === database && manifestKey(database, m.id, manifest.version) === m.info.key;
  for (const m of manifests) {
    const cached = cache?.lookup(m.info);
    if (fits(m, cached)) read.push({ manifest: cached, info: m.info });
    else missed.push(m);
  }
  if (packMode && missed.length >= PACK_MIN_CHANGES) packRead ??= readPack(storage, database, options);
  const pack = await packRead;
  if (pack) {
    packKeysSeen.set(seenId, pack.keys);
    const rest: typeof manifests = [];
    for (const m of missed) {
      const packed = pack.keys.has(m.info.key) ? pack.lookup(m.info) : undefined;
      if (fits(m, packed)) {
        read.push({ manifest: packed, info: m.info });
        cache?.remember(m.info, packed);
      } else rest.push(m);
    }
    missed = rest;
  }
  const fetched = await mapLimit(missed, MANIFEST_FETCH_CONCURRENCY, async ({ id, layout, info }): Promise<Read> => {
    try {
      const manifest = await readManifestAt(storage, info.key, database, id, layout);
      cache?.remember(info, manifest);
      return { manifest, info };
    } catch (err) {
      const newerVersion = err instanceof NewerManifestError ? err.version : undefined;
      return { unreadable: { database, id, key: info.key, error: messageOf(err), newerVersion } };
    }
  });
  if (cache) {
    cache.retain(new Set(manifests.map((m) => m.info.key)));
    // The cache only saves reads: one that cannot be written costs the next run its fetches, nothing else.
    await cache.save(storage.location, database).catch((err: unknown) => options.onCacheError?.(err));
  }
  const all = read.concat(fetched);
  if (packMode === 'refresh') {
    // What the pack holds: as read just now, or as this process last saw it, else read for the decision.
    // One that could not be read (reported) counts as empty, so a damaged pack is written again.
    const packed = packRead ? pack?.keys : (packKeysSeen.get(seenId) ?? (await readPack(storage, database, options))?.keys);
    await refreshPack(storage, database, all.flatMap((r) => (r.manifest ? [r] : [])), packed ?? new Set(), seenId, options);
  }
  const backups = all.flatMap((r) => (r.manifest ? [r.manifest] : [])).sort(compareNewestFirst);
  const unreadable = all.flatMap((r) => (r.unreadable ? [r.unreadable] : []));
  return { backups, unreadable, objects };
}

/** The pack, or undefined (reported) when it cannot be read: the manifests are then read one by one. */
async function readPack(storage: StorageDriver, database: string, options: ListOptions): Promise<ManifestPack | undefined> {
  try {
    return await readManifestPack(storage, database);
  } catch (err) {
    options.onPackError?.(err);
    return undefined;
  }
}

/** Writes the pack again when the listing's readable manifests differ enough from the `packed` keys. */
async function refreshPack(storage: StorageDriver, database: string, read: readonly { info: ObjectInfo; manifest: Manifest }[], packed: ReadonlySet<string>, seenId: string, options: ListOptions): Promise<void> {
  const listed = new Set(read.map((r) => r.info.key));
  if (!packIsStale(packed, listed)) return;
  try {
    await writeManifestPack(storage, database, read);
    packKeysSeen.set(seenId, listed);
  } catch (err) {
    options.onPackError?.(err);
  }
}
