import { describeUnreadable } from '../catalog/catalog.ts';
import type { UnreadableBackup } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';

/**
 * Pure: the backups to apply, in order, to restore `target`: its full backup first, then each
 * incremental down to `target`. Refuses a broken chain (a parent missing from the catalog).
 */
export function restoreChain(target: Manifest, catalog: readonly Manifest[], unreadable: readonly UnreadableBackup[] = []): Manifest[] {
  if (target.type === 'dump') throw new AgentError('usage', `backup ${target.id} is a logical dump, not a physical backup`, { hint: 'restore it without --datadir' });
  const byId = new Map(catalog.map((m) => [m.id, m]));
  const chain: Manifest[] = [target];
  let current = target;
  while (current.type === 'incremental') {
    const parentId = current.physical?.parent;
    const parent = parentId ? byId.get(parentId) : undefined;
    if (!parent) {
      const bad = unreadable.find((u) => u.id === parentId);
      if (bad) {
        throw new AgentError('integrity', `backup ${current.id} needs ${parentId}, whose ${describeUnreadable(bad)}: the chain of ${target.id} cannot be restored`, {
          hint: 'repair the manifest, or restore an older chain (`agent list` shows the backups)',
        });
      }
      throw new AgentError('integrity', `backup ${current.id} needs ${parentId ?? 'a parent'}, which is not in the catalog: the chain of ${target.id} is broken`);
    }
    if (chain.length > 10_000) throw new AgentError('integrity', `the chain of ${target.id} loops`);
    chain.unshift(parent);
    current = parent;
  }
  return chain;
}
