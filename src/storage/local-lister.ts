import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { ObjectInfo } from './driver.ts';
import type { ListReply, ListRequest } from './local-list-worker.ts';

/**
 * The main-thread side of local listings: one worker thread per driver (local-list-worker.ts),
 * started on the first listing, serving every listing of the driver, and ended when idle for a
 * while or when the driver closes. The worker holds the process open only while a listing waits
 * on it.
 */

/** Objects per batch the worker sends. */
const BATCH = 512;
/** The worker stops when idle this long (the next listing starts another). */
const IDLE_MS = 10_000;

const workerUrl = new URL(`./local-list-worker${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

interface Waiting {
  batches: ListReply[];
  wake: (() => void) | undefined;
}

export class LocalLister {
  readonly #readAhead: number;
  #worker: Worker | undefined;
  #idle: NodeJS.Timeout | undefined;
  readonly #listings = new Map<number, Waiting>();
  #nextId = 0;

  /** `readAhead`: objects the worker may walk ahead of what a listing's caller has taken. */
  constructor(readAhead: number) {
    this.#readAhead = readAhead;
  }

  #start(): Worker {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#worker) return this.#worker;
    const worker = new Worker(workerUrl);
    worker.on('message', (reply: ListReply) => {
      const waiting = this.#listings.get(reply.id);
      if (!waiting) return;
      waiting.batches.push(reply);
      waiting.wake?.();
    });
    const fail = (err: Error) => {
      if (this.#worker === worker) this.#worker = undefined;
      for (const [id, waiting] of this.#listings) {
        waiting.batches.push({ id, error: { message: `local listing worker: ${err.message}`, code: undefined } });
        waiting.wake?.();
      }
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    this.#worker = worker;
    return worker;
  }

  #post(request: ListRequest): void {
    this.#worker?.postMessage(request);
  }

  /** The objects under `prefix`, walking from `dir` of the store at `root`, in key order. */
  async *list(root: string, dir: string, prefix: string, signal: AbortSignal | undefined): AsyncGenerator<ObjectInfo> {
    const worker = this.#start();
    worker.ref();
    const id = this.#nextId++;
    const waiting: Waiting = { batches: [], wake: undefined };
    this.#listings.set(id, waiting);
    let done = false;
    try {
      const batch = Math.max(1, Math.min(BATCH, this.#readAhead));
      this.#post({ type: 'open', id, root, dir, prefix, batch, credit: Math.max(1, Math.floor(this.#readAhead / batch)) });
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
        if ('error' in reply) throw Object.assign(new Error(reply.error.message), reply.error.code ? { code: reply.error.code } : {});
        done = reply.done;
        if (!done) this.#post({ type: 'more', id });
        for (let i = 0; i < reply.keys.length; i++) {
          const size = reply.sizes[i] as number;
          const mtimeMs = reply.mtimes[i] as number;
          // etag as the driver's stat gives it (local.ts etagOf): size and modification time.
          yield { key: reply.keys[i] as string, size, modifiedAt: new Date(mtimeMs), etag: `${size}-${mtimeMs}` };
          if (i % 64 === 63) signal?.throwIfAborted();
        }
      }
    } finally {
      if (!done) this.#post({ type: 'close', id });
      this.#listings.delete(id);
      if (this.#listings.size === 0 && this.#worker === worker) {
        worker.unref();
        this.#idle = setTimeout(() => this.close(), IDLE_MS).unref();
      }
    }
  }

  /** Ends the worker (not waiting for it: a walk stuck on a hung mount must not hold up the caller). */
  close(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) void worker.terminate();
  }
}
