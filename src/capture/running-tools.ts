/**
 * The pids of the tools the agent has started and not yet seen exit, for killTools on a forced
 * exit. Apart from tool-process.ts so that a command's signal handling does not load execa.
 */

const running = new Set<number>();

export function trackTool(pid: number): void {
  running.add(pid);
}

export function untrackTool(pid: number): void {
  running.delete(pid);
}

/**
 * SIGKILLs every tool still running, synchronously: for a forced exit (a second SIGINT/SIGTERM),
 * which does not wait for the graceful cancel. An orphaned tool would go on reading the server.
 */
export function killTools(): void {
  for (const pid of running) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (err) {
      // ESRCH: it exited meanwhile, which is what was wanted.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
  running.clear();
}
