import type { Dirent } from 'node:fs';
import { readdirSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { errnoCode } from './local-fs.ts';

/**
 * Walking the local driver's directory tree: lazily and in key order for listings, or eagerly
 * with directories after their content for the clean-up of crashed writes.
 */

/** The entries of `dir`; none when it is gone (or not a directory: a key's parent that is a file). */
export async function readdirOrEmpty(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/**
 * Directory entries in the order of the keys below them: a directory sorts as `name + "/"`, so
 * "a-b" and "a.txt" come before the keys in "a/" and "a0" after them, as in S3's key order.
 */
export function sortEntries<T extends { name: string; isDirectory(): boolean }>(entries: T[]): T[] {
  const sortKey = (e: T) => (e.isDirectory() ? `${e.name}/` : e.name);
  return entries.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : sortKey(a) > sortKey(b) ? 1 : 0));
}

function keyOf(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/** `dir/name` without path.join's normalisation: `dir` is already absolute and normal. */
const childPath = (dir: string, name: string) => (dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`);

/** Every file under `dir` that can hold keys under `prefix`, in ascending key order: one readdir at a time, as the caller reads. */
export function walkFiles(root: string, dir: string, prefix: string): AsyncIterable<{ path: string; key: string }> {
  return walkDir(dir, keyOf(root, dir), prefix);
}

async function* walkDir(dir: string, dirKey: string, prefix: string): AsyncGenerator<{ path: string; key: string }> {
  for (const entry of sortEntries(await readdirOrEmpty(dir))) {
    const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
    const path = childPath(dir, entry.name);
    if (entry.isDirectory()) {
      if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* walkDir(path, key, prefix);
    } else if (entry.isFile()) {
      yield { path, key };
    }
  }
}

/**
 * Visits every file under `dir` that can hold keys under `prefix` and, with `dirs`, every
 * directory after its content, with the modification time it had before its content was visited.
 */
export async function walkTree(root: string, dir: string, prefix: string, visit: (path: string, key: string, dirMtime?: Date) => Promise<void>, dirs = false): Promise<void> {
  for (const entry of await readdirOrEmpty(dir)) {
    const path = join(dir, entry.name);
    const key = keyOf(root, path);
    if (entry.isDirectory()) {
      if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) {
        const mtime = dirs ? (await stat(path)).mtime : undefined;
        await walkTree(root, path, prefix, visit, dirs);
        if (mtime) await visit(path, key, mtime);
      }
    } else if (entry.isFile()) {
      await visit(path, key);
    }
  }
}

/** The entries of `dir`, read synchronously; none when it is gone (or not a directory). */
function readdirSyncOrEmpty(dir: string): Dirent[] {
  try {
    return readdirSync(dir, { withFileTypes: true });
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw err;
  }
}

/**
 * walkFiles with synchronous reads, one directory at a time as the caller pulls: for a caller
 * that reads in time slices (LocalDriver.list). A catalog of 20,000 backups is ~60,000 file-system
 * calls of a few microseconds each; through the thread pool each costs a round trip and a promise.
 */
export function* walkFilesSync(root: string, dir: string, prefix: string): Generator<{ path: string; key: string }> {
  yield* walkDirSync(dir, keyOf(root, dir), prefix);
}

function* walkDirSync(dir: string, dirKey: string, prefix: string): Generator<{ path: string; key: string }> {
  for (const entry of sortEntries(readdirSyncOrEmpty(dir))) {
    const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
    const path = childPath(dir, entry.name);
    if (entry.isDirectory()) {
      if (key.startsWith(prefix) || prefix.startsWith(`${key}/`)) yield* walkDirSync(path, key, prefix);
    } else if (entry.isFile()) {
      yield { path, key };
    }
  }
}
