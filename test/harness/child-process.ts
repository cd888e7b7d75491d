// Helpers to run long-lived test services (emulators) as detached children.
// Each service runs in its own process group so stop() also reaps its children;
// its pid is recorded in <runDir>/<name>.pid so killStale() can clean up after a crashed run.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SpawnOptions {
  /** Directory for the pid file and (by default) the log file. Created if missing. */
  runDir: string;
  /** Resolves true once the service is usable; rejections count as "not yet". */
  readyCheck: () => Promise<boolean>;
  env?: NodeJS.ProcessEnv;
  /** Startup deadline (default 15 s). */
  timeoutMs?: number;
  /** Default: <runDir>/<name>.log (truncated at start). */
  logFile?: string;
}

export interface ServiceHandle {
  pid: number;
  logFile: string;
  /** SIGTERM to the process group, up to 5 s grace, then SIGKILL. Idempotent. */
  stop(): Promise<void>;
}

const LOG_TAIL_BYTES = 2048;
const POLL_MS = 50;
const STOP_GRACE_MS = 5000;

export async function spawnService(
  name: string,
  command: string,
  args: readonly string[],
  opts: SpawnOptions,
): Promise<ServiceHandle> {
  await mkdir(opts.runDir, { recursive: true });
  const logFile = opts.logFile ?? join(opts.runDir, `${name}.log`);
  const pidFile = join(opts.runDir, `${name}.pid`);
  const logFd = openSync(logFile, 'w');
  const child = spawn(command, args, {
    detached: true, // own process group: stop() signals -pid
    stdio: ['ignore', logFd, logFd],
    env: opts.env ?? process.env,
  });
  closeSync(logFd); // the child has its own copy
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ? `signal ${signal}` : `code ${code}`));
    child.once('error', (err) => resolve(`spawn error: ${err.message}`));
  });
  let exitStatus: string | undefined;
  void exited.then((s) => { exitStatus = s; });
  child.unref(); // never keep the test process alive just for the service

  const pid = child.pid;
  if (pid === undefined) {
    const reason = await exited;
    throw new Error(`${name}: failed to start ${command}: ${reason}`);
  }
  // Line 2 (the command line) lets killStale() refuse to kill a recycled pid.
  await writeFile(pidFile, `${pid}\n${[command, ...args].join('\0')}\n`);

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (exitStatus === undefined) {
        child.ref(); // keep the event loop alive until the exit event arrives
        signalGroup(pid, 'SIGTERM');
        const graceful = await Promise.race([exited.then(() => true), sleep(STOP_GRACE_MS, false, { ref: false })]);
        if (!graceful) {
          signalGroup(pid, 'SIGKILL');
          await exited;
        }
      }
      signalGroup(pid, 'SIGKILL'); // stray grandchildren left in the group, if any
      await rm(pidFile, { force: true });
    })();
    return stopped;
  };

  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  for (;;) {
    if (exitStatus !== undefined) {
      await rm(pidFile, { force: true });
      throw new Error(`${name} exited during startup (${exitStatus}); log ${logFile} ends:\n${await tail(logFile)}`);
    }
    if (await opts.readyCheck().catch(() => false)) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${name} not ready after ${opts.timeoutMs ?? 15_000} ms; log ${logFile} ends:\n${await tail(logFile)}`);
    }
    await Promise.race([sleep(POLL_MS), exited]);
  }
  return { pid, logFile, stop };
}

/** Kills the process groups named by leftover <runDir>/*.pid files and removes the files. */
export async function killStale(runDir: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir(runDir);
  } catch {
    return [];
  }
  const killed: number[] = [];
  for (const entry of entries.filter((e) => e.endsWith('.pid'))) {
    const file = join(runDir, entry);
    const [pidLine = '', cmdLine = ''] = (await readFile(file, 'utf8')).split('\n');
    const pid = Number.parseInt(pidLine, 10);
    if (pid > 1 && (await isSameProcess(pid, cmdLine))) {
      signalGroup(pid, 'SIGKILL');
      killed.push(pid);
    }
    await rm(file, { force: true });
  }
  return killed;
}

/** A port that was free a moment ago on 127.0.0.1. */
/** A free TCP port on 127.0.0.1 (shared with `agent demo`). */
export { freePort } from '../../src/sandbox/free-port.ts';

/** True when anything answers HTTP on url (any status). No keep-alive, 1 s timeout. */
export function httpAnswers(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.once('timeout', () => req.destroy());
    req.once('error', () => resolve(false));
    req.end();
  });
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // ESRCH: the group is gone already
  }
}

async function isSameProcess(pid: number, recordedCmd: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  if (!recordedCmd) return true;
  try {
    const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).replace(/\0$/, '');
    return cmd === recordedCmd;
  } catch {
    return process.platform !== 'linux'; // no /proc: trust the pid file
  }
}

async function tail(file: string): Promise<string> {
  try {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      const start = Math.max(0, size - LOG_TAIL_BYTES);
      const buf = Buffer.alloc(size - start);
      await fh.read(buf, 0, buf.length, start);
      return buf.toString('utf8');
    } finally {
      await fh.close();
    }
  } catch (err) {
    return `(log unreadable: ${(err as Error).message})`;
  }
}
