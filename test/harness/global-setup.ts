// Starts the real components every integration suite uses, once per test run, and stops them by
// PID afterwards — also when tests fail. A missing component (mariadbd, s3rver, firebase-tools)
// makes this throw, which fails the run: nothing is ever skipped for lack of a component.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort, killStale } from './child-process.ts';
import { startGcsServer, type GcsServer } from './gcs-server.ts';
import { startS3Server, type S3Server } from './s3-server.ts';

// One directory per test run (keyed by the runner's pid), so concurrent runs never share servers.
const RUNS = fileURLToPath(new URL('../../.tmp/runs', import.meta.url));
export const RUN_ROOT = join(RUNS, String(process.pid));

declare module 'vitest' {
  export interface ProvidedContext {
    runRoot: string;
    mariadb: { port: number; socket: string; dir: string; password: string };
    s3: { endpoint: string };
    gcs: { endpoint: string };
  }
}

let stops: (() => Promise<void>)[] = [];

export async function setup(project: TestProject): Promise<void> {
  await cleanStaleRuns();
  await mkdir(join(RUN_ROOT, 'run'), { recursive: true });
  // Every agent a test starts keeps its manifest cache in this run, not in the user's ~/.cache.
  process.env['XDG_CACHE_HOME'] = join(RUN_ROOT, 'cache');

  const [mariadb, s3, gcs] = await Promise.all([
    freePort().then((port) => startSandbox({ dir: join(RUN_ROOT, 'mariadb'), port, agentPassword: 'agent-pw-Secr3t' })),
    startS3Server({ dir: join(RUN_ROOT, 's3'), runDir: join(RUN_ROOT, 'run') }),
    startGcsServer({ runDir: join(RUN_ROOT, 'run') }),
  ] as [Promise<Sandbox>, Promise<S3Server>, Promise<GcsServer>]);
  stops = [mariadb.stop, s3.stop, gcs.stop];

  project.provide('runRoot', RUN_ROOT);
  project.provide('mariadb', { port: mariadb.port, socket: mariadb.socket, dir: join(RUN_ROOT, 'mariadb'), password: 'agent-pw-Secr3t' });
  project.provide('s3', { endpoint: s3.endpoint });
  project.provide('gcs', { endpoint: gcs.endpoint });
}

export async function teardown(): Promise<void> {
  await Promise.allSettled(stops.map((stop) => stop()));
  // Servers a failed test did not get to stop (restore targets) go too; then the run's files.
  await stopServersUnder(RUN_ROOT);
  if (!process.env['KEEP_TEST_RUN']) await rm(RUN_ROOT, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A crashed earlier run (its runner pid is gone) may have left servers behind: stop them by the
 * pids they recorded, then remove its directory. Runs whose runner still lives are left alone.
 */
async function cleanStaleRuns(): Promise<void> {
  const runs = await readdir(RUNS).catch(() => [] as string[]);
  for (const run of runs) {
    const runner = Number(run);
    if (runner === process.pid || (runner > 0 && alive(runner))) continue;
    const root = join(RUNS, run);
    await killStale(join(root, 'run'));
    await stopServersUnder(root);
    await rm(root, { recursive: true, force: true });
  }
}

/** SIGKILLs every sandbox MariaDB whose pid file lies under `root`. */
async function stopServersUnder(root: string): Promise<void> {
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  for (const entry of entries.filter((e) => e.endsWith('mysqld.pid'))) {
    const pid = Number((await readFile(join(root, entry), 'utf8').catch(() => '')).trim());
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
  }
}
