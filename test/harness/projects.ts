// Which test files belong to which vitest project (vitest.config.ts). The integration project's
// global setup starts MariaDB, s3rver and the GCS emulator, and its files run one at a time; every
// other file is a unit test: no servers, files in parallel. test/packaging/test-split.test.ts fails
// when a unit file starts using the servers, so a file can't land in the wrong project unnoticed.

/** Files that need the harness's servers (or start servers of their own). */
export const INTEGRATION_FILES = [
  'test/integration/**/*.test.ts',
  // Probes that start s3rver and the GCS emulator themselves.
  'test/harness/**/*.test.ts',
  // Backups of the harness's MariaDB; one check against the real client and that server.
  'test/backup/**/*.test.ts',
  'test/capture/dump-args.test.ts',
  'test/capture/tool-environment.test.ts',
  'test/daemon/job-runner.test.ts',
  // The storage contract against s3rver and the GCS emulator.
  'test/storage/drivers.test.ts',
  // The retry decorator against s3rver and the GCS emulator behind a fault proxy.
  'test/storage/retry.test.ts',
  // Catalog layouts and the large catalog, on local storage and s3rver.
  'test/catalog/layouts.test.ts',
  'test/catalog/large-catalog.test.ts',
];

export const ALL_TEST_FILES = ['test/**/*.test.ts'];
