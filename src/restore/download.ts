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
import { decryptStages, explainDecryptFailure, type Decryption } from './decrypt.ts';
import { AGE_EXTENSION } from '../pipeline/age-cli.ts';

/**
 * `<timestamp>_<database>_<id>.sql.zst[.age]`: sorts by time, says what it is, keeps its
 * compression, and `.age` while it is encrypted.
 */
export function downloadFileName(manifest: Manifest, object: ManifestObject, decrypted = false): string {
  const stamp = manifest.startedAt.replace(/\.\d{3}Z$/, 'Z').replace(/:/g, '-');
  const format = manifest.type === 'dump' ? '.sql' : '.xbstream';
  const encrypted = manifest.encryption !== null && !decrypted ? AGE_EXTENSION : '';
  return `${stamp}_${manifest.database}_${manifest.id}${format}${compressionExtension(object.compression)}${encrypted}`;
}

export function dataObject(manifest: Manifest): ManifestObject {
  const object = manifest.objects.find((o) => o.role === 'data');
  if (!object) throw new AgentError('integrity', `backup ${manifest.id} has no data object in its manifest`);
  return object;
}

/**
 * Copies a backup's data object, still compressed, into `dir`: as stored, or decrypted with
 * `decrypt` (age -d with its identity). Written to a temp name and renamed only after size and
 * SHA-256 match the manifest (and age authenticated every chunk). Mode 0600: it holds the data of
 * every table.
 */
export async function downloadBackup(
  storage: StorageDriver,
  manifest: Manifest,
  dir: string,
  options: { onProgress?: (bytes: number) => void; signal?: AbortSignal; decrypt?: Decryption } = {},
): Promise<{ path: string; sizeBytes: number }> {
  const object = dataObject(manifest);
  await mkdir(dir, { recursive: true });
  const what = `download backup ${manifest.id}`;
  const decrypt = options.decrypt ? await decryptStages(manifest.encryption, options.decrypt, what, options.signal) : [];
  const path = join(dir, downloadFileName(manifest, object, options.decrypt !== undefined));
  const temp = `${path}.${randomBytes(4).toString('hex')}.partial`;
  try {
    const source = await openVerified(storage, object, options);
    await pipeline([source, ...decrypt, createWriteStream(temp, { flags: 'wx', mode: 0o600, flush: true })], options.signal ? { signal: options.signal } : {});
    await rename(temp, path);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    const explained = manifest.encryption && options.decrypt ? explainDecryptFailure(err, manifest.encryption, options.decrypt, what) : undefined;
    throw explained ?? readError(`download ${object.key} from ${storage.location}`, err);
  }
  return { path, sizeBytes: object.sizeBytes };
}
