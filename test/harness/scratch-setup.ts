// The unit project's global setup: no servers, only a scratch directory per test run for
// testDir() (a unit test may write files, never into the repository). Runs of dead runners are
// removed; KEEP_TEST_RUN keeps this run's files for a look afterwards.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

const SCRATCH = fileURLToPath(new URL('../../.tmp/scratch', import.meta.url));
const ROOT = join(SCRATCH, String(process.pid));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function setup(project: TestProject): Promise<void> {
  for (const run of await readdir(SCRATCH).catch(() => [] as string[])) {
    const runner = Number(run);
    if (runner === process.pid || (runner > 0 && alive(runner))) continue;
    await rm(join(SCRATCH, run), { recursive: true, force: true });
  }
  await mkdir(ROOT, { recursive: true });
  project.provide('runRoot', ROOT);
}

export async function teardown(): Promise<void> {
  if (!process.env['KEEP_TEST_RUN']) await rm(ROOT, { recursive: true, force: true });
}
