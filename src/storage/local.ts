import { BLOCK_SIZE } from '../pipeline/rechunk.ts';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { assertValidKey, StorageNotFoundError, type ObjectInfo, type PutOptions, type StorageDriver } from './driver.ts';

/** In-flight files: `<key>.<12 hex>.partial`; never listed and never visible under their key. */
const PARTIAL = /\.[0-9a-f]{12}\.partial$/;

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

/** unlink of a directory: not an object, so for delete it is as good as missing. */
function isDirectory(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'EISDIR' || code === 'EPERM';
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

/**
 * A directory on a local or mounted file system. put writes `<key>.<random>.partial` beside the
 * target, fsyncs it, renames it into place and fsyncs the directory: an object is either whole
 * or absent, also across a crash.
 */
export class LocalDriver implements StorageDriver {
  readonly root: string;
  readonly location: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.location = this.root;
  }

  #path(key: string): string {
    assertValidKey(key);
    return join(this.root, ...key.split('/'));
  }

  async put(key: string, body: Readable, options: PutOptions = {}): Promise<{ size: number }> {
    const target = this.#path(key);
    await mkdir(dirname(target), { recursive: true });
    const temp = `${target}.${randomBytes(6).toString('hex')}.partial`;
    const out = createWriteStream(temp, { flags: 'wx', mode: 0o640, flush: true, highWaterMark: BLOCK_SIZE });
    try {
      await pipeline(body, out, options.signal ? { signal: options.signal } : {});
      await rename(temp, target);
      await syncDir(dirname(target));
    } catch (err) {
      await unlink(temp).catch(() => undefined);
      throw err;
    }
    return { size: out.bytesWritten };
  }

  async get(key: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const path = this.#path(key);
    // Open first so a missing object rejects here rather than as a later stream error.
    const handle = await open(path, 'r').catch((err: unknown) => {
      throw isNotFound(err) ? new StorageNotFoundError(key, { cause: err }) : err;
    });
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new StorageNotFoundError(key); // a directory of other keys, not an object
    }
    return createReadStream('', { fd: handle, ...(options.signal ? { signal: options.signal } : {}) });
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await stat(this.#path(key));
      return info.isFile() ? { key, size: info.size, modifiedAt: info.mtime } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    // Start at the deepest directory the prefix names completely, then filter by the rest.
    const slash = prefix.lastIndexOf('/');
    const startDir = slash < 0 ? this.root : join(this.root, ...prefix.slice(0, slash).split('/'));
    const found: ObjectInfo[] = [];
    await this.#walk(startDir, prefix, found);
    found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    yield* found;
  }

  async #walk(dir: string, prefix: string, found: ObjectInfo[]): Promise<void> {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isNotFound(err)) return;
      throw err;
    }
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const key = relative(this.root, path).split(sep).join('/');
      if (entry.isDirectory()) {
        if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await this.#walk(path, prefix, found);
      } else if (entry.isFile() && !PARTIAL.test(entry.name) && key.startsWith(prefix)) {
        const info = await stat(path).catch(() => undefined);
        if (info) found.push({ key, size: info.size, modifiedAt: info.mtime });
      }
    }
  }

  async abortIncompleteUploads(prefix: string, before: Date): Promise<string[]> {
    const slash = prefix.lastIndexOf('/');
    const startDir = slash < 0 ? this.root : join(this.root, ...prefix.slice(0, slash).split('/'));
    const removed: string[] = [];
    const walk = async (dir: string): Promise<void> => {
      const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
        if (isNotFound(err)) return [];
        throw err;
      });
      for (const entry of entries) {
        const path = join(dir, entry.name);
        const key = relative(this.root, path).split(sep).join('/');
        if (entry.isDirectory()) {
          if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) await walk(path);
        } else if (PARTIAL.test(entry.name) && key.startsWith(prefix)) {
          const info = await stat(path).catch(() => undefined);
          if (info && info.mtime.getTime() < before.getTime()) {
            await unlink(path).catch(() => undefined);
            removed.push(key);
          }
        }
      }
    };
    await walk(startDir);
    return removed;
  }

  async putIfAbsent(key: string, data: Buffer): Promise<boolean> {
    const target = this.#path(key);
    await mkdir(dirname(target), { recursive: true });
    let handle;
    try {
      handle = await open(target, 'wx', 0o640);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncDir(dirname(target));
    return true;
  }

  async delete(key: string): Promise<void> {
    const path = this.#path(key);
    try {
      await unlink(path);
    } catch (err) {
      if (isNotFound(err)) return;
      if (isDirectory(err) && !(await stat(path)).isFile()) return;
      throw err;
    }
    // Remove directories the deletion left empty, up to (not including) the root.
    for (let dir = dirname(path); dir.startsWith(`${this.root}${sep}`); dir = dirname(dir)) {
      try {
        await rmdir(dir);
      } catch {
        break; // not empty (or already gone): stop climbing
      }
    }
  }
}
