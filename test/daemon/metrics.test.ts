import { describe, expect, it } from 'vitest';
import { register as globalRegistry } from 'prom-client';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { DaemonEventBus } from '../../src/daemon/events.ts';
import { createMetrics, seedLastSuccess, type Metrics } from '../../src/daemon/metrics.ts';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A small parser of the Prometheus text exposition: one sample per non-comment line. */
function parseExposition(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!match) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const label of (match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[label[1]!] = label[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function series(metrics: Metrics, name: string): Promise<Sample[]> {
  return parseExposition(await metrics.render()).filter((s) => s.name === name);
}

async function value(metrics: Metrics, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const found = (await series(metrics, name)).filter((s) => JSON.stringify(s.labels) === JSON.stringify(labels));
  expect(found.length).toBeLessThanOrEqual(1);
  return found[0]?.value;
}

function manifest(database: string, completedAt: string, sizeBytes: number): Manifest {
  return {
    format: 'backup-agent/manifest',
    version: 1,
    id: '20250101T030000.000Z',
    database,
    type: 'dump',
    trigger: 'periodic',
    status: 'completed',
    startedAt: '2025-01-01T03:00:00.000Z',
    completedAt,
    sizeBytes,
    rawSizeBytes: sizeBytes * 4,
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    schemas: ['app'],
    objects: [
      { key: 'k', role: 'data', sizeBytes, sha256: 'a'.repeat(64), compression: 'zstd', rawSizeBytes: sizeBytes * 4 },
    ],
    binlog: null,
    server: { flavor: 'mariadb', version: '11.4.0', serverId: 1, hostname: 'db' },
    tool: { name: 'mariadb-dump', version: '11.4.0' },
    agent: { version: '0.1.0', hostname: 'agent' },
  };
}

const prod = { database: 'prod', type: 'dump' } as const;

describe('daemon metrics', () => {
  it('uses its own registry, with default process metrics under the agent prefix', async () => {
    const metrics = createMetrics(new DaemonEventBus());
    expect(metrics.registry).not.toBe(globalRegistry);
    expect(globalRegistry.getSingleMetric('backup_agent_running_jobs')).toBeUndefined();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await metrics.render();
    expect(text).toContain('# HELP backup_agent_process_cpu_user_seconds_total');
    expect(text).toContain('# TYPE backup_agent_last_success_timestamp_seconds gauge');
    expect(text).toContain('# TYPE backup_agent_backups_total counter');
    // A second daemon in the same process (tests, embedding) must not collide on metric names.
    expect(() => createMetrics(new DaemonEventBus())).not.toThrow();
  });

  it('counts a successful job: running 1 then 0, last success, duration, size, totals', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    bus.emit('job:start', { ...prod, trigger: 'periodic', startedAt: new Date('2025-01-01T03:00:00Z') });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(1);
    // Counters exist at 0 before the first failure, so increase() sees the first one.
    expect(await value(metrics, 'backup_agent_failures_total', prod)).toBe(0);
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'failure' })).toBe(0);

    bus.emit('job:success', { ...prod, trigger: 'periodic', manifest: manifest('prod', '2025-01-01T03:02:05.500Z', 123_456), durationMs: 125_500 });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(0);
    expect(await value(metrics, 'backup_agent_last_success_timestamp_seconds', prod)).toBe(Date.parse('2025-01-01T03:02:05.500Z') / 1000);
    expect(await value(metrics, 'backup_agent_last_duration_seconds', prod)).toBe(125.5);
    expect(await value(metrics, 'backup_agent_last_size_bytes', prod)).toBe(123_456);
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'success' })).toBe(1);
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'failure' })).toBe(0);
    expect(await value(metrics, 'backup_agent_failures_total', prod)).toBe(0);
    expect(await series(metrics, 'backup_agent_last_failure_timestamp_seconds')).toEqual([]);
  });

  it('counts a failed job per database, leaving the others alone', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    const other = { database: 'other', type: 'dump' } as const;
    const startedAt = new Date('2025-01-02T01:00:00Z');
    bus.emit('job:start', { ...prod, trigger: 'manual', startedAt });
    bus.emit('job:start', { ...other, trigger: 'periodic', startedAt });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(1);
    expect(await value(metrics, 'backup_agent_running_jobs', other)).toBe(1);

    bus.emit('job:failure', { ...prod, trigger: 'manual', message: 'connect to prod: refused', hint: undefined, durationMs: 2_000, startedAt });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(0);
    expect(await value(metrics, 'backup_agent_running_jobs', other)).toBe(1);
    expect(await value(metrics, 'backup_agent_last_failure_timestamp_seconds', prod)).toBe(startedAt.getTime() / 1000 + 2);
    expect(await value(metrics, 'backup_agent_last_duration_seconds', prod)).toBe(2);
    expect(await value(metrics, 'backup_agent_failures_total', prod)).toBe(1);
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'failure' })).toBe(1);
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'success' })).toBe(0);
    expect(await value(metrics, 'backup_agent_failures_total', other)).toBe(0);
    expect(await series(metrics, 'backup_agent_last_success_timestamp_seconds')).toEqual([]);
    expect(await series(metrics, 'backup_agent_last_size_bytes')).toEqual([]);

    bus.emit('job:failure', { ...prod, trigger: 'periodic', message: 'again', hint: 'check it', durationMs: 500, startedAt });
    expect(await value(metrics, 'backup_agent_failures_total', prod)).toBe(2);
    expect(await value(metrics, 'backup_agent_last_duration_seconds', prod)).toBe(0.5);
  });

  it('never counts running jobs below zero', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    const startedAt = new Date('2025-01-02T01:00:00Z');
    bus.emit('job:failure', { ...prod, trigger: 'periodic', message: 'cancelled', hint: undefined, durationMs: 0, startedAt });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(0);
    bus.emit('job:start', { ...prod, trigger: 'periodic', startedAt });
    expect(await value(metrics, 'backup_agent_running_jobs', prod)).toBe(1);
  });

  it('counts skipped jobs by reason', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    bus.emit('job:skipped', { ...prod, trigger: 'periodic', reason: 'overlap' });
    bus.emit('job:skipped', { ...prod, trigger: 'periodic', reason: 'overlap' });
    expect(await series(metrics, 'backup_agent_skipped_total')).toEqual([
      { name: 'backup_agent_skipped_total', labels: { ...prod, reason: 'overlap' }, value: 2 },
    ]);
  });

  it('sets the next run from schedule:next and removes the series when there is none', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    const staging = { database: 'staging', type: 'dump' } as const;
    bus.emit('schedule:next', { ...prod, at: new Date('2025-03-30T01:00:00Z') });
    bus.emit('schedule:next', { ...staging, at: new Date('2025-03-30T02:30:00Z') });
    expect(await series(metrics, 'backup_agent_next_run_timestamp_seconds')).toEqual([
      { name: 'backup_agent_next_run_timestamp_seconds', labels: prod, value: Date.parse('2025-03-30T01:00:00Z') / 1000 },
      { name: 'backup_agent_next_run_timestamp_seconds', labels: staging, value: Date.parse('2025-03-30T02:30:00Z') / 1000 },
    ]);
    // A scheduled job's counters and running gauge exist from the start, at 0.
    expect(await value(metrics, 'backup_agent_failures_total', staging)).toBe(0);
    expect(await value(metrics, 'backup_agent_running_jobs', staging)).toBe(0);

    bus.emit('schedule:next', { ...prod, at: new Date('2025-03-31T01:00:00Z') });
    bus.emit('schedule:next', { ...staging, at: undefined });
    expect(await series(metrics, 'backup_agent_next_run_timestamp_seconds')).toEqual([
      { name: 'backup_agent_next_run_timestamp_seconds', labels: prod, value: Date.parse('2025-03-31T01:00:00Z') / 1000 },
    ]);
  });

  it('seeds the last success from the catalog, and a later success replaces it', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    seedLastSuccess(metrics, 'prod', 'dump', new Date('2024-12-31T01:00:00Z'), 999);
    seedLastSuccess(metrics, 'legacy', 'dump', new Date('2024-12-30T01:00:00Z'));
    expect(await value(metrics, 'backup_agent_last_success_timestamp_seconds', prod)).toBe(Date.parse('2024-12-31T01:00:00Z') / 1000);
    expect(await value(metrics, 'backup_agent_last_size_bytes', prod)).toBe(999);
    expect(await value(metrics, 'backup_agent_last_success_timestamp_seconds', { database: 'legacy', type: 'dump' })).toBe(
      Date.parse('2024-12-30T01:00:00Z') / 1000,
    );
    expect(await value(metrics, 'backup_agent_last_size_bytes', { database: 'legacy', type: 'dump' })).toBeUndefined();
    expect(await value(metrics, 'backup_agent_backups_total', { ...prod, result: 'success' })).toBe(0);

    bus.emit('job:start', { ...prod, trigger: 'periodic', startedAt: new Date('2025-01-01T03:00:00Z') });
    bus.emit('job:success', { ...prod, trigger: 'periodic', manifest: manifest('prod', '2025-01-01T03:01:00.000Z', 42), durationMs: 60_000 });
    expect(await value(metrics, 'backup_agent_last_success_timestamp_seconds', prod)).toBe(Date.parse('2025-01-01T03:01:00Z') / 1000);
    expect(await value(metrics, 'backup_agent_last_size_bytes', prod)).toBe(42);
  });

  it('binlog capture: health as a gauge and a state set, storage errors counted, lag computed from the clock at each scrape', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    const labels = { database: 'prod' };
    const pendingSince = new Date(Date.now() - 5000).toISOString();
    bus.emit('binlog:state', {
      database: 'prod',
      health: 'degraded',
      healthSince: new Date().toISOString(),
      connected: true,
      pendingBytes: 4096,
      spoolBytes: 10_000,
      pendingSince,
      lagSeconds: 0,
      lastEventAt: null,
      lastRecoverableAt: null,
      completeThrough: null,
      segments: 3,
      error: 'storage writes failing since …',
      storageError: { message: 'connect ECONNREFUSED', since: pendingSince, attempts: 2 },
    });
    bus.emit('binlog:storage-error', { database: 'prod', message: 'connect ECONNREFUSED' });
    bus.emit('binlog:storage-error', { database: 'prod', message: 'connect ECONNREFUSED' });
    expect(await value(metrics, 'backup_agent_binlog_healthy', labels)).toBe(0);
    expect(await value(metrics, 'backup_agent_binlog_state', { ...labels, state: 'degraded' })).toBe(1);
    expect(await value(metrics, 'backup_agent_binlog_state', { ...labels, state: 'healthy' })).toBe(0);
    expect(await value(metrics, 'backup_agent_binlog_storage_errors_total', labels)).toBe(2);
    expect(await value(metrics, 'backup_agent_binlog_spool_bytes', labels)).toBe(10_000);
    expect(await value(metrics, 'backup_agent_binlog_capture_failures_total', labels)).toBe(0);
    // lagSeconds in the event was 0: the gauge does not trust a stale report, it reads the clock.
    expect(await value(metrics, 'backup_agent_binlog_lag_seconds', labels)).toBeGreaterThanOrEqual(5);

    bus.emit('binlog:health', { database: 'prod', health: 'failed', previous: 'degraded', reason: 'spool over its bound', at: new Date() });
    expect(await value(metrics, 'backup_agent_binlog_capture_failures_total', labels)).toBe(1);
  });

  it('prune: failures counted from 0, the last success as a timestamp; daemon problems by what', async () => {
    const bus = new DaemonEventBus();
    const metrics = createMetrics(bus);
    bus.emit('job:start', { ...prod, trigger: 'periodic', startedAt: new Date() });
    expect(await value(metrics, 'backup_agent_prune_failures_total', { database: 'prod' })).toBe(0);
    bus.emit('prune:success', { database: 'prod', why: 'daily', at: new Date('2026-11-21T04:00:00Z'), removed: 2 });
    bus.emit('prune:failure', { database: 'prod', why: 'daily', at: new Date(), message: 'list prod: refused', hint: undefined });
    expect(await value(metrics, 'backup_agent_prune_failures_total', { database: 'prod' })).toBe(1);
    expect(await value(metrics, 'backup_agent_last_prune_success_timestamp_seconds', { database: 'prod' })).toBe(Date.parse('2026-11-21T04:00:00Z') / 1000);
    bus.emit('daemon:problem', { database: 'prod', what: 'read catalog at start-up', message: 'refused' });
    expect(await value(metrics, 'backup_agent_daemon_errors_total', { what: 'read catalog at start-up' })).toBe(1);
  });
});
