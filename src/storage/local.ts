import { BLOCK_SIZE } from '../pipeline/rechunk.ts';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { link, open, readFile, rename, rmdir, stat, unlink, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertValidKey, assertValidRange, StorageNotFoundError, type CallOptions, type GetOptions, type ObjectInfo, type PutOptions, type StorageDriver, type VersionedObject } from './driver.ts';
import { ensureDir, errnoCode, removeEmptyDirs, withMutex } from './local-fs.ts';
import { isObjectKey, MUTEX, PARTIAL, readdirOrEmpty, sortEntries, walkFiles, walkTree } from './local-walk.ts';
import { LocalWorker } from './local-worker-client.ts';


function isNotFound(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** unlink of a directory: not an object, so for delete it is as good as missing. */
function isDirectory(err: unknown): boolean {
  const code = errnoCode(err);
  return code === 'EISDIR' || code === 'EPERM';
}

/**
 * Objects a listing's walk may run ahead of its caller: a whole catalog of 20,000 backups, nearly,
 * so the walk goes on while the caller reads its manifest cache, yet bounded (a caller that stops
 * at the binlog archive's millions of keys stops the walk a batch or so later).
 */
const LIST_READ_AHEAD = 32_768;
/** Objects a listing yields from the main thread before the worker thread takes over (starting one costs ~15 MiB and tens of ms). */
const LIST_WORKER_AFTER = 256;

/** Objects up to this size are read whole by get (one read, no stream buffer). */
const SMALL_OBJECT = 64 * 1024;

/** The `size` bytes of the open file `handle`, closed after, as a stream of one chunk. */
async function readSmall(handle: FileHandle, size: number, signal: AbortSignal | undefined): Promise<Readable> {
  try {
    signal?.throwIfAborted();
    const data = Buffer.allocUnsafe(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(data, filled, size - filled, filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    return Readable.from([data.subarray(0, filled)], { objectMode: false, ...(signal ? { signal } : {}) });
  } finally {
    await handle.close();
  }
}


/** The etag of a local object: size and modification time (no content hash: a listing must not read files). */
function etagOf(info: { size: number; mtimeMs: number }): string {
  return `${info.size}-${info.mtimeMs}`;
}

/** The version token of a local object: the SHA-256 of its content. */
function versionOf(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** fsync a directory so a rename or unlink in it survives a crash. */
async function syncDir(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes and fsyncs a small temp file beside `target`; returns its path. */
async function writeTemp(target: string, data: Buffer): Promise<string> {
  const temp = `${target}.${randomBytes(6).toString('hex')}.partial`;
  await writeFile(temp, data, { flag: 'wx', mode: 0o640, flush: true });
  return temp;
}

/**
 * A directory on a local or mounted file system. put writes `<key>.<random>.partial` beside the
 * target, fsyncs it, renames it into place and fsyncs the directory: an object is either whole
 * or absent, also across a crash. Conditional writes are exact among writers that share the file
 * system: create = link() of a complete temp file (fails if the key exists), replace and delete
 * = compare and swap under a per-key O_EXCL mutex. File-system calls cannot be interrupted once
 * issued: the signal is checked between them (and streams and readFile take it directly).
 */
export class LocalDriver implements StorageDriver {
  readonly root: string;
  readonly location: string;
  readonly conditionalWrites = true;
  readonly delimiterListing = true;

  readonly #listReadAhead: number;
  #worker: LocalWorker | undefined;

  readonly #workerAfter: number;

  /**
   * `listReadAhead`: objects a listing's worker may walk ahead of its caller; `workerAfter`:
   * objects a listing yields from the main thread before the worker lists the rest (tests make
   * both small).
   */
  constructor(root: string, options: { listReadAhead?: number; workerAfter?: number } = {}) {
    this.root = resolve(root);
    this.location = this.root;
    this.#listReadAhead = options.listReadAhead ?? LIST_READ_AHEAD;
    this.#workerAfter = options.workerAfter ?? LIST_WORKER_AFTER;
  }

  #path(key: string): string {
    assertValidKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const target = this.#path(key);
    options.signal?.throwIfAborted();
    const temp = `${target}.${randomBytes(6).toString('hex')}.partial`;
    const handle = await this.#createIn(dirname(target), () => open(temp, 'wx', 0o640));
    const out = createWriteStream('', { fd: handle, flush: true, highWaterMark: BLOCK_SIZE });
    try {
      await pipeline(body, out, options.signal ? { signal: options.signal } : {});
      await rename(temp, target);
      await syncDir(dirname(target));
    } catch (err) {
      // Best-effort cleanup: the upload's own error is what the caller must see; a leftover empty
      // directory holds no object and prune removes it.
      await unlink(temp).catch(() => undefined);
      await removeEmptyDirs(this.root, dirname(target)).catch(() => undefined);
      throw err;
    }
    return { size: out.bytesWritten };
  }

  /**
   * Creates the directory and runs `create` in it. A concurrent delete of the last object in that
   * directory removes it between the two: then create again, a bounded number of times.
   */
  async #createIn<T>(dir: string, create: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await ensureDir(dir);
      try {
        return await create();
      } catch (err) {
        if (errnoCode(err) !== 'ENOENT' || attempt >= 3) throw err;
      }
    }
  }

  /** The worker thread that walks listings and reads small objects (local-worker-client.ts). */
  #thread(): LocalWorker {
    this.#worker ??= new LocalWorker(this.#listReadAhead);
    return this.#worker;
  }

  async get(key: string, options: GetOptions = {}): Promise<Readable> {
    const path = this.#path(key);
    assertValidRange(options.range);
    options.signal?.throwIfAborted();
    const { range } = options;
    // While the worker thread runs (a large listing started it: the manifests of a cold catalog
    // listing come next, 20,000 of them), a small object is read whole there: one message instead
    // of four thread-pool round trips. A larger one, or any when there is no worker, as below.
    if (this.#worker?.running && !range) {
      const small = await this.#worker.read(path, SMALL_OBJECT).catch((err: unknown) => {
        throw isNotFound(err) ? new StorageNotFoundError(key, { cause: err }) : err;
      });
      if (small === 'notFile') throw new StorageNotFoundError(key); // a directory of other keys, not an object
      if (small !== 'large') {
        options.signal?.throwIfAborted();
        return Readable.from([small], { objectMode: false, ...(options.signal ? { signal: options.signal } : {}) });
      }
    }
    // Open first so a missing object rejects here rather than as a later stream error.
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw isNotFound(err) ? new StorageNotFoundError(key, { cause: err }) : err;
    });
    let info;
    try {
      info = await handle.stat();
    } catch (err) {
      await handle.close();
      throw err;
    }
    if (!info.isFile()) {
      await handle.close();
      throw new StorageNotFoundError(key); // a directory of other keys, not an object
    }
    // An object never changes under an open handle (put renames a new file into place), so its
    // size is known: a small one is read whole, in one read into a buffer of its size.
    if (range) {
      if (range.start >= info.size) {
        await handle.close();
        return Readable.from([]);
      }
      return createReadStream('', { fd: handle, start: range.start, end: Math.min(range.end, info.size - 1), ...(options.signal ? { signal: options.signal } : {}) });
    }
    if (info.size <= SMALL_OBJECT) return readSmall(handle, info.size, options.signal);
    return createReadStream('', { fd: handle, ...(options.signal ? { signal: options.signal } : {}) });
  }

  async getVersioned(key: string, options: CallOptions = {}): Promise<VersionedObject | undefined> {
    const path = this.#path(key);
    try {
      const data = await readFile(path, options.signal ? { signal: options.signal } : {});
      return { data, version: versionOf(data) };
    } catch (err) {
      if (isNotFound(err) || errnoCode(err) === 'EISDIR') return undefined;
      throw err;
    }
  }

  async stat(key: string, options: CallOptions = {}): Promise<ObjectInfo | undefined> {
    const path = this.#path(key);
    options.signal?.throwIfAborted();
    try {
      const info = await stat(path);
      return info.isFile() ? { key, size: info.size, modifiedAt: info.mtime, etag: etagOf(info) } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * A root that does not exist yet is an empty store (it is created on the first write); a root
   * that is not a directory is a configuration error, never "no objects".
   */
  async #checkRoot(): Promise<boolean> {
    try {
      const info = await stat(this.root);
      if (!info.isDirectory()) throw Object.assign(new Error(`ENOTDIR: storage path ${this.root} is not a directory`), { code: 'ENOTDIR' });
      return true;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return false;
      throw err;
    }
  }

  /**
   * Lazy and in key order: a worker thread walks the directories and stats the files, a bounded
   * number of objects (listReadAhead) ahead of the caller, so a caller that stops early stops the
   * walk, and a hung mount blocks that thread, not the event loop (local-lister.ts).
   */
  async *list(prefix: string, options: CallOptions = {}): AsyncIterable<ObjectInfo> {
    options.signal?.throwIfAborted();
    if (!(await this.#checkRoot())) return;
    const dir = this.#startDir(prefix);
    // The first objects are listed here (a small listing does not start a thread: `agent list` of
    // an empty store, a binlog folder); past them, the worker lists the rest after the last key.
    let last: string | undefined;
    let listed = 0;
    let more = false;
    for await (const { path, key } of walkFiles(this.root, dir, prefix)) {
      options.signal?.throwIfAborted();
      if (!key.startsWith(prefix) || !isObjectKey(key)) continue;
      if (listed >= this.#workerAfter) {
        more = true;
        break;
      }
      const info = await stat(path).catch((err: unknown) => {
        if (isNotFound(err)) return undefined; // deleted while listing
        throw err;
      });
      if (!info?.isFile()) continue;
      listed++;
      last = key;
      yield { key, size: info.size, modifiedAt: info.mtime, etag: etagOf(info) };
    }
    if (more) yield* this.#thread().list(this.root, dir, prefix, last, options.signal);
  }

  /**
   * One readdir of the directory `prefix` ends in; a sub-directory counts only if it holds an
   * object (not merely a crashed writer's temp file or empty directories).
   */
  async *listPrefixes(prefix: string, options: CallOptions = {}): AsyncIterable<string> {
    options.signal?.throwIfAborted();
    if (!(await this.#checkRoot())) return;
    const dir = this.#startDir(prefix);
    const partName = prefix.slice(prefix.lastIndexOf('/') + 1);
    for (const entry of sortEntries(await readdirOrEmpty(dir))) {
      if (!entry.isDirectory() || !entry.name.startsWith(partName)) continue;
      options.signal?.throwIfAborted();
      const sub = `${prefix}${entry.name.slice(partName.length)}/`;
      if (await this.#holdsObject(join(dir, entry.name), sub)) yield sub;
    }
  }

  async #holdsObject(dir: string, prefix: string): Promise<boolean> {
    for await (const { key } of walkFiles(this.root, dir, prefix)) {
      if (!PARTIAL.test(key) && !MUTEX.test(key)) return true;
    }
    return false;
  }

  /** The deepest directory the prefix names completely: the walk starts there. */
  #startDir(prefix: string): string {
    const slash = prefix.lastIndexOf('/');
    return slash < 0 ? this.root : join(this.root, ...prefix.slice(0, slash).split('/'));
  }

  async abortIncompleteUploads(prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean = () => false, options: CallOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted();
    if (!(await this.#checkRoot())) return [];
    const removed: string[] = [];
    await walkTree(
      this.root,
      this.#startDir(prefix),
      prefix,
      async (path, key, dirMtime) => {
        options.signal?.throwIfAborted();
        await this.#abortOne(path, key, dirMtime, prefix, before, spare, removed);
      },
      true,
    );
    return removed;
  }

  /** One step of abortIncompleteUploads: a temp file, or a directory (with its mtime from before its content went). */
  async #abortOne(path: string, key: string, dirMtime: Date | undefined, prefix: string, before: Date, spare: (key: string, startedAt: Date) => boolean, removed: string[]): Promise<void> {
    const isDir = dirMtime !== undefined;
    if (!key.startsWith(prefix) || (!isDir && !PARTIAL.test(key))) return;
    const mtime = dirMtime ?? (await stat(path).catch(() => undefined))?.mtime;
    if (!mtime || mtime.getTime() >= before.getTime() || spare(isDir ? `${key}/` : key, mtime)) return;
    if (!isDir) {
      await unlink(path).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      removed.push(key);
      return;
    }
    // A directory a crashed writer left empty (its files are gone): no object, so no listing shows it.
    try {
      await rmdir(path);
      removed.push(`${key}/`);
    } catch (err) {
      const code = errnoCode(err);
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOENT') throw err;
    }
  }

  async putIfAbsent(key: string, data: Buffer, options: CallOptions = {}): Promise<string | undefined> {
    const target = this.#path(key);
    options.signal?.throwIfAborted();
    // A complete temp file linked into place: link() fails when the key exists, and a reader
    // never sees the object empty or half-written (open O_EXCL + write would show both).
    const temp = await this.#createIn(dirname(target), () => writeTemp(target, data));
    try {
      await link(temp, target);
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') return undefined;
      throw err;
    } finally {
      await unlink(temp).catch(() => undefined);
    }
    await syncDir(dirname(target));
    return versionOf(data);
  }

  async putIfMatch(key: string, data: Buffer, version: string, options: CallOptions = {}): Promise<string | undefined> {
    const target = this.#path(key);
    options.signal?.throwIfAborted();
    return withMutex(target, async () => {
      if ((await this.getVersioned(key))?.version !== version) return undefined;
      const temp = await writeTemp(target, data);
      try {
        await rename(temp, target);
      } catch (err) {
        await unlink(temp).catch(() => undefined);
        throw err;
      }
      await syncDir(dirname(target));
      return versionOf(data);
    }).catch((err: unknown) => {
      if (isNotFound(err)) return undefined; // the directory went with the object
      throw err;
    });
  }

  async deleteIfMatch(key: string, version: string, options: CallOptions = {}): Promise<boolean> {
    const target = this.#path(key);
    options.signal?.throwIfAborted();
    const removed = await withMutex(target, async () => {
      if ((await this.getVersioned(key))?.version !== version) return false;
      await unlink(target);
      return true;
    }).catch((err: unknown) => {
      if (isNotFound(err)) return false;
      throw err;
    });
    if (removed) await removeEmptyDirs(this.root, dirname(target));
    return removed;
  }

  async delete(key: string, options: CallOptions = {}): Promise<void> {
    const path = this.#path(key);
    options.signal?.throwIfAborted();
    try {
      await unlink(path);
    } catch (err) {
      if (isDirectory(err) && !(await stat(path)).isFile()) return;
      if (!isNotFound(err)) throw err;
    }
    // Remove directories the deletion left empty (also when the object was already gone: a
    // failed upload's directory), up to (not including) the root.
    await removeEmptyDirs(this.root, dirname(path));
  }

  /** Holds no client or socket. */
  async close(): Promise<void> {
    this.#worker?.close();
  }
}
