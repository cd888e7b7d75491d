import type { Readable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import type { ManifestObject } from '../catalog/manifest.ts';
import { AgentError, messageOf } from '../errors.ts';
import { DigestStream } from '../pipeline/digest.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';

/**
 * Opens a data object for reading and checks, as it streams by, that it has exactly the size and
 * SHA-256 the manifest recorded. The check fails the stream at its end, before the consumer sees a
 * clean end-of-stream, so a download never renames a corrupt file into place.
 */
export async function openVerified(
  storage: StorageDriver,
  object: ManifestObject,
  options: { signal?: AbortSignal; onProgress?: (bytes: number) => void } = {},
): Promise<Readable> {
  let source: Readable;
  try {
    source = await storage.get(object.key, options.signal ? { signal: options.signal } : {});
  } catch (err) {
    throw new AgentError('storage', `read ${object.key} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
  }
  const digest = new DigestStream();
  const check = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      options.onProgress?.(digest.bytes);
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      if (digest.bytes !== object.sizeBytes) {
        callback(new AgentError('integrity', `${object.key}: read ${digest.bytes} bytes, the manifest says ${object.sizeBytes}`));
      } else if (digest.sha256 !== object.sha256) {
        callback(new AgentError('integrity', `${object.key}: SHA-256 ${digest.sha256} does not match the manifest's ${object.sha256}`));
      } else {
        callback();
      }
    },
  });
  source.on('error', (err) => digest.destroy(err));
  digest.on('error', (err) => check.destroy(err));
  return source.pipe(digest).pipe(check);
}

export function readError(what: string, err: unknown): AgentError {
  return err instanceof AgentError ? err : new AgentError('storage', `${what}: ${messageOf(err)}`, { cause: err });
}
