import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { VerifyDepth } from '../domain/verify.ts';
import type { BackupType, DaemonEventBus, JobRef } from './events.ts';

/** The Prometheus view of the daemon, fed only by the event bus. */
export interface Metrics {
  /** The daemon's own registry (never prom-client's global one, so tests and reloads stay isolated). */
  registry: Registry;
  /** The Content-Type header for `render()`'s output. */
  contentType: string;
  /** The text exposition of every metric, for `/metrics`. */
  render(): Promise<string>;
}

type JobLabel = 'database' | 'type';

interface Instruments {
  lastSuccess: Gauge<JobLabel>;
  lastSize: Gauge<JobLabel>;
  initialise(job: { database: string; type: BackupType }): void;
  /** Sets a last-verified series unless it already holds a newer time. */
  setVerified(database: string, depth: string, ms: number): void;
}

/** The instruments behind each Metrics object, for `seedLastSuccess`, without widening the public shape. */
const instruments = new WeakMap<Metrics, Instruments>();

const seconds = (ms: number): number => ms / 1000;

/**
 * Creates the daemon's metrics and subscribes them to `bus`. Create it once per process: the
 * registry outlives config reloads, so series keep their history.
 */
export function createMetrics(bus: DaemonEventBus): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'backup_agent_' });
  const jobLabels = ['database', 'type'] as const;
  const registers = [registry];

  const lastSuccess = new Gauge({
    name: 'backup_agent_last_success_timestamp_seconds',
    help: 'When the last successful backup finished, as a Unix timestamp.',
    labelNames: jobLabels,
    registers,
  });
  const lastFailure = new Gauge({
    name: 'backup_agent_last_failure_timestamp_seconds',
    help: 'When the last failed backup ended, as a Unix timestamp.',
    labelNames: jobLabels,
    registers,
  });
  const lastDuration = new Gauge({
    name: 'backup_agent_last_duration_seconds',
    help: 'How long the last finished backup took, whether it succeeded or failed.',
    labelNames: jobLabels,
    registers,
  });
  const lastSize = new Gauge({
    name: 'backup_agent_last_size_bytes',
    help: 'Bytes stored by the last successful backup (after compression).',
    labelNames: jobLabels,
    registers,
  });
  const backupsTotal = new Counter({
    name: 'backup_agent_backups_total',
    help: 'Backups that finished, by result (success or failure).',
    labelNames: [...jobLabels, 'result'] as const,
    registers,
  });
  const failuresTotal = new Counter({
    name: 'backup_agent_failures_total',
    help: 'Backups that failed.',
    labelNames: jobLabels,
    registers,
  });
  const skippedTotal = new Counter({
    name: 'backup_agent_skipped_total',
    help: 'Backups not started, by reason (overlap: the previous run was still going).',
    labelNames: [...jobLabels, 'reason'] as const,
    registers,
  });
  const runningJobs = new Gauge({
    name: 'backup_agent_running_jobs',
    help: 'Backups running right now.',
    labelNames: jobLabels,
    registers,
  });
  const nextRun = new Gauge({
    name: 'backup_agent_next_run_timestamp_seconds',
    help: 'When the next scheduled backup is due, as a Unix timestamp.',
    labelNames: jobLabels,
    registers,
  });

  /**
   * Counters start at 0 as soon as a job is known, so that `increase(…failures_total[1h]) > 0`
   * fires on the first failure too (a series born at 1 has no increase).
   */
  const known = new Set<string>();
  const initialise = ({ database, type }: { database: string; type: BackupType }): void => {
    const key = `${database}\u0000${type}`;
    if (known.has(key)) return;
    known.add(key);
    const labels = { database, type };
    backupsTotal.inc({ ...labels, result: 'success' }, 0);
    backupsTotal.inc({ ...labels, result: 'failure' }, 0);
    failuresTotal.inc(labels, 0);
    runningJobs.inc(labels, 0);
    pruneFailures.inc({ database }, 0);
  };
  const labelsOf = (job: JobRef) => ({ database: job.database, type: job.type });
  /** Counted here so that a finish without a start (a cancelled queued job) cannot go below 0. */
  const running = new Map<string, number>();
  const setRunning = (job: JobRef, delta: 1 | -1): void => {
    const key = `${job.database}\u0000${job.type}`;
    const count = Math.max(0, (running.get(key) ?? 0) + delta);
    running.set(key, count);
    runningJobs.set(labelsOf(job), count);
  };

  bus.on('schedule:next', (event) => {
    const labels = { database: event.database, type: event.type };
    if (event.at === undefined) {
      nextRun.remove(labels);
      return;
    }
    initialise(event);
    nextRun.set(labels, seconds(event.at.getTime()));
  });
  bus.on('job:start', (event) => {
    initialise(event);
    setRunning(event, 1);
  });
  bus.on('job:success', (event) => {
    const labels = labelsOf(event);
    initialise(event);
    setRunning(event, -1);
    lastSuccess.set(labels, seconds(Date.parse(event.manifest.completedAt)));
    lastDuration.set(labels, seconds(event.durationMs));
    lastSize.set(labels, event.manifest.sizeBytes);
    backupsTotal.inc({ ...labels, result: 'success' });
  });
  bus.on('job:failure', (event) => {
    const labels = labelsOf(event);
    initialise(event);
    setRunning(event, -1);
    lastFailure.set(labels, seconds(event.startedAt.getTime() + event.durationMs));
    lastDuration.set(labels, seconds(event.durationMs));
    backupsTotal.inc({ ...labels, result: 'failure' });
    failuresTotal.inc(labels);
  });
  bus.on('job:skipped', (event) => {
    initialise(event);
    skippedTotal.inc({ ...labelsOf(event), reason: event.reason });
  });

  // Binlog capture, per database.
  const binlogLabels = ['database'] as const;
  const binlogConnected = new Gauge({ name: 'backup_agent_binlog_connected', help: '1 while the binlog capture is connected to the server.', labelNames: binlogLabels, registers });
  const binlogPending = new Gauge({ name: 'backup_agent_binlog_pending_bytes', help: 'Binlog bytes fetched but not yet archived.', labelNames: binlogLabels, registers });
  /** The latest pendingSince per capture: the lag gauge is computed from it at each scrape, so an outage shows even while nothing reports. */
  const pendingSince = new Map<string, string | null>();
  const binlogLag = new Gauge({
    name: 'backup_agent_binlog_lag_seconds',
    help: 'How long the oldest binlog bytes not yet archived have waited (0 when the archive is caught up): the data a failure now would lose. Computed from the clock at each scrape.',
    labelNames: binlogLabels,
    registers,
    collect() {
      const now = Date.now();
      for (const [database, since] of pendingSince) this.set({ database }, since === null ? 0 : Math.max(0, (now - Date.parse(since)) / 1000));
    },
  });
  const binlogHealthy = new Gauge({
    name: 'backup_agent_binlog_healthy',
    help: '1 while the binlog capture is connected and archiving; 0 while it is starting, reconnecting, degraded (uploads failing) or failed.',
    labelNames: binlogLabels,
    registers,
  });
  const binlogState = new Gauge({
    name: 'backup_agent_binlog_state',
    help: 'The binlog capture health as a state set: 1 for the current one of starting, healthy, reconnecting, degraded, failed.',
    labelNames: [...binlogLabels, 'state'] as const,
    registers,
  });
  const binlogSpool = new Gauge({ name: 'backup_agent_binlog_spool_bytes', help: 'Bytes the binlog capture spool holds (bounded by binlog.max_spool_mb).', labelNames: binlogLabels, registers });
  const binlogStorageErrors = new Counter({ name: 'backup_agent_binlog_storage_errors_total', help: 'Binlog segment upload attempts that failed.', labelNames: binlogLabels, registers });
  const binlogFailures = new Counter({ name: 'backup_agent_binlog_capture_failures_total', help: 'Times the binlog capture entered the failed state (it is restarted after a pause).', labelNames: binlogLabels, registers });
  const binlogLastEvent = new Gauge({ name: 'backup_agent_binlog_last_event_timestamp_seconds', help: 'Server time of the last archived binlog event.', labelNames: binlogLabels, registers });
  const binlogRecoverable = new Gauge({
    name: 'backup_agent_binlog_last_recoverable_timestamp_seconds',
    help: 'The latest time a point-in-time restore can reach (a base backup plus contiguous binlog, or the complete-through marker).',
    labelNames: binlogLabels,
    registers,
  });
  const binlogSegments = new Counter({ name: 'backup_agent_binlog_segments_total', help: 'Binlog segments archived.', labelNames: binlogLabels, registers });
  const binlogBytes = new Counter({ name: 'backup_agent_binlog_bytes_total', help: 'Binlog bytes archived (before compression).', labelNames: binlogLabels, registers });
  const setTime = (gauge: Gauge<'database'>, database: string, iso: string | null) => {
    if (iso === null) gauge.remove({ database });
    else gauge.set({ database }, seconds(Date.parse(iso)));
  };
  const HEALTH_STATES = ['starting', 'healthy', 'reconnecting', 'degraded', 'failed'] as const;
  bus.on('binlog:state', (event) => {
    const labels = { database: event.database };
    binlogSegments.inc(labels, 0);
    binlogBytes.inc(labels, 0);
    binlogStorageErrors.inc(labels, 0);
    binlogFailures.inc(labels, 0);
    binlogConnected.set(labels, event.connected ? 1 : 0);
    binlogHealthy.set(labels, event.health === 'healthy' ? 1 : 0);
    for (const state of HEALTH_STATES) binlogState.set({ ...labels, state }, event.health === state ? 1 : 0);
    binlogPending.set(labels, event.pendingBytes);
    binlogSpool.set(labels, event.spoolBytes);
    pendingSince.set(event.database, event.pendingSince);
    setTime(binlogLastEvent, event.database, event.lastEventAt);
    setTime(binlogRecoverable, event.database, event.lastRecoverableAt);
  });
  bus.on('binlog:health', (event) => {
    if (event.health === 'failed') binlogFailures.inc({ database: event.database });
  });
  bus.on('binlog:storage-error', (event) => binlogStorageErrors.inc({ database: event.database }));
  bus.on('binlog:segment', (event) => {
    const labels = { database: event.database };
    binlogSegments.inc(labels);
    binlogBytes.inc(labels, event.segment.end - event.segment.start);
    setTime(binlogLastEvent, event.database, event.segment.lastEventAt);
    setTime(binlogRecoverable, event.database, event.lastRecoverableAt);
  });

  // Retention and other work outside jobs: a failure here must be as visible as a failed backup.
  const pruneFailures = new Counter({ name: 'backup_agent_prune_failures_total', help: 'Prune runs of the daemon that failed.', labelNames: ['database'] as const, registers });
  const pruneLastSuccess = new Gauge({
    name: 'backup_agent_last_prune_success_timestamp_seconds',
    help: 'When the last successful prune of the database finished, as a Unix timestamp.',
    labelNames: ['database'] as const,
    registers,
  });
  const daemonProblems = new Counter({
    name: 'backup_agent_daemon_errors_total',
    help: 'Things the daemon could not do outside a backup job (read the catalog at start-up, read the binlog archive, …), by what.',
    labelNames: ['what'] as const,
    registers,
  });
  bus.on('prune:success', (event) => {
    pruneFailures.inc({ database: event.database }, 0);
    pruneLastSuccess.set({ database: event.database }, seconds(event.at.getTime()));
  });
  bus.on('prune:failure', (event) => pruneFailures.inc({ database: event.database }));
  bus.on('daemon:problem', (event) => daemonProblems.inc({ what: event.what }));

  // Verification (type: verify schedules): when a backup was last proven, and every failed proof.
  const lastVerified = new Gauge({
    name: 'backup_agent_last_verified_timestamp_seconds',
    help: 'When a backup of the database last passed verification (agent verify), as a Unix timestamp.',
    labelNames: ['database', 'depth'] as const,
    registers,
  });
  const verifyFailures = new Counter({
    name: 'backup_agent_verify_failures_total',
    help: 'Verification runs of the daemon that failed: a backup failed verification, or the verification could not run.',
    labelNames: ['database'] as const,
    registers,
  });
  // The value of each last-verified series, so a start-up seed never replaces a newer one.
  const verifiedAt = new Map<string, number>();
  const setVerified = (database: string, depth: string, ms: number) => {
    const key = `${database}\u0000${depth}`;
    if ((verifiedAt.get(key) ?? -Infinity) >= ms) return;
    verifiedAt.set(key, ms);
    lastVerified.set({ database, depth }, seconds(ms));
  };
  bus.on('verify:success', (event) => {
    verifyFailures.inc({ database: event.database }, 0);
    const newest = Math.max(...event.outcomes.map((o) => Date.parse(o.finishedAt)));
    if (Number.isFinite(newest)) setVerified(event.database, event.depth, newest);
  });
  bus.on('verify:failure', (event) => verifyFailures.inc({ database: event.database }));

  const metrics: Metrics = {
    registry,
    contentType: registry.contentType,
    render: () => registry.metrics(),
  };
  instruments.set(metrics, { lastSuccess, lastSize, initialise, setVerified });
  return metrics;
}

/**
 * Sets the last-success series from the catalog at start-up, so `/metrics` tells the truth before
 * the first job of this process finishes. `sizeBytes` (the manifest's) also sets the last size.
 * Call it before the scheduler starts: a later job:success overwrites it, which is what we want.
 */
export function seedLastSuccess(metrics: Metrics, database: string, type: BackupType, at: Date, sizeBytes?: number): void {
  const own = instruments.get(metrics);
  if (!own) throw new Error('seed metrics: not created by createMetrics');
  const labels = { database, type };
  own.initialise(labels);
  own.lastSuccess.set(labels, seconds(at.getTime()));
  if (sizeBytes !== undefined) own.lastSize.set(labels, sizeBytes);
}

/**
 * Sets the last-verified series from the verification records in the catalog at start-up (the
 * newest passed record at each depth), so `/metrics` does not read "never verified" after a
 * restart. Never replaces a newer value (a verification of this process that finished before the
 * start-up listing did); a later verify:success overwrites it.
 */
export function seedLastVerified(metrics: Metrics, database: string, depth: VerifyDepth, at: Date): void {
  const own = instruments.get(metrics);
  if (!own) throw new Error('seed metrics: not created by createMetrics');
  own.setVerified(database, depth, at.getTime());
}
