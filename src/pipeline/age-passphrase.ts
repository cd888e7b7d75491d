import { Duplex } from 'node:stream';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { FailureReason, FromWorker, PassphraseInit, ToWorker } from './age-passphrase-worker.ts';

/**
 * age encryption to a passphrase (age's scrypt recipient), for users who want one secret instead
 * of a key pair. The age CLI reads a passphrase only from a terminal, so this mode uses the
 * age-encryption library (age's reference TypeScript implementation, by age's author; no crypto
 * is written here) in a worker thread per stream: the agent's main thread stays free, and the
 * archive is the same age format the stock `age -d` opens (it asks for the passphrase).
 *
 * Measured on the 2-core machine (1 GiB of incompressible bytes, as a zstd stream is): see the
 * commit that added this file and `npm run bench`. The cost that dominates small objects is the
 * scrypt per object, by design of age: each file has its own salt, so every object (a dump, an
 * xbstream, each binlog segment) pays one scrypt to encrypt and one to decrypt; at age's default
 * work factor 18 that is 256 MiB of memory and seconds of one core.
 *
 * The passphrase is read from its file inside the worker; it is never in argv, the environment,
 * a log or a message.
 */

const workerUrl = new URL(`./age-passphrase-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

/** Input chunks sent to the worker before a write waits for one to be taken. */
const WINDOW = 4;

/** A passphrase stage's failure: why (a wrong passphrase, damaged data, …) and the library's words. */
export class AgePassphraseError extends Error {
  readonly reason: FailureReason;

  constructor(reason: FailureReason, message: string) {
    super(message);
    this.name = 'AgePassphraseError';
    this.reason = reason;
  }
}

/** A stage that encrypts what passes to the passphrase in `passphraseFile`, with scrypt work factor `workFactor`. */
export function createPassphraseEncryptor(passphraseFile: string, workFactor: number, signal?: AbortSignal): Duplex {
  return createPassphraseStage({ mode: 'encrypt', passphraseFile, workFactor }, signal);
}

/**
 * A stage that decrypts with the passphrase in `passphraseFile`. The header is authenticated
 * before a byte comes out, and each 64 KiB chunk before that chunk comes out; a wrong passphrase,
 * a truncated or altered stream fail the stage with an AgePassphraseError.
 */
export function createPassphraseDecryptor(passphraseFile: string, signal?: AbortSignal): Duplex {
  return createPassphraseStage({ mode: 'decrypt', passphraseFile, workFactor: 0 }, signal);
}

function createPassphraseStage(init: PassphraseInit, signal?: AbortSignal): Duplex {
  const worker = new Worker(workerUrl, { workerData: init });
  let inFlight = 0;
  let waitingWrite: (() => void) | undefined;
  let ended = false;
  const post = (message: ToWorker, transfer?: ArrayBuffer[]) => worker.postMessage(message, transfer ?? []);

  const stage = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      // A copy the worker owns: the caller may reuse its buffer once the callback ran.
      const copy = new Uint8Array(chunk);
      post({ type: 'data', chunk: copy }, [copy.buffer]);
      inFlight++;
      if (inFlight < WINDOW) callback();
      else waitingWrite = () => callback();
    },
    final(callback) {
      post({ type: 'end' });
      callback();
    },
    read() {
      post({ type: 'pull' });
    },
    destroy(err, callback) {
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      callback(err);
    },
  });

  worker.on('message', (message: FromWorker) => {
    switch (message.type) {
      case 'taken': {
        inFlight--;
        const resume = waitingWrite;
        waitingWrite = undefined;
        resume?.();
        break;
      }
      case 'data':
        stage.push(Buffer.from(message.chunk.buffer, message.chunk.byteOffset, message.chunk.byteLength));
        break;
      case 'end':
        ended = true;
        stage.push(null);
        signal?.removeEventListener('abort', onAbort);
        void worker.terminate();
        break;
      case 'error':
        stage.destroy(new AgePassphraseError(message.reason, message.message));
        break;
    }
  });
  worker.on('error', (err) => stage.destroy(new AgePassphraseError('failed', `age passphrase worker: ${err.message}`)));
  worker.on('exit', (code) => {
    if (!ended && !stage.destroyed) stage.destroy(new AgePassphraseError('failed', `age passphrase worker exited with code ${code}`));
  });
  const onAbort = () => stage.destroy(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
  if (signal?.aborted) queueMicrotask(onAbort);
  else signal?.addEventListener('abort', onAbort, { once: true });
  return stage;
}
