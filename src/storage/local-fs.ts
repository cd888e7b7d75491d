import { mkdir, open, readFile, rmdir, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, sep } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * File-system steps of the local driver that need care beyond one syscall: creating directories
 * without Node's recursive mkdir, removing the empty ones a deletion leaves, and a short-lived
 * per-key mutex for compare-and-swap.
 */

export function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

/**
 * Creates `dir` and its missing parents, one mkdir per level. Not `mkdir({ recursive: true })`:
 * on a path the kernel refuses to create in (e.g. under /proc) Node's recursive mkdir retries
 * forever in the thread pool, burning CPU, and no signal can stop it.
 */
export async function ensureDir(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let current = dir; ; ) {
    try {
      const info = await stat(current);
      if (!info.isDirectory()) throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${current}'`), { code: 'ENOTDIR', path: current });
      break;
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      missing.push(current);
      const parent = dirname(current);
      if (parent === current) throw err;
      current = parent;
    }
  }
  for (const level of missing.reverse()) {
    try {
      await mkdir(level, { mode: 0o750 });
    } catch (err) {
      // Another writer created it in between: fine, as long as it is a directory.
      if (errnoCode(err) !== 'EEXIST' || !(await stat(level)).isDirectory()) throw err;
    }
  }
}

/** Removes `from` and its parents while they are empty, up to (not including) `root`. */
export async function removeEmptyDirs(root: string, from: string): Promise<void> {
  for (let dir = from; dir.startsWith(`${root}${sep}`); dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch (err) {
      const code = errnoCode(err);
      // Not empty, already gone, or not ours to remove (a mount point, permissions): stop climbing.
      // An empty directory left behind holds no object; prune removes it later.
      if (code !== undefined && ['ENOTEMPTY', 'EEXIST', 'ENOENT', 'EBUSY', 'EACCES', 'EPERM', 'EROFS'].includes(code)) return;
      throw err;
    }
  }
}

/** A mutex older than this was left by a writer that died or hung: it is held for milliseconds. */
const MUTEX_STALE_MS = 10_000;
const MUTEX_WAIT_MS = 15_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM'; // exists, owned by someone else
  }
}

/**
 * Runs `fn` holding `<path>.cas-mutex`, created with O_EXCL: every compare-and-swap on one key
 * goes through it, so compare and swap are one step for every writer on this file system. A
 * mutex whose owner is gone (same host, dead pid) or that is older than 10 s is broken.
 */
export async function withMutex<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const mutex = `${path}.cas-mutex`;
  const owner = `${hostname()} ${process.pid}`;
  const deadline = Date.now() + MUTEX_WAIT_MS;
  for (;;) {
    let handle;
    try {
      handle = await open(mutex, 'wx', 0o640);
    } catch (err) {
      if (errnoCode(err) !== 'EEXIST') throw err;
      await breakIfStale(mutex);
      if (Date.now() > deadline) throw new Error(`lock ${path}: ${mutex} is held by another writer`, { cause: err });
      await sleep(5 + Math.floor(Math.random() * 20));
      continue;
    }
    try {
      await handle.writeFile(owner);
    } finally {
      await handle.close();
    }
    try {
      return await fn();
    } finally {
      await unlink(mutex).catch((err: unknown) => {
        if (errnoCode(err) !== 'ENOENT') throw err; // broken as stale by another writer: already gone
      });
    }
  }
}

async function breakIfStale(mutex: string): Promise<void> {
  const [info, content] = await Promise.all([stat(mutex), readFile(mutex, 'utf8')]).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') return [undefined, ''] as const; // released meanwhile
    throw err;
  });
  if (!info) return;
  const [host, pid] = content.split(' ');
  const dead = host === hostname() && pid !== undefined && /^\d+$/.test(pid) && !processAlive(Number(pid));
  if (dead || Date.now() - info.mtimeMs > MUTEX_STALE_MS) {
    await unlink(mutex).catch((err: unknown) => {
      if (errnoCode(err) !== 'ENOENT') throw err;
    });
  }
}
