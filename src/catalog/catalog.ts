import { AgentError } from '../errors.ts';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.ts';
import { bufferBody } from '../storage/buffer-body.ts';
import { backupIdTime, CURRENT_LAYOUT_VERSION, LEGACY_LAYOUT_VERSION, manifestKey } from './keys.ts';
import { listBackups, readManifestAt, type ListOptions, type UnreadableBackup } from './listing.ts';
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
 * Pure: the first manifest that could not be read and may be a newer backup than `newest` (IDs sort
 * by start time, keys.ts), started at or before `notAfter` when given. A decision that wants "the
 * newest backup" cannot be made while one of these hides: callers refuse, or say so loudly.
 */
export function hiddenNewer(unreadable: readonly UnreadableBackup[], newest: Pick<Manifest, 'id'> | undefined, notAfter?: Date): UnreadableBackup | undefined {
  return unreadable.find((u) => (!newest || u.id > newest.id) && (!notAfter || (backupIdTime(u.id)?.getTime() ?? Number.POSITIVE_INFINITY) <= notAfter.getTime()));
}

/** One line for an unreadable manifest: its key and why. */
export function describeUnreadable(u: UnreadableBackup): string {
  return `manifest ${u.key} cannot be read (${u.error})`;
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
  const hidden = hiddenNewer(unreadable, newest);
  if (hidden) {
    throw new AgentError('integrity', `find the most recent backup of database ${database}: ${describeUnreadable(hidden)}`, {
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
