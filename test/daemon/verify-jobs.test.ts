// The daemon's side of `agent verify` (issue 15): `type: verify` schedules in the file, the job
// runner's verify jobs (overlap, slots shared with backups, events), and what metrics and /status
// make of them. The verification itself is injected here (it is tested against real servers in
// test/integration/verify*.test.ts); these tests are about the daemon's plumbing.
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { DaemonEventBus, type VerifyFailed, type VerifySucceeded } from '../../src/daemon/events.ts';
import { JobRunner, verifyFailureMessage, type VerifyRun } from '../../src/daemon/job-runner.ts';
import { createMetrics, seedLastVerified } from '../../src/daemon/metrics.ts';
import { StatusBoard } from '../../src/daemon/status-board.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import type { VerifyOutcome } from '../../src/verify/types.ts';

const yaml = (schedules: string[]) => ['storage: { type: local, path: /tmp/x }', 'timezone: Europe/Paris', 'databases:', '  - name: shop', '    schedules:', ...schedules, ''].join('\n');

function configError(text: string): string {
  try {
    parseConfig(text, 'agent.yaml', {});
  } catch (err) {
    return (err as Error).message;
  }
  throw new Error('expected a configuration error');
}

const outcome = (backupId: string, ok: boolean, problems: VerifyOutcome['problems'] = []): VerifyOutcome => ({
  database: 'shop',
  backupId,
  depth: 'archive',
  ok,
  problems,
  startedAt: '2026-12-01T05:00:00.000Z',
  finishedAt: '2026-12-01T05:01:00.000Z',
});

describe('type: verify schedules', () => {
  it('are read apart from the backup schedules, with depth archive and the newest backups by default', () => {
    const config = parseConfig(
      yaml(['      - { type: dump, at: "03:00" }', '      - { type: verify, cron: "0 5 * * 0" }', '      - { type: verify, at: "06:00", depth: restore, backups: new, timezone: UTC }', '      - { type: verify, at: "07:00", depth: restore, replay_binlog: true }']),
      'agent.yaml',
      {},
    );
    const shop = config.databases[0];
    expect(shop?.schedules.map((s) => s.type)).toEqual(['dump']);
    expect(shop?.verifySchedules).toEqual([
      { type: 'verify', depth: 'archive', backups: 'latest', replayBinlog: false, cron: '0 5 * * 0', timezone: 'Europe/Paris', jitterMs: 0, description: 'verify the newest backups at depth archive, cron "0 5 * * 0" (Europe/Paris)' },
      { type: 'verify', depth: 'restore', backups: 'new', replayBinlog: false, cron: '0 6 * * *', timezone: 'UTC', jitterMs: 0, description: 'verify new backups at depth restore, daily at 06:00 (UTC)' },
      { type: 'verify', depth: 'restore', backups: 'latest', replayBinlog: true, cron: '0 7 * * *', timezone: 'Europe/Paris', jitterMs: 0, description: 'verify the newest backups at depth restore with the binlog replayed, daily at 07:00 (Europe/Paris)' },
    ]);
  });

  it('refuse a depth on a backup schedule and an unknown depth, naming the YAML path', () => {
    expect(configError(yaml(['      - { type: dump, at: "03:00", depth: restore }']))).toContain('databases[0].schedules[0].depth: only a verify schedule (type: verify) takes depth');
    expect(configError(yaml(['      - { type: verify, at: "03:00", depth: deep }']))).toMatch(/databases\[0\]\.schedules\[0\]\.depth: .*objects.*archive.*restore/);
    expect(configError(yaml(['      - { type: verify, at: "03:00", backups: all }']))).toMatch(/databases\[0\]\.schedules\[0\]\.backups: .*latest.*new/);
    expect(configError(yaml(['      - { type: dump, at: "03:00", replay_binlog: true }']))).toContain('databases[0].schedules[0].replay_binlog: only a verify schedule (type: verify) takes replay_binlog');
    expect(configError(yaml(['      - { type: verify, at: "03:00", replay_binlog: true }']))).toContain('databases[0].schedules[0].replay_binlog: the binlog is replayed only by a restore: set depth: restore (here archive, the default)');
    expect(configError(yaml(['      - { type: verify, depth: objects }']))).toContain('databases[0].schedules[0]: give either at: "HH:MM" or cron: "…"');
  });
});

describe('verifyFailureMessage', () => {
  it('names each failed backup with its first problem and how many more', () => {
    const message = verifyFailureMessage('shop', 'archive', [
      outcome('20261201T010000Z', true),
      outcome('20261130T010000Z', false, [
        { backupId: '20261130T010000Z', key: 'shop/backups/20261130T010000Z/dump.sql.zst', message: 'the zstd stream ends early' },
        { backupId: '20261130T010000Z', message: 'no "-- Dump completed" line' },
      ]),
    ]);
    expect(message).toBe(
      'verification of shop at depth archive failed for 1 of 2 backups: backup 20261130T010000Z: shop/backups/20261130T010000Z/dump.sql.zst: the zstd stream ends early (and 1 more problem)',
    );
  });
});

describe('verify jobs of the job runner', () => {
  const config = parseConfig(yaml(['      - { type: dump, at: "03:00" }']), 'agent.yaml', {});

  function setup(verify: VerifyRun) {
    const bus = new DaemonEventBus();
    const events: string[] = [];
    const successes: VerifySucceeded[] = [];
    const failures: VerifyFailed[] = [];
    bus.on('verify:start', (e) => events.push(`start ${e.database} ${e.depth}`));
    bus.on('verify:success', (e) => successes.push(e));
    bus.on('verify:failure', (e) => failures.push(e));
    const metrics = createMetrics(bus);
    const board = new StatusBoard(bus);
    const storage = new MemoryDriver();
    const runner = new JobRunner({ bus, logger: pino({ level: 'silent' }), config: () => config, storage: async () => storage, maxConcurrent: () => 1, verify });
    return { runner, events, successes, failures, metrics, board };
  }

  it('a passing verification emits success, sets the last-verified gauge and the status', async () => {
    const { runner, events, successes, failures, metrics, board } = setup(async (input) => {
      expect(input).toMatchObject({ depth: 'archive', backups: 'latest', replayBinlog: false });
      expect(input.database.name).toBe('shop');
      return [outcome('20261201T010000Z', true)];
    });
    const result = await runner.runVerify('shop', 'archive', 'latest', 'periodic');
    expect(result.status).toBe('succeeded');
    expect(events).toEqual(['start shop archive']);
    expect(successes.map((s) => s.outcomes.map((o) => o.backupId))).toEqual([['20261201T010000Z']]);
    expect(failures).toEqual([]);
    const text = await metrics.render();
    expect(text).toContain(`backup_agent_last_verified_timestamp_seconds{database="shop",depth="archive"} ${Date.parse('2026-12-01T05:01:00.000Z') / 1000}`);
    expect(text).toContain('backup_agent_verify_failures_total{database="shop"} 0');
    expect(board.verifySnapshot().shop).toMatchObject({ running: false, lastSuccess: { depth: 'archive', backups: ['20261201T010000Z'] }, lastFailure: undefined });
  });

  it('a restart is seeded from the records: the gauge and the status, which a newer run of this process then overwrites', async () => {
    const { runner, metrics, board } = setup(async (input) => {
      expect(input.replayBinlog).toBe(true);
      return [outcome('20261201T010000Z', true)];
    });
    seedLastVerified(metrics, 'shop', 'restore', new Date('2026-11-30T05:00:00.000Z'));
    board.seedVerified('shop', { at: '2026-11-30T05:00:00.000Z', depth: 'restore', backupId: '20261129T010000Z' });
    expect(await metrics.render()).toContain(`backup_agent_last_verified_timestamp_seconds{database="shop",depth="restore"} ${Date.parse('2026-11-30T05:00:00.000Z') / 1000}`);
    expect(board.verifySnapshot().shop?.lastSuccess).toEqual({ at: '2026-11-30T05:00:00.000Z', depth: 'restore', backups: ['20261129T010000Z'] });
    // An older record does not replace a newer seed.
    board.seedVerified('shop', { at: '2026-11-29T05:00:00.000Z', depth: 'archive', backupId: '20261128T010000Z' });
    expect(board.verifySnapshot().shop?.lastSuccess?.at).toBe('2026-11-30T05:00:00.000Z');
    await runner.runVerify('shop', 'restore', 'latest', 'periodic', undefined, true);
    expect(await metrics.render()).toContain(`backup_agent_last_verified_timestamp_seconds{database="shop",depth="restore"} ${Date.parse('2026-12-01T05:01:00.000Z') / 1000}`);
    // A seed that comes late (the start-up listing was slower than a verification) never goes back in time.
    seedLastVerified(metrics, 'shop', 'restore', new Date('2026-11-30T05:00:00.000Z'));
    expect(await metrics.render()).toContain(`backup_agent_last_verified_timestamp_seconds{database="shop",depth="restore"} ${Date.parse('2026-12-01T05:01:00.000Z') / 1000}`);
    expect(board.verifySnapshot().shop?.lastSuccess?.backups).toEqual(['20261201T010000Z']);
  });

  it('a backup that fails verification fails the job: event with the backup and problem, counter, status', async () => {
    const { runner, failures, metrics, board } = setup(async () => [outcome('20261130T010000Z', false, [{ backupId: '20261130T010000Z', message: 'shop.orders: 999 rows, 1000 at backup time' }])]);
    const result = await runner.runVerify('shop', 'restore', 'latest', 'periodic');
    expect(result.status).toBe('failed');
    expect(failures).toHaveLength(1);
    expect(failures[0]?.message).toContain('backup 20261130T010000Z: shop.orders: 999 rows, 1000 at backup time');
    expect(failures[0]?.outcomes.map((o) => o.ok)).toEqual([false]);
    expect(await metrics.render()).toContain('backup_agent_verify_failures_total{database="shop"} 1');
    expect(board.verifySnapshot().shop?.lastFailure?.error).toContain('20261130T010000Z');
  });

  it('a verification that cannot run (store unreadable) is a failure too, never silence', async () => {
    const { runner, failures } = setup(async () => {
      throw new Error('storage: connection refused');
    });
    expect((await runner.runVerify('shop', 'objects', 'new', 'periodic')).status).toBe('failed');
    expect(failures.map((f) => f.message)).toEqual(['verification of shop could not run: storage: connection refused']);
  });

  it('a second verification of the same database while one runs is skipped; a backup is not blocked by it', async () => {
    let release = () => undefined as void;
    const { runner } = setup(() => new Promise((resolve) => (release = () => resolve([outcome('20261201T010000Z', true)]))));
    const first = runner.runVerify('shop', 'archive', 'latest', 'periodic');
    expect(await runner.runVerify('shop', 'archive', 'latest', 'periodic')).toEqual({ status: 'skipped', reason: 'overlap' });
    expect(runner.isRunning('shop', 'dump')).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    release();
    expect((await first).status).toBe('succeeded');
  });
});
