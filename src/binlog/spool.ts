import { lstat, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { privateTempDir } from '../capture/private-temp.ts';

/**
 * The directory mariadb-binlog writes into. Its content is re-fetchable and is deleted at every
 * (re)connect, so the capture must only ever delete what is provably its own: it works in a
 * dedicated subdirectory that holds a marker file, creates that subdirectory itself, and refuses a
 * non-empty one without the marker (someone's data, a backup store, a typo in spool_dir). With no
 * spool_dir and no systemd state directory it uses a private mkdtemp directory (0700), never a
 * predictable path in a shared /tmp, and removes it when the capture ends.
 */

export const SPOOL_MARKER = '.backup-agent-spool';

export interface Spool {
  readonly dir: string;
  /** Deletes everything in the spool but the marker, after checking the marker is still there. */
  clear(): Promise<void>;
  /** Bytes the spool holds (the tool's files). */
  bytes(): Promise<number>;
  /** When the capture ends: removes a private temp spool; a configured one stays until the next connect. */
  dispose(): Promise<void>;
}

/** The spool's directory name under a configured spool_dir or the state directory. */
export function spoolDirName(database: string): string {
  return `binlog-spool.${database}`;
}

/** Where the spool goes: under binlog.spool_dir, else under systemd's StateDirectory; undefined: a private temp directory. */
export function spoolLocation(database: DatabaseConfig, env: NodeJS.ProcessEnv = process.env): string | undefined {
  const root = database.binlog.spool_dir ?? env['STATE_DIRECTORY']?.split(':')[0];
  return root ? join(root, spoolDirName(database.name)) : undefined;
}

const refuse = (dir: string, why: string): AgentError =>
  new AgentError('refused', `prepare binlog spool ${dir}: ${why}`, {
    hint: 'point binlog.spool_dir at a directory the agent may create its own subdirectory in; it never deletes a directory without its marker file',
  });

/** Creates (or adopts) the spool of `database` and returns it, emptied. */
export async function openSpool(database: DatabaseConfig, env: NodeJS.ProcessEnv = process.env): Promise<Spool> {
  const location = spoolLocation(database, env);
  const temporary = location === undefined;
  const dir = location ?? (await privateTempDir('binlog', database.name));
  if (!temporary) await adopt(dir, database.name);
  else await writeMarker(dir, database.name);
  const spool: Spool = {
    dir,
    async clear() {
      const marker = await lstat(join(dir, SPOOL_MARKER)).catch(() => undefined);
      if (!marker?.isFile()) throw refuse(dir, `its marker file ${SPOOL_MARKER} is gone: nothing in it is deleted`);
      for (const name of await readdir(dir)) {
        if (name !== SPOOL_MARKER) await rm(join(dir, name), { recursive: true, force: true });
      }
    },
    async bytes() {
      let total = 0;
      for (const name of await readdir(dir)) {
        if (name === SPOOL_MARKER) continue;
        total += await stat(join(dir, name)).then((s) => (s.isFile() ? s.size : 0), () => 0);
      }
      return total;
    },
    async dispose() {
      if (temporary) await rm(dir, { recursive: true, force: true });
    },
  };
  await spool.clear();
  return spool;
}

/** Makes `dir` the spool: created with its marker when missing or empty; refused when it holds anything without the marker. */
async function adopt(dir: string, database: string): Promise<void> {
  const info = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw refuse(dir, messageOf(err));
  });
  if (info && !info.isDirectory()) throw refuse(dir, 'it exists and is not a directory (a symbolic link is not followed)');
  if (!info) {
    await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
      throw refuse(dir, messageOf(err));
    });
    await writeMarker(dir, database);
    return;
  }
  const names = await readdir(dir);
  if (names.includes(SPOOL_MARKER)) {
    const marker = await lstat(join(dir, SPOOL_MARKER));
    if (!marker.isFile()) throw refuse(dir, `${SPOOL_MARKER} is not a regular file`);
    return;
  }
  if (names.length > 0) throw refuse(dir, `the directory is not empty and has no ${SPOOL_MARKER} marker: it is not the agent's spool, and the capture deletes its spool's content`);
  await writeMarker(dir, database);
}

async function writeMarker(dir: string, database: string): Promise<void> {
  const text = `${JSON.stringify({ owner: 'backup-agent', database, purpose: 'binlog capture spool: everything here but this file is deleted at every (re)connect' })}\n`;
  await writeFile(join(dir, SPOOL_MARKER), text, { mode: 0o600, flag: 'wx' }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw refuse(dir, messageOf(err));
  });
}
