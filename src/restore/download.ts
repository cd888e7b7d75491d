import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Manifest, ManifestObject } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import { compressionExtension } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { openVerified, readError } from './fetch.ts';

/** `<timestamp>_<database>_<id>.sql.zst`: sorts by time, says what it is, keeps its compression. */
export function downloadFileName(manifest: Manifest, object: ManifestObject): string {
  const stamp = manifest.startedAt.replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
  const format = manifest.type === 'dump' ? '.sql' : '.xbstream';
  return `${stamp}_${manifest.database}_${manifest.id}${format}${compressionExtension(object.compression)}`;
}

export function dataObject(manifest: Manifest): ManifestObject {
  const object = manifest.objects.find((o) => o.role === 'data');
  if (!object) throw new AgentError('integrity', `backup ${manifest.id} has no data object in its manifest`);
  return object;
}

/**
 * Copies a backup's data object, still compressed, into `dir`. Written to a temp name and renamed
 * only after size and SHA-256 match the manifest. Mode 0600: it holds the data of every table.
 */
export async function downloadBackup(
  storage: StorageDriver,
  manifest: Manifest,
  dir: string,
  options: { onProgress?: (bytes: number) => void; signal?: AbortSignal } = {},
): Promise<{ path: string; sizeBytes: number }> {
  const object = dataObject(manifest);
  await mkdir(dir, { recursive: true });
  const path = join(dir, downloadFileName(manifest, object));
  const temp = `${path}.${randomBytes(4).toString('hex')}.partial`;
  try {
    const source = await openVerified(storage, object, options);
    await pipeline(source, createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true }), options.signal ? { signal: options.signal } : {});
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw readError(`download ${object.key} from ${storage.location}`, err);
  }
  return { path, sizeBytes: object.sizeBytes };
}
