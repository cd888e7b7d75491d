import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Duplex, Readable, Writable } from 'node:stream';
import { ToolError } from '../capture/tool-process.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor, zstdEngine, type Algorithm } from '../pipeline/compress.ts';
import { ageMessage } from '../pipeline/age-cli.ts';
import { createToolStage } from '../pipeline/tool-stage.ts';
import { StorageNotFoundError, type StorageDriver } from '../storage/driver.ts';
import { describeStorageError } from '../storage/errors.ts';

/**
 * One read of one stored object feeds both checks at once: its bytes are hashed (size and
 * SHA-256 against the manifest) and, at the archive depth, written on into the decoder chain
 * (age -d when encrypted, then the decompressor, then a content scanner). Fixed memory: the read
 * waits for the decoder (backpressure). When the decoder fails half-way, the rest of the object is
 * still read and hashed, so a report says both what the stored bytes are and why they do not
 * decode, without a second download.
 */

export interface StoredObject {
  key: string;
  sizeBytes: number;
  sha256: string;
  compression: Algorithm;
}

/** The decoding side: stages that turn stored bytes into plaintext, and the scanner that reads it. */
export interface DecodePlan {
  /** age -d when encrypted (restore/decrypt.ts decryptStages); empty otherwise. */
  decrypt: Duplex[];
  /** Reads the decompressed content; errors the chain when the content is malformed. */
  sink: Writable;
}

export interface ObjectReading {
  /** Problems with the stored bytes: missing, size, SHA-256. (A store that fails to answer throws: that is no verdict on the backup.) */
  stored: string[];
  /** Why the content does not decode (decryption, decompression or the scanner), when it does not. */
  decode: string | undefined;
  /** Whether the decoder read the content to its end without error. */
  decoded: boolean;
}

/** The zstd CLI (`zstd -d`) through the one child-process wrapper when installed, else Node's zlib. */
export async function openDecompressor(algorithm: Algorithm, signal?: AbortSignal): Promise<Duplex> {
  if (algorithm !== 'zstd') return createDecompressor(algorithm);
  const engine = await zstdEngine();
  if (engine.kind === 'zlib') return createDecompressor('zstd');
  return createToolStage(engine.path, ['-d', '-q', '-c', '-'], signal, 'zstd');
}

/** Words for a decoder failure: a tool's own stderr line rather than "exited with code 1". */
export function describeDecodeFailure(err: unknown): string {
  if (err instanceof ToolError) {
    const said = err.tool === 'age' ? ageMessage(err.stderr) : err.stderr.trim().split('\n').filter(Boolean).at(-1);
    return `${err.tool}: ${said || messageOf(err)}`;
  }
  return messageOf(err);
}

export async function readObject(storage: StorageDriver, object: StoredObject, decode: DecodePlan | undefined, signal?: AbortSignal): Promise<ObjectReading> {
  const result: ObjectReading = { stored: [], decode: undefined, decoded: false };
  let source: Readable;
  try {
    source = await storage.get(object.key, signal ? { signal } : {});
  } catch (err) {
    // Missing is a verdict on the backup; any other failure is the store's, not the backup's: thrown.
    if (!(err instanceof StorageNotFoundError)) throw new AgentError('storage', `read ${object.key} from ${storage.location}: ${describeStorageError(err)}`, { cause: err });
    result.stored.push('the object is missing');
    return result;
  }
  const hash = createHash('sha256');
  let bytes = 0;
  let head: Writable | undefined;
  let failed: unknown;
  let chain: Promise<void> = Promise.resolve();
  if (decode) {
    const decompress = await openDecompressor(object.compression, signal);
    const stages: (Duplex | Writable)[] = [...decode.decrypt, decompress, decode.sink];
    head = stages[0] as Writable;
    chain = pipeline(stages as [Duplex, ...Duplex[]], signal ? { signal } : {}).then(
      () => {
        result.decoded = true;
      },
      (err: unknown) => {
        failed = err;
      },
    );
  }
  const alive = () => head !== undefined && failed === undefined && !head.destroyed;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
      if (alive() && head && !head.write(chunk)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            head?.off('drain', done);
            head?.off('close', done);
            resolve();
          };
          head?.once('drain', done);
          head?.once('close', done);
          void chain.then(done);
        });
      }
    }
  } catch (err) {
    head?.destroy(new Error('the stored object could not be read to its end'));
    await chain;
    if (signal?.aborted) throw err;
    throw new AgentError('storage', `read ${object.key} from ${storage.location}: failed after ${bytes} bytes: ${describeStorageError(err)}`, { cause: err });
  }
  if (alive()) head?.end();
  await chain;
  if (bytes !== object.sizeBytes) result.stored.push(`size mismatch: the store holds ${bytes} bytes, the manifest says ${object.sizeBytes}`);
  const sha256 = hash.digest('hex');
  if (sha256 !== object.sha256) result.stored.push(`checksum mismatch: SHA-256 ${sha256} does not match the manifest's ${object.sha256}`);
  if (failed !== undefined) {
    if (signal?.aborted) throw failed;
    result.decode = describeDecodeFailure(failed);
  }
  return result;
}
