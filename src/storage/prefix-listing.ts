import type { ObjectInfo } from './driver.ts';

/**
 * The sub-directory directly below `prefix` that `key` lies in (`prefix + name + "/"`), or
 * undefined when `key` sits directly in `prefix` (or outside it).
 */
export function subdirectoryOf(prefix: string, key: string): string | undefined {
  if (!key.startsWith(prefix)) return undefined;
  const slash = key.indexOf('/', prefix.length);
  return slash < 0 ? undefined : key.slice(0, slash + 1);
}

/**
 * listPrefixes for a store that cannot list by delimiter: walks the keys under `prefix` (ascending)
 * and yields each sub-directory once. The keys of one sub-directory are contiguous in ascending
 * order, so skipping repeats of the last one yields each once, in ascending order too.
 */
export async function* prefixesByWalking(keys: AsyncIterable<ObjectInfo>, prefix: string): AsyncIterable<string> {
  let last: string | undefined;
  for await (const { key } of keys) {
    const dir = subdirectoryOf(prefix, key);
    if (dir === undefined || dir === last) continue;
    last = dir;
    yield dir;
  }
}
