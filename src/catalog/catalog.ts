import { AgentError } from '../errors.ts';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.ts';
import { bufferBody } from '../storage/buffer-body.ts';
import { CURRENT_LAYOUT_VERSION, LEGACY_LAYOUT_VERSION, manifestKey } from './keys.ts';
import { listBackups, readManifestAt, type ListOptions } from './listing.ts';
import { serializeManifest, type Manifest } from './manifest.ts';

/** Kept here too for callers outside the catalog that import it from this module (src/binlog). */
export { listBackups } from './listing.ts';

/**
 * The catalog is the set of manifests in a storage: nothing else is stored about backups, so any
 * tool that can list a bucket and read JSON can read it (docs/FORMAT.md).
 */

/** Where a manifest lives: its format version says its layout (keys.ts). */
export function manifestKeyOf(manifest: Pick<Manifest, 'database' | 'id' | 'version'>): string {
  return manifestKey(manifest.database, manifest.id, manifest.version);
}

/** Writes the manifest: the commit point of a backup. Call only after every data object is stored. */
export async function commitManifest(storage: StorageDriver, manifest: Manifest): Promise<void> {
  // Bytes in memory: the retrying driver may send them again after a transient failure.
  await storage.put(manifestKeyOf(manifest), bufferBody(serializeManifest(manifest)), {
    contentType: 'application/json',
  });
}

/** The manifest of backup `id` of `database`, in whichever layout it is (the current one is tried first). */
export async function readManifest(storage: StorageDriver, database: string, id: string): Promise<Manifest> {
  for (const layout of [CURRENT_LAYOUT_VERSION, LEGACY_LAYOUT_VERSION]) {
    try {
      return await readManifestAt(storage, manifestKey(database, id, layout), database, id, layout);
    } catch (err) {
      if (!(err instanceof AgentError && err.cause instanceof StorageNotFoundError)) throw err;
    }
  }
  throw new AgentError('not-found', `backup ${id} of database ${database} not found in ${storage.location}`, {
    hint: `\`agent list --database ${database}\` shows the backups that exist`,
  });
}

/**
 * The backup `id` of `database`, or its most recent completed backup (of one of `types`, when
 * given) when `id` is undefined. A manifest newer than that one which cannot be read might be the
 * most recent backup: then this fails rather than silently pick an older one.
 */
export async function findBackup(storage: StorageDriver, database: string, id?: string, types?: readonly Manifest['type'][], options: ListOptions = {}): Promise<Manifest> {
  if (id !== undefined) return readManifest(storage, database, id);
  const { backups, unreadable } = await listBackups(storage, database, options);
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
