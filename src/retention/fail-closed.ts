import type { UnreadableBackup } from '../catalog/listing.ts';
import { MANIFEST_VERSION } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';

/**
 * The errors with which prune refuses a database it cannot fully read (pgBackRest's expire and
 * restic's prune do the same): deleting fails closed. A manifest that exists but cannot be read
 * might be the newest backup, or the parent of an incremental, or the owner of a data object that
 * would otherwise look orphaned; so nothing of that database is removed, not even orphans.
 */

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Manifests that exist but could not be read, or were written by a newer agent. */
export function catalogUnreadableError(database: string, unreadable: readonly UnreadableBackup[]): AgentError {
  const newer = unreadable.filter((u) => u.newerVersion !== undefined);
  const bad = unreadable.filter((u) => u.newerVersion === undefined);
  const parts: string[] = [];
  if (bad.length > 0) parts.push(`cannot read ${plural(bad.length, 'manifest')} (${bad.map((u) => `${u.key}: ${u.error}`).join('; ')})`);
  if (newer.length > 0) {
    const versions = [...new Set(newer.map((u) => u.newerVersion))].join(', ');
    parts.push(`${plural(newer.length, 'manifest')} written by a newer agent (format version ${versions}; this agent reads ${MANIFEST_VERSION}): ${newer.map((u) => u.key).join(', ')}`);
  }
  const hints: string[] = [];
  if (bad.length > 0) hints.push('repair or remove the unreadable manifest by hand (a store error may also pass: try again), then prune again');
  if (newer.length > 0) hints.push('upgrade this agent: it leaves backups of a newer format alone and does not guess what they need');
  return new AgentError('integrity', `prune database ${database}: ${parts.join('; ')}; nothing was removed`, { hint: hints.join('; ') });
}

/** Data objects the store could not stat (an error, not "not found"): their backups might be the only restorable ones. */
export function dataUnknownError(database: string, unknown: readonly { id: string; error: string }[]): AgentError {
  return new AgentError(
    'storage',
    `prune database ${database}: cannot tell whether the data of ${plural(unknown.length, 'backup')} is there (${unknown.map((u) => `${u.id}: ${u.error}`).join('; ')}); nothing was removed`,
    { hint: 'check that the store is reachable, then prune again' },
  );
}
