import { availableParallelism } from 'node:os';
import { configDefaults, defineConfig } from 'vitest/config';
import { ALL_TEST_FILES, INTEGRATION_FILES } from './test/harness/projects.ts';

// Two projects, one run, one report. Unit files (no servers) run first, in parallel; then the
// integration files, which share one MariaDB, one s3rver and one GCS emulator on a 2-core
// machine, run one at a time for stable timings and no cross-talk. A project whose files are not
// part of the run does not start its global setup: `npx vitest run test/config/config.test.ts`
// starts no server.
export default defineConfig({
  test: {
    testTimeout: 120_000,
    hookTimeout: 120_000,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ALL_TEST_FILES,
          exclude: [...configDefaults.exclude, ...INTEGRATION_FILES],
          globalSetup: ['test/harness/scratch-setup.ts'],
          fileParallelism: true,
          // vitest's default is cores − 1, which is no parallelism at all on a 2-core machine.
          maxWorkers: Math.max(2, availableParallelism()),
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: INTEGRATION_FILES,
          globalSetup: ['test/harness/global-setup.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
