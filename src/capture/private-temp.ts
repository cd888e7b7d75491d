import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The agent's private temporary directories (0700, from mkdtemp): a binlog spool without a state
 * directory (binlog row data), the LSN files of a physical backup, the throwaway server of a
 * verify or a datadir PITR. Their names carry the pid of the agent that made them, so that one
 * killed with SIGKILL, which removes nothing, has its directories removed by the next agent that
 * starts on this machine (sweepTempDirs) instead of leaving data in TMPDIR until a reboot.
 */

const PREFIX = 'backup-agent-';
const OWNED = /^backup-agent-[a-z]+-p(\d+)-/;

/** A fresh private directory for `purpose` (lower-case letters), e.g. `backup-agent-lsn-p1234-Xa9b2c`. */
export async function privateTempDir(purpose: string, label?: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `${PREFIX}${purpose}-p${process.pid}-${label ? `${label}-` : ''}`));
}

/** Pure: is the process that made a directory gone? `alive` asks the kernel (kill 0). */
export function ownerGone(name: string, self: number, alive: (pid: number) => boolean): boolean {
  const match = OWNED.exec(name);
  if (!match) return false;
  const pid = Number(match[1]);
  // At start-up this process has made nothing yet: a directory with its pid is an earlier
  // process's (a container's agent is pid 1 at every start).
  if (pid === self) return true;
  return !alive(pid);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, as another user.
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Removes the private directories of agents that are gone. Call once, at start, before this
 * process makes any. Best effort: what cannot be listed or removed stays for the next start.
 */
export async function sweepTempDirs(dir: string = tmpdir()): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(PREFIX) || !ownerGone(name, process.pid, alive)) continue;
    await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
  }
}
