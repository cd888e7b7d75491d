/**
 * The worker thread of the local driver (local-worker-client.ts): it walks listings, and reads
 * small objects, with synchronous calls. A readdir or stat costs a microsecond or two here,
 * against a thread-pool round trip and a promise each on the main thread (a catalog of 20,000
 * backups is ~60,000 of them, and as many again to read its manifests cold). A mount that hangs
 * blocks this thread, never the event loop of the process (its health checks, metrics and
 * webhooks go on). A listing's objects are sent in batches, in key order, and only a bounded
 * number of batches ahead of what its caller has taken.
 */
import { closeSync, fstatSync, openSync, readdirSync, readSync, statSync, type Dirent } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { childPath, isObjectKey, keyOf, sortEntries } from './local-walk.ts';

/**
 * What the main thread asks: open a listing with `credit` batches of `batch` objects, one more
 * batch, or stop; or read a whole file if it is a regular file of at most `max` bytes.
 */
export type ListRequest =
  | { type: 'open'; id: number; root: string; dir: string; prefix: string; after: string | undefined; batch: number; credit: number }
  | { type: 'more'; id: number }
  | { type: 'close'; id: number }
  | { type: 'read'; id: number; path: string; max: number };

export interface WorkerError {
  message: string;
  code: string | undefined;
}

/** A batch of objects (key, size, mtime in ms, in key order; `done` on the last), or why the walk failed. */
export type ListReply = { id: number; keys: string[]; sizes: Float64Array<ArrayBuffer>; mtimes: Float64Array<ArrayBuffer>; done: boolean } | { id: number; error: WorkerError };

/** A file's bytes; `large` when it is bigger than asked (the caller streams it instead); `notFile` for a directory; or why it could not be read. */
export type ReadReply = { id: number; data: Uint8Array<ArrayBuffer> } | { id: number; large: true } | { id: number; notFile: true } | { id: number; error: WorkerError };

const errorOf = (err: unknown): WorkerError => ({ message: (err as Error).message, code: (err as NodeJS.ErrnoException).code });

/** Reads the file at `path` whole (an object never changes under an open descriptor: put renames a new file into place). */
function readWhole(id: number, path: string, max: number): ReadReply {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    return { id, error: errorOf(err) };
  }
  try {
    const info = fstatSync(fd);
    if (!info.isFile()) return { id, notFile: true };
    if (info.size > max) return { id, large: true };
    // Not Buffer.allocUnsafe: a small one is a slice of a shared pool, which cannot be transferred.
    const data = new Uint8Array(info.size);
    let filled = 0;
    while (filled < data.length) {
      const n = readSync(fd, data, filled, data.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return { id, data: filled === data.length ? data : data.slice(0, filled) };
  } catch (err) {
    return { id, error: errorOf(err) };
  } finally {
    closeSync(fd);
  }
}

const notFound = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
};

function readdirSyncOrEmpty(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    if (notFound(err)) return [];
    throw err;
  }
}

/**
 * The files under `dir` that can hold keys under `prefix`, in key order (as local-walk.ts
 * walkFiles), past the key `after` when given: a directory whose keys all sort before it is not read.
 */
function* walk(dir: string, dirKey: string, prefix: string, after: string | undefined): Generator<{ path: string; key: string }> {
  for (const entry of sortEntries(readdirSyncOrEmpty(dir))) {
    const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
    const path = childPath(dir, entry.name);
    if (entry.isFile()) {
      if (after === undefined || key > after) yield { path, key };
    } else if (entry.isDirectory() && (key.startsWith(prefix) || prefix.startsWith(`${key}/`))) {
      const below = `${key}/`;
      if (after === undefined || below > after || after.startsWith(below)) yield* walk(path, key, prefix, after);
    }
  }
}

interface Listing {
  files: Generator<{ path: string; key: string }>;
  prefix: string;
  batch: number;
  credit: number;
}

const listings = new Map<number, Listing>();
const port = parentPort;
let pumping = false;

/** One batch of `listing`: its next objects, stat'ed (a file deleted since the readdir is skipped). */
function nextBatch(id: number, listing: Listing): ListReply {
  const keys: string[] = [];
  const sizes: number[] = [];
  const mtimes: number[] = [];
  let done = false;
  while (keys.length < listing.batch) {
    const next = listing.files.next();
    if (next.done) {
      done = true;
      break;
    }
    const { path, key } = next.value;
    if (!key.startsWith(listing.prefix) || !isObjectKey(key)) continue;
    let info;
    try {
      info = statSync(path);
    } catch (err) {
      if (notFound(err)) continue;
      throw err;
    }
    if (!info.isFile()) continue;
    keys.push(key);
    sizes.push(info.size);
    mtimes.push(info.mtimeMs);
  }
  return { id, keys, sizes: Float64Array.from(sizes), mtimes: Float64Array.from(mtimes), done };
}

/** Serves the listings with credit a batch at a time, in turn, letting requests in between batches. */
function pump(): void {
  pumping = false;
  for (const [id, listing] of listings) {
    if (listing.credit <= 0) continue;
    listing.credit--;
    let reply: ListReply;
    try {
      reply = nextBatch(id, listing);
    } catch (err) {
      reply = { id, error: errorOf(err) };
    }
    if ('error' in reply || reply.done) listings.delete(id);
    port?.postMessage(reply, 'keys' in reply ? [reply.sizes.buffer, reply.mtimes.buffer] : []);
  }
  schedule();
}

function schedule(): void {
  if (pumping || ![...listings.values()].some((l) => l.credit > 0)) return;
  pumping = true;
  setImmediate(pump);
}

port?.on('message', (request: ListRequest) => {
  if (request.type === 'read') {
    const reply = readWhole(request.id, request.path, request.max);
    port.postMessage(reply, 'data' in reply ? [reply.data.buffer] : []);
    return;
  }
  if (request.type === 'open') {
    const files = walk(request.dir, keyOf(request.root, request.dir), request.prefix, request.after);
    listings.set(request.id, { files, prefix: request.prefix, batch: request.batch, credit: request.credit });
  } else if (request.type === 'more') {
    const listing = listings.get(request.id);
    if (listing) listing.credit++;
  } else {
    listings.get(request.id)?.files.return(undefined);
    listings.delete(request.id);
  }
  schedule();
});
