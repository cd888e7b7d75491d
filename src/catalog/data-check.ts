import { messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import type { Manifest } from './manifest.ts';
import { mapLimit } from './map-limit.ts';

/**
 * Whether a backup's data is in the store as its manifest says: `present` when every data object
 * exists with the size the manifest records; `missing` (with what is wrong) when one is absent or
 * has another size; `unknown` when the store could not say, which is never read as either.
 */
export type DataState = { state: 'present' } | { state: 'missing'; problem: string } | { state: 'unknown'; error: string };

/**
 * The data state of each backup. An object the catalog listing showed (`listed`) is judged from
 * the listing, without a request; any other is stat'ed (eight at a time): one the listing missed
 * (a backup committed while the listing ran) or one outside the backup folders.
 */
export async function checkData(storage: StorageDriver, manifests: readonly Manifest[], listed: ReadonlyMap<string, ObjectInfo> = new Map()): Promise<Map<string, DataState>> {
  const objects = manifests.flatMap((m) => m.objects.map((object) => ({ id: m.id, object })));
  const judge = (key: string, expected: number, info: ObjectInfo | undefined): DataState => {
    if (!info) return { state: 'missing', problem: `data object ${key} is missing` };
    if (info.size !== expected) return { state: 'missing', problem: `data object ${key} is ${info.size} bytes, the manifest says ${expected}` };
    return { state: 'present' };
  };
  // Judged from the listing without a promise each (all of a large catalog's objects, as a
  // rule); only the objects it did not show are stat'ed.
  const found: { id: string; state: DataState }[] = [];
  const unlisted: typeof objects = [];
  for (const { id, object } of objects) {
    const seen = listed.get(object.key);
    if (seen) found.push({ id, state: judge(object.key, object.sizeBytes, seen) });
    else unlisted.push({ id, object });
  }
  const stated = await mapLimit(unlisted, 8, async ({ id, object }) => {
    try {
      return { id, state: judge(object.key, object.sizeBytes, await storage.stat(object.key)) };
    } catch (err) {
      return { id, state: { state: 'unknown', error: `stat ${object.key} in ${storage.location}: ${messageOf(err)}` } as DataState };
    }
  });
  // A backup is as bad as its worst object: unknown beats missing beats present.
  const rank = { present: 0, missing: 1, unknown: 2 } as const;
  const states = new Map<string, DataState>(manifests.map((m) => [m.id, { state: 'present' }]));
  for (const { id, state } of found.concat(stated)) {
    const before = states.get(id);
    if (!before || rank[state.state] > rank[before.state]) states.set(id, state);
  }
  return states;
}
