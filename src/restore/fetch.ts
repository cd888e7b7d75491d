import { Transform, Writable, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
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
        callback(new AgentError('integrity', `${object.key}: size mismatch: read ${digest.bytes} bytes, the manifest says ${object.sizeBytes}`));
      } else if (digest.sha256 !== object.sha256) {
        callback(new AgentError('integrity', `${object.key}: checksum mismatch: SHA-256 ${digest.sha256} does not match the manifest's ${object.sha256}`));
      } else {
        callback();
      }
    },
  });
  source.on('error', (err) => digest.destroy(err));
  digest.on('error', (err) => check.destroy(err));
  return source.pipe(digest).pipe(check);
}

/**
 * Opens bytes `start`..`end` (inclusive) of a data object. A part cannot be checked against the
 * manifest's SHA-256, so what can be is: the stored object exists with the manifest's size, and
 * exactly the asked-for bytes arrive (a short read fails the stream before its end).
 */
export async function openRange(storage: StorageDriver, object: ManifestObject, start: number, end: number, options: { signal?: AbortSignal } = {}): Promise<Readable> {
  const call = options.signal ? { signal: options.signal } : {};
  let source: Readable;
  try {
    const info = await storage.stat(object.key, call);
    if (!info) throw new AgentError('integrity', `${object.key}: missing from ${storage.location}, though its manifest is there`);
    if (info.size !== object.sizeBytes) throw new AgentError('integrity', `${object.key}: size mismatch: the store holds ${info.size} bytes, the manifest says ${object.sizeBytes}`);
    source = await storage.get(object.key, { ...call, range: { start, end } });
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('storage', `read ${object.key} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
  }
  const expected = end - start + 1;
  let bytes = 0;
  const check = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback) {
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback: TransformCallback) {
      callback(bytes === expected ? undefined : new AgentError('integrity', `${object.key}: read ${bytes} bytes of the range ${start}-${end}, expected ${expected}`));
    },
  });
  source.on('error', (err) => check.destroy(err));
  return source.pipe(check);
}

/**
 * Reads a whole object once, in fixed memory, only to check its size and SHA-256: the pass before
 * anything is written where a late mismatch would leave the target half-overwritten.
 */
export async function verifyObject(storage: StorageDriver, object: ManifestObject, options: { signal?: AbortSignal } = {}): Promise<void> {
  const discard = new Writable({ write: (_chunk: Buffer, _encoding, callback) => callback() });
  try {
    await pipeline(await openVerified(storage, object, options), discard);
  } catch (err) {
    throw readError(`verify ${object.key} in ${storage.location}`, err);
  }
}

export function readError(what: string, err: unknown): AgentError {
  return err instanceof AgentError ? err : new AgentError('storage', `${what}: ${messageOf(err)}`, { cause: err });
}
