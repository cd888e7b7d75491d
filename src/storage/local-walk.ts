import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { errnoCode } from './local-fs.ts';

/**
 * Walking the local driver's directory tree on the main thread: lazily and in key order for
 * listPrefixes' probes, or eagerly with directories after their content for the clean-up of
 * crashed writes; and what the worker thread's listings share with them (key order, which files
 * are objects).
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

/** In-flight files: `<key>.<12 hex>.partial`; never listed and never visible under their key. */
export const PARTIAL = /\.[0-9a-f]{12}\.partial$/;
/** The compare-and-swap mutex of a key (local-fs.ts): never listed. */
export const MUTEX = /\.cas-mutex$/;

/** Whether the file at `key` is an object (not a writer's temp file or a mutex). */
export const isObjectKey = (key: string): boolean => !PARTIAL.test(key) && !MUTEX.test(key);

export function keyOf(root: string, path: string): string {
  return relative(root, path).split(sep).join('/');
}

/** `dir/name` without path.join's normalisation: `dir` is already absolute and normal. */
export const childPath = (dir: string, name: string) => (dir.endsWith(sep) ? `${dir}${name}` : `${dir}${sep}${name}`);

/**
 * Every file under `dir` that can hold keys under `prefix`, in ascending key order, read as the
 * caller reads: listPrefixes asks whether a directory holds any object, and stops at the first.
 * (Listings walk in the worker thread, local-worker.ts.)
 */
export function walkFiles(root: string, dir: string, prefix: string): AsyncIterable<{ path: string; key: string }> {
  return walkDir(dir, keyOf(root, dir), prefix);
}

async function* walkDir(dir: string, dirKey: string, prefix: string): AsyncGenerator<{ path: string; key: string }> {
  for (const entry of sortEntries(await readdirOrEmpty(dir))) {
    const key = dirKey === '' ? entry.name : `${dirKey}/${entry.name}`;
    const path = childPath(dir, entry.name);
    if (entry.isFile()) yield { path, key };
    else if (entry.isDirectory() && (key.startsWith(prefix) || prefix.startsWith(`${key}/`))) yield* walkDir(path, key, prefix);
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
