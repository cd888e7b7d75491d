import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { AgentError, messageOf } from '../errors.ts';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.ts';
import { databasePrefix, manifestKey, parseManifestKey } from './keys.ts';
import { NewerManifestError, parseManifest, serializeManifest, type Manifest } from './manifest.ts';

/**
 * The catalog is the set of manifests in a storage: nothing else is stored about backups, so any
 * tool that can list a bucket and read JSON can read it (docs/FORMAT.md).
 */

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
}

/** Writes the manifest: the commit point of a backup. Call only after every data object is stored. */
export async function commitManifest(storage: StorageDriver, manifest: Manifest): Promise<void> {
  const key = manifestKey(manifest.database, manifest.id);
  await storage.put(key, Readable.from([Buffer.from(serializeManifest(manifest))]), {
    contentType: 'application/json',
  });
}

export async function readManifest(storage: StorageDriver, database: string, id: string): Promise<Manifest> {
  const key = manifestKey(database, id);
  let body: string;
  try {
    body = await text(await storage.get(key));
  } catch (err) {
    if (err instanceof StorageNotFoundError) {
      throw new AgentError('not-found', `backup ${id} of database ${database} not found in ${storage.location}`, {
        hint: `\`agent list --database ${database}\` shows the backups that exist`,
      });
    }
    throw new AgentError('storage', `read manifest ${key} from ${storage.location}: ${messageOf(err)}`, { cause: err });
  }
  const manifest = parseManifest(body);
  if (manifest.id !== id || manifest.database !== database) {
    throw new AgentError('integrity', `manifest ${key} names backup ${manifest.database}/${manifest.id}, not ${database}/${id}`);
  }
  return manifest;
}

/** Newest first: by start time, then by ID (documented tie-break). */
export function compareNewestFirst(a: Manifest, b: Manifest): number {
  if (a.startedAt !== b.startedAt) return a.startedAt < b.startedAt ? 1 : -1;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** Every backup in the storage (of one database, when given), newest first. */
export async function listBackups(storage: StorageDriver, database?: string): Promise<CatalogListing> {
  const found: { database: string; id: string; key: string }[] = [];
  try {
    for await (const object of storage.list(database ? databasePrefix(database) : '')) {
      const parsed = parseManifestKey(object.key);
      if (parsed && (!database || parsed.database === database)) found.push({ ...parsed, key: object.key });
    }
  } catch (err) {
    throw new AgentError('storage', `list backups in ${storage.location}: ${messageOf(err)}`, { cause: err });
  }
  const read = await mapLimit(found, 8, async (entry) => {
    try {
      return { manifest: await readManifest(storage, entry.database, entry.id) };
    } catch (err) {
      return { unreadable: { ...entry, error: messageOf(err), newerVersion: err instanceof NewerManifestError ? err.version : undefined } };
    }
  });
  const backups = read.flatMap((r) => (r.manifest ? [r.manifest] : [])).sort(compareNewestFirst);
  const unreadable = read.flatMap((r) => (r.unreadable ? [r.unreadable] : []));
  return { backups, unreadable };
}

/**
 * The backup `id` of `database`, or its most recent completed backup (of one of `types`, when
 * given) when `id` is undefined. A manifest newer than that one which cannot be read might be the
 * most recent backup: then this fails rather than silently pick an older one.
 */
export async function findBackup(storage: StorageDriver, database: string, id?: string, types?: readonly Manifest['type'][]): Promise<Manifest> {
  if (id !== undefined) return readManifest(storage, database, id);
  const { backups, unreadable } = await listBackups(storage, database);
  const newest = backups.find((b) => b.status === 'completed' && (!types || types.includes(b.type)));
  // IDs sort by start time (keys.ts), so a larger ID is a newer backup.
  const hidden = unreadable.find((u) => !newest || u.id > newest.id);
  if (hidden) {
    throw new AgentError('integrity', `find the most recent backup of database ${database}: manifest ${hidden.key} cannot be read (${hidden.error})`, {
      hint: `it may be the most recent backup; pass --backup <id> to choose one (\`agent list --database ${database}\` shows them)`,
    });
  }
  if (!newest) {
    const kind = types ? `${types.join(' or ')} ` : '';
    throw new AgentError('not-found', `no completed ${kind}backup of database ${database} in ${storage.location}`, {
      hint: `take one with \`agent run-now --database ${database}${types && !types.includes('dump') ? ' --type full' : ''}\``,
    });
  }
  return newest;
}

/**
 * Whether a backup's data is in the store as its manifest says: `present` when every data object
 * exists with the size the manifest records; `missing` (with what is wrong) when one is absent or
 * has another size; `unknown` when the store could not say, which is never read as either.
 */
export type DataState = { state: 'present' } | { state: 'missing'; problem: string } | { state: 'unknown'; error: string };

/** One stat per data object of each backup (eight at a time): cheap enough for `list` and prune. */
export async function checkData(storage: StorageDriver, manifests: readonly Manifest[]): Promise<Map<string, DataState>> {
  const objects = manifests.flatMap((m) => m.objects.map((object) => ({ id: m.id, object })));
  const found = await mapLimit(objects, 8, async ({ id, object }) => {
    try {
      const info = await storage.stat(object.key);
      if (!info) return { id, state: { state: 'missing', problem: `data object ${object.key} is missing` } as DataState };
      if (info.size !== object.sizeBytes) {
        return { id, state: { state: 'missing', problem: `data object ${object.key} is ${info.size} bytes, the manifest says ${object.sizeBytes}` } as DataState };
      }
      return { id, state: { state: 'present' } as DataState };
    } catch (err) {
      return { id, state: { state: 'unknown', error: `stat ${object.key} in ${storage.location}: ${messageOf(err)}` } as DataState };
    }
  });
  // A backup is as bad as its worst object: unknown beats missing beats present.
  const rank = { present: 0, missing: 1, unknown: 2 } as const;
  const states = new Map<string, DataState>(manifests.map((m) => [m.id, { state: 'present' }]));
  for (const { id, state } of found) {
    const before = states.get(id);
    if (!before || rank[state.state] > rank[before.state]) states.set(id, state);
  }
  return states;
}
