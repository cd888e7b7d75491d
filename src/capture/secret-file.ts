import { existsSync, rmSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Secrets reach child tools through a file, never argv (visible in `ps`) or the log: a MariaDB
 * option file with the connection's password, an age identity given in an API request. The file
 * is written 0600 in a private (0700) temp directory, opened, and its name removed before the tool
 * starts: the tool reads it through the agent's open descriptor, so nothing stays on disk while
 * it runs and a SIGKILL of the agent leaves nothing behind.
 */

/** Directories of secret files not yet removed, for removeSecretFiles on a forced exit. */
const live = new Set<string>();

/**
 * Removes every secret file still in place, synchronously: a forced exit (a second
 * SIGINT/SIGTERM) does not run the `finally` that normally does it.
 */
export function removeSecretFiles(): void {
  for (const dir of live) rmSync(dir, { recursive: true, force: true });
  live.clear();
}

/**
 * Calls `fn` with the path of a fresh file holding `content`, named `name` in a private directory.
 * Where /proc exists the path is `/proc/<agent pid>/fd/<n>` of the agent's open descriptor (which
 * opens the unlinked file afresh, from its start, for every process of the same user that opens
 * it, as often as it likes), and the name is already gone; without /proc the file keeps its name
 * until `fn` settles. Either way the directory is removed when `fn` settles.
 */
export async function withSecretFile<T>(name: string, content: string, fn: (path: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'backup-agent-'));
  live.add(dir);
  const removeDir = async (): Promise<void> => {
    if (!live.has(dir)) return;
    await rm(dir, { recursive: true, force: true });
    live.delete(dir);
  };
  let handle: FileHandle | undefined;
  try {
    const path = join(dir, name);
    await writeFile(path, content, { mode: 0o600, flag: 'wx' });
    handle = await open(path, 'r');
    const byDescriptor = `/proc/${process.pid}/fd/${handle.fd}`;
    if (existsSync(byDescriptor)) {
      await removeDir();
      return await fn(byDescriptor);
    }
    return await fn(path);
  } finally {
    await handle?.close();
    await removeDir();
  }
}
