/**
 * TEST HOOK, for crash-safety tests only: when BACKUP_AGENT_TEST_PAUSE_AT names a compaction step
 * (merge-data, merge-manifest, source-manifest, source-data, cleanup-manifest), the process prints
 * `test-pause <step>` on stderr the first time it reaches that step and then waits forever, so a
 * test can kill -9 it there. Unset (always, outside tests): a no-op.
 */
export async function testPause(step: string): Promise<void> {
  if (process.env.BACKUP_AGENT_TEST_PAUSE_AT !== step) return;
  process.stderr.write(`test-pause ${step}\n`);
  await new Promise<never>(() => setInterval(() => undefined, 60_000));
}
