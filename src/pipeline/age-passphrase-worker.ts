/**
 * The worker thread of a passphrase stage (age-passphrase.ts): age encryption to, or decryption
 * with, a passphrase (age's scrypt recipient) by the age-encryption library, age's reference
 * TypeScript implementation. Its scrypt and ChaCha20-Poly1305 run here, off the agent's main
 * thread. The passphrase is read here from its file and never leaves this thread.
 *
 * Flow control both ways: an input chunk is taken from the queue only when the library asks for
 * one (the main thread is told, and sends more), and an output chunk is sent only against a
 * credit the main thread grants when its reader wants data. Memory stays a few chunks.
 */
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { Decrypter, Encrypter } from 'age-encryption';
import { parsePassphrase } from '../config/age-recipient.ts';

export interface PassphraseInit {
  mode: 'encrypt' | 'decrypt';
  passphraseFile: string;
  /** scrypt's log2(N) for encryption. */
  workFactor: number;
}

/** Main → worker: an input chunk, the end of the input, one more output chunk wanted. */
export type ToWorker = { type: 'data'; chunk: Uint8Array } | { type: 'end' } | { type: 'pull' };

/**
 * Why a passphrase stage failed: the passphrase does not open the file, the file is not age or
 * is damaged (header, authentication of a chunk, truncation), the passphrase file is unreadable.
 */
export type FailureReason = 'passphrase' | 'damaged' | 'passphrase-file' | 'failed';

/** Worker → main: an input chunk taken, an output chunk, the end of the output, a failure. */
export type FromWorker = { type: 'taken' } | { type: 'data'; chunk: Uint8Array } | { type: 'end' } | { type: 'error'; reason: FailureReason; message: string };

const port = parentPort;
if (!port) throw new Error('age-passphrase-worker runs as a worker thread');
const init = workerData as PassphraseInit;
const send = (message: FromWorker, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer ?? []);

// Input: what the main thread sent, waiting to be taken by the library.
const queue: (Uint8Array | null)[] = [];
let wakeInput: (() => void) | undefined;
// Output: chunks the main thread asked for and not yet sent.
let credits = 0;
let wakeOutput: (() => void) | undefined;

port.on('message', (message: ToWorker) => {
  if (message.type === 'pull') {
    credits++;
    wakeOutput?.();
    return;
  }
  queue.push(message.type === 'data' ? message.chunk : null);
  wakeInput?.();
});

const input = new ReadableStream<Uint8Array>(
  {
    async pull(controller) {
      while (queue.length === 0) await new Promise<void>((resolve) => (wakeInput = resolve));
      wakeInput = undefined;
      const chunk = queue.shift() as Uint8Array | null;
      if (chunk === null) {
        controller.close();
        return;
      }
      controller.enqueue(chunk);
      send({ type: 'taken' });
    },
  },
  { highWaterMark: 0 },
);

/** The library's message, sorted: which failures mean a wrong passphrase, which damaged data. */
function reasonOf(message: string): FailureReason {
  if (/no identity matched/.test(message)) return 'passphrase';
  if (/work factor is too high/.test(message)) return 'failed';
  return 'damaged';
}

async function run(): Promise<void> {
  let passphrase: string;
  try {
    const parsed = parsePassphrase(readFileSync(init.passphraseFile, 'utf8'));
    if ('problem' in parsed) throw new Error(`passphrase file ${init.passphraseFile} ${parsed.problem}`);
    passphrase = parsed.passphrase;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    send({ type: 'error', reason: 'passphrase-file', message: code ? `cannot read passphrase file ${init.passphraseFile} (${code})` : (err as Error).message });
    return;
  }
  let output: ReadableStream<Uint8Array>;
  try {
    if (init.mode === 'encrypt') {
      const encrypter = new Encrypter();
      encrypter.setScryptWorkFactor(init.workFactor);
      encrypter.setPassphrase(passphrase);
      output = await encrypter.encrypt(input);
    } else {
      const decrypter = new Decrypter();
      decrypter.addPassphrase(passphrase);
      output = await decrypter.decrypt(input);
    }
  } catch (err) {
    const message = (err as Error).message;
    send({ type: 'error', reason: init.mode === 'encrypt' ? 'failed' : reasonOf(message), message });
    return;
  }
  const reader = output.getReader();
  try {
    for (;;) {
      while (credits === 0) await new Promise<void>((resolve) => (wakeOutput = resolve));
      wakeOutput = undefined;
      const { value, done } = await reader.read();
      if (done) break;
      if (value.byteLength === 0) continue;
      credits--;
      // Transfer the chunk when it owns its buffer (the library's ciphertext chunks do), else copy.
      const own = value.byteOffset === 0 && value.byteLength === value.buffer.byteLength && value.buffer instanceof ArrayBuffer ? value : value.slice();
      send({ type: 'data', chunk: own }, [own.buffer as ArrayBuffer]);
    }
  } catch (err) {
    const message = (err as Error).message;
    send({ type: 'error', reason: init.mode === 'encrypt' ? 'failed' : reasonOf(message), message });
    return;
  }
  send({ type: 'end' });
}

void run();
