import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ObjectInfo } from './driver.ts';
import type { ListReply, ListRequest, ReadReply, WorkerError } from './local-worker.ts';

/**
 * The main-thread side of the local driver's worker thread (local-worker.ts), which walks
 * listings and reads small objects with synchronous calls. One worker per driver, started on the
 * first call, serving every call of the driver, ended when idle for a while or when the driver
 * closes. It holds the process open only while a call waits on it.
 */

/** Objects per batch of a listing. */
const BATCH = 512;
/** The worker stops when idle this long (the next call starts another). */
const IDLE_MS = 10_000;

const workerUrl = new URL(`./local-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Waiting {
  batches: ListReply[];
  wake: (() => void) | undefined;
}

/** The error of a failed call, with the errno code the driver's checks look at. */
const failure = (error: WorkerError): Error => Object.assign(new Error(error.message), error.code ? { code: error.code } : {});

export class LocalWorker {
  readonly #readAhead: number;
  #worker: Worker | undefined;
  #idle: NodeJS.Timeout | undefined;
  readonly #listings = new Map<number, Waiting>();
  readonly #reads = new Map<number, (reply: ReadReply) => void>();
  #nextId = 0;

  /** `readAhead`: objects the worker may walk ahead of what a listing's caller has taken. */
  constructor(readAhead: number) {
    this.#readAhead = readAhead;
  }

  /** The worker, started if need be, held open for a call until #release. */
  #acquire(): Worker {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    let worker = this.#worker;
    if (!worker) {
      worker = new Worker(workerUrl);
      const started = worker;
      worker.on('message', (reply: ListReply | ReadReply) => {
        const read = this.#reads.get(reply.id);
        if (read) {
          this.#reads.delete(reply.id);
          read(reply as ReadReply);
          return;
        }
        const waiting = this.#listings.get(reply.id);
        if (!waiting) return;
        waiting.batches.push(reply as ListReply);
        waiting.wake?.();
      });
      const fail = (err: Error) => {
        if (this.#worker !== started) return;
        this.#worker = undefined;
        const error = { message: `local storage worker: ${err.message}`, code: undefined };
        for (const [id, waiting] of this.#listings) {
          waiting.batches.push({ id, error });
          waiting.wake?.();
        }
        for (const [id, read] of this.#reads) read({ id, error });
        this.#reads.clear();
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
      this.#worker = worker;
    }
    worker.ref();
    return worker;
  }

  #release(worker: Worker): void {
    if (this.#listings.size > 0 || this.#reads.size > 0 || this.#worker !== worker) return;
    worker.unref();
    this.#idle = setTimeout(() => this.close(), IDLE_MS).unref();
  }

  /** Whether the worker is running (started by a listing, and not idle for long). */
  get running(): boolean {
    return this.#worker !== undefined;
  }

  /** The objects under `prefix` (after the key `after`, when given), walking from `dir` of the store at `root`, in key order. */
  async *list(root: string, dir: string, prefix: string, after: string | undefined, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    const worker = this.#acquire();
    const id = this.#nextId++;
    const waiting: Waiting = { batches: [], wake: undefined };
    this.#listings.set(id, waiting);
    let done = false;
    try {
      const batch = Math.max(1, Math.min(BATCH, this.#readAhead));
      worker.postMessage({ type: 'open', id, root, dir, prefix, after, batch, credit: Math.max(1, Math.floor(this.#readAhead / batch)) } satisfies ListRequest);
      while (!done) {
        signal?.throwIfAborted();
        if (waiting.batches.length === 0) {
          const woken = new Promise<void>((resolve) => (waiting.wake = resolve));
          const onAbort = () => waiting.wake?.();
          signal?.addEventListener('abort', onAbort, { once: true });
          await woken;
          signal?.removeEventListener('abort', onAbort);
          waiting.wake = undefined;
          continue;
        }
        const reply = waiting.batches.shift() as ListReply;
        if ('error' in reply) throw failure(reply.error);
        done = reply.done;
        if (!done) worker.postMessage({ type: 'more', id } satisfies ListRequest);
        for (let i = 0; i < reply.keys.length; i++) {
          const size = reply.sizes[i] as number;
          const mtimeMs = reply.mtimes[i] as number;
          // etag as the driver's stat gives it (local.ts etagOf): size and modification time.
          yield { key: reply.keys[i] as string, size, modifiedAt: new Date(mtimeMs), etag: `${size}-${mtimeMs}` };
          if (i % 64 === 63) signal?.throwIfAborted();
        }
      }
    } finally {
      if (!done) worker.postMessage({ type: 'close', id } satisfies ListRequest);
      this.#listings.delete(id);
      this.#release(worker);
    }
  }

  /**
   * The bytes of the file at `path` when it is a regular file of at most `max` bytes; `large` when
   * it is bigger, `notFile` when it is not a file. Rejects with the errno error of open or read.
   */
  async read(path: string, max: number): Promise<Buffer | 'large' | 'notFile'> {
    const worker = this.#acquire();
    const id = this.#nextId++;
    try {
      const reply = await new Promise<ReadReply>((resolve) => {
        this.#reads.set(id, resolve);
        worker.postMessage({ type: 'read', id, path, max } satisfies ListRequest);
      });
      if ('error' in reply) throw failure(reply.error);
      if ('large' in reply) return 'large';
      if ('notFile' in reply) return 'notFile';
      return Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
    } finally {
      this.#release(worker);
    }
  }

  /** Ends the worker (not waiting for it: a call stuck on a hung mount must not hold up the caller). */
  close(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) void worker.terminate();
  }
}
