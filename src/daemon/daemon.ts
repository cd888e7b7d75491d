import type { Server } from 'node:http';
import { Cron } from 'croner';
import type { Logger } from 'pino';
import { describeUnreadable } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { CommandContext } from '../cli/context.ts';
import { createApiRestore } from './api-restore.ts';
import { loadConfig } from '../config/load.ts';
import type { AgentConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { attachNotifier } from '../notify/notifier.ts';
import { prune } from '../retention/prune.ts';
import { isOverdue, nextRun } from '../scheduler/schedule.ts';
import type { Schedule, VerifySchedule } from '../domain/schedule.ts';
import type { VerifyDepth } from '../verify/types.ts';
import { newestPassedByDepth } from '../verify/record.ts';
import { join } from 'node:path';
import { ApiScheduleStore, newScheduleId, readScheduleInput, stateDir, toRunSchedule, type ApiSchedule } from './api-schedules.ts';
import { Scheduler, type ScheduledJob } from '../scheduler/scheduler.ts';
import { AGENT_VERSION } from '../version.ts';
import { BinlogSupervisor } from './binlog-supervisor.ts';
import { brief } from './brief.ts';
import { DaemonEventBus } from './events.ts';
import { startHttpServer, type HttpDeps } from './http.ts';
import { JobRegistry } from './job-registry.ts';
import type { BackupType, Trigger } from './events.ts';
import { pruneReport } from '../cli/prune.ts';
import { JobRunner } from './job-runner.ts';
import { createMetrics, seedLastSuccess, seedLastVerified } from './metrics.ts';
import { StatusBoard } from './status-board.ts';

export interface DaemonOptions {
  configPath: string;
  env: NodeJS.ProcessEnv;
  /** Where JSON logs go; stdout for the service. */
  logFd?: 1 | 2;
}

/** The file's schedules and those made through the API (of databases the configuration still names). */
function scheduledJobs(config: AgentConfig, fromApi: readonly ApiSchedule[] = []): ScheduledJob[] {
  const names = new Set(config.databases.map((d) => d.name));
  return [
    ...config.databases.flatMap((database) => database.schedules.map((schedule) => ({ database: database.name, schedule }))),
    ...fromApi.filter((s) => names.has(s.database)).map((s) => ({ database: s.database, schedule: toRunSchedule(s, config.timezone) })),
  ];
}

/** A schedule as the API shows it, from the file (read-only there) or made through the API. */
export interface ScheduleView {
  id: string;
  database: string;
  type: BackupType;
  source: 'file' | 'api';
  read_only: boolean;
  description: string;
  cron: string;
  timezone: string;
  next_run: string | null;
  /** False for an API schedule whose database the configuration no longer names. */
  active: boolean;
  created_at: string | null;
  created_by: string | null;
  updated_at: string | null;
}

function scheduleViews(config: AgentConfig, fromApi: readonly ApiSchedule[], now = new Date()): ScheduleView[] {
  const view = (id: string, database: string, schedule: Schedule, source: 'file' | 'api', active: boolean, made?: ApiSchedule): ScheduleView => ({
    id,
    database,
    type: schedule.type,
    source,
    read_only: source === 'file',
    description: schedule.description,
    cron: schedule.cron,
    timezone: schedule.timezone,
    next_run: active ? (nextRun(schedule, now)?.toISOString() ?? null) : null,
    active,
    created_at: made?.createdAt ?? null,
    created_by: made?.createdBy ?? null,
    updated_at: made?.updatedAt ?? null,
  });
  const names = new Set(config.databases.map((d) => d.name));
  return [
    ...config.databases.flatMap((d) => d.schedules.map((schedule, i) => view(`file-${d.name}-${i}`, d.name, schedule, 'file', true))),
    ...fromApi.map((s) => view(s.id, s.database, toRunSchedule(s, config.timezone), 'api', names.has(s.database), s)),
  ];
}

/**
 * `agent daemon`: periodic backups on schedules, until SIGTERM/SIGINT. The composition root of the
 * service: config, event bus, job runner, scheduler, metrics, notifications and the HTTP listener.
 * Resolves with the exit code once stopped.
 */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  let config = loadConfig(options.configPath, options.env);
  const logger: Logger = createLogger(config.logLevel, options.logFd ?? 1);
  // The daemon writes to its stores anyway: its listings keep the store's manifest pack fresh.
  let context = new CommandContext(config, logger);
  context.packMode = 'refresh';
  const bus = new DaemonEventBus((event, error) => logger.error({ event, error: messageOf(error) }, 'event listener failed'));
  const metrics = createMetrics(bus);
  const board = new StatusBoard(bus);
  let notifier = attachNotifier(bus, config.notifications, logger);
  const startedAt = new Date();
  let ready = false;

  const runner = new JobRunner({
    bus,
    logger,
    config: () => config,
    storage: (database) => context.storage(database),
    catalog: (database) => context.catalog(database),
    maxConcurrent: () => config.daemon.max_concurrent_jobs,
    // agent verify's code is loaded only when a verify schedule fires.
    verify: async (input) => (await import('../verify/verify-entry.ts')).verifyEntry(input),
  });
  // Schedules made through the API: in the state directory, loaded before anything is scheduled.
  const apiSchedules = new ApiScheduleStore(join(stateDir(options.env), 'api-schedules.json'));
  if (config.api) await apiSchedules.load();
  // Every job the daemon runs gets an ID (GET /v1/jobs): periodic ones, catch-ups and those asked for through the API.
  const jobs = new JobRegistry();
  const backupJob = (database: string, type: BackupType, trigger: Trigger, requestedBy?: string) => {
    const job = jobs.create('backup', { database, type, trigger: requestedBy === undefined ? trigger : 'api', requestedBy });
    void runner.run(database, type, trigger, job);
    return job.record;
  };
  const scheduler = new Scheduler({
    announce: (next) => bus.emit('schedule:next', { database: next.database, type: next.type, at: next.at }),
    logger,
    onDue: (job) => void backupJob(job.database, job.schedule.type, 'periodic'),
  });
  // Verifications (type: verify schedules): proofs that backups restore, in the same slots as backups.
  const verifyJob = (database: string, depth: VerifyDepth, backups: 'latest' | 'new', trigger: Trigger, requestedBy?: string, replayBinlog = false) => {
    const job = jobs.create('verify', { database, trigger: requestedBy === undefined ? trigger : 'api', requestedBy });
    void runner.runVerify(database, depth, backups, trigger, job, replayBinlog);
    return job.record;
  };
  const verifyScheduler = new Scheduler<VerifySchedule>({
    announce: (next) => board.verifyNext(next.database, next.schedule.description, next.at),
    logger,
    onDue: (job) => void verifyJob(job.database, job.schedule.depth, job.schedule.backups, 'periodic', undefined, job.schedule.replayBinlog),
  });
  const binlog = new BinlogSupervisor({ bus, logger, storage: (database) => context.storage(database), catalog: (database) => context.catalog(database) });
  const applyBinlog = (next: AgentConfig): void => {
    binlog.apply(next).catch((err: unknown) => {
      logger.error({ error: messageOf(err) }, 'cannot start the binlog captures');
      bus.emit('daemon:problem', { database: undefined, what: 'start binlog captures', message: brief(messageOf(err)) });
    });
  };
  // Retention: after each successful periodic backup of a database, and once a day for all.
  const pruning = new Map<string, Promise<void>>();
  const pruneDatabase = (name: string, why: string) => {
    if (pruning.has(name)) return;
    const database = config.databases.find((d) => d.name === name);
    if (!database) return;
    const job = jobs.create('prune', { database: name, trigger: 'periodic' });
    const task = (async () => {
      job.started();
      try {
        const { outcome } = await prune(await context.storage(database), database, {
          timeZone: config.timezone,
          orphanGraceMs: config.prune.orphan_grace,
          lockTtlMs: config.prune.lock_ttl,
          dryRun: false,
          logger,
          cache: (await context.catalog(database)).cache,
          pack: context.packMode,
        });
        logger.info({ database: name, why, removed: outcome?.removed.length ?? 0, orphansRemoved: outcome?.orphansRemoved.length ?? 0 }, 'prune completed');
        bus.emit('prune:success', { database: name, why, at: new Date(), removed: outcome?.removed.length ?? 0 });
        job.succeeded(`pruned ${why}: removed ${outcome?.removed.length ?? 0} backups`);
      } catch (err) {
        job.failed(err);
        const hint = err instanceof AgentError ? err.hint : undefined;
        logger.error({ database: name, why, error: messageOf(err), hint }, 'prune failed');
        // Not only logged: metrics, /status, webhooks and heartbeats hear of it.
        bus.emit('prune:failure', { database: name, why, at: new Date(), message: brief(messageOf(err)), hint: hint === undefined ? undefined : brief(hint) });
      }
    })().finally(() => pruning.delete(name));
    pruning.set(name, task);
  };
  const restoreNow = createApiRestore({ config: () => config, context: () => context, jobs, logger, bus });

  /** A prune asked for through the API: one job over the named databases, reported as `agent prune --json` reports it. */
  const pruneNow = async (names: readonly string[], dryRun: boolean, requestedBy: string) => {
    const job = jobs.create('prune', { database: names.join(','), trigger: 'api', requestedBy });
    job.started();
    const reports: unknown[] = [];
    let current = names[0] ?? '';
    try {
      for (const name of names) {
        current = name;
        const database = config.databases.find((d) => d.name === name);
        if (!database) throw new AgentError('usage', `no database entry named ${name}`);
        const { plan, outcome } = await prune(await context.storage(database), database, {
          timeZone: config.timezone,
          orphanGraceMs: config.prune.orphan_grace,
          lockTtlMs: config.prune.lock_ttl,
          dryRun,
          logger,
          signal: job.signal,
          cache: (await context.catalog(database)).cache,
          pack: context.packMode,
        });
        reports.push(pruneReport(plan, outcome, dryRun));
        if (!dryRun) bus.emit('prune:success', { database: name, why: `asked for by ${requestedBy}`, at: new Date(), removed: outcome?.removed.length ?? 0 });
      }
    } catch (err) {
      job.failed(err);
      if (!dryRun) {
        const hint = err instanceof AgentError ? err.hint : undefined;
        bus.emit('prune:failure', { database: current, why: `asked for by ${requestedBy}`, at: new Date(), message: brief(messageOf(err)), hint: hint === undefined ? undefined : brief(hint) });
      }
      throw err;
    }
    job.succeeded(dryRun ? 'planned (dry run)' : 'pruned');
    return { job: job.record, reports };
  };
  bus.on('job:success', (e) => {
    if (e.trigger === 'periodic') pruneDatabase(e.database, 'after a periodic backup');
  });
  let dailyPrune: Cron | undefined;

  const schedule = () => {
    dailyPrune?.stop();
    const [hour, minute] = config.prune.daily_at.split(':').map(Number);
    dailyPrune = new Cron(`${minute ?? 0} ${hour ?? 4} * * *`, { timezone: config.timezone, catch: true }, () => {
      for (const database of config.databases) pruneDatabase(database.name, 'daily');
    });
    for (const database of config.databases) {
      for (const s of database.schedules) board.describe(database.name, s.type, s.description);
    }
    board.retain(new Set(config.databases.map((d) => d.name)));
    scheduler.start(scheduledJobs(config, apiSchedules.list()));
    verifyScheduler.start(config.databases.flatMap((database) => database.verifySchedules.map((schedule) => ({ database: database.name, schedule }))));
    for (const s of apiSchedules.list()) board.describe(s.database, s.type, toRunSchedule(s, config.timezone).description);
  };

  const legacy: HttpDeps = {
    ready: () => ready,
    metrics,
    status: () => ({
      pid: process.pid,
      startedAt: startedAt.toISOString(),
      version: AGENT_VERSION,
      jobs: board.snapshot(),
      binlog: binlog.snapshot(),
      prune: board.pruneSnapshot(),
      verify: board.verifySnapshot(),
    }),
  };
  let server: Server;
  let closeServer: () => Promise<void>;
  try {
    if (config.api) {
      // The API (and with it fastify) is loaded only when configured.
      const { startApi } = await import('../api/server.ts');
      const app = await startApi(
        {
          config: () => config,
          logger,
          storage: (database) => context.storage(database),
          catalog: (database) => context.catalog(database),
          jobs,
          legacy,
          backupNow: (database, type, requestedBy) => {
            if (runner.isRunning(database, type)) {
              const running = jobs.list().find((j) => j.kind === 'backup' && j.database === database && j.finishedAt === undefined && (j.type === 'dump') === (type === 'dump'));
              return { conflict: `a ${type === 'dump' ? 'dump' : 'physical backup'} of ${database} is running${running ? ` (job ${running.id})` : ''}` };
            }
            return { job: backupJob(database, type, 'manual', requestedBy) };
          },
          prune: (databases, dryRun, requestedBy) => pruneNow(databases, dryRun, requestedBy),
          restore: (request, requestedBy) => restoreNow(request, requestedBy),
          schedules: {
            list: () => scheduleViews(config, apiSchedules.list()),
            create: async (database, type, input, by) => {
              const entry: ApiSchedule = { id: newScheduleId(), database, type, ...readScheduleInput(input, 'body.schedule'), createdAt: new Date().toISOString(), createdBy: by };
              await apiSchedules.replace([...apiSchedules.list(), entry]);
              schedule();
              logger.info({ id: entry.id, database, type, by }, 'schedule added through the API');
              return scheduleViews(config, apiSchedules.list()).find((v) => v.id === entry.id) as ScheduleView;
            },
            update: async (id, patch, by) => {
              const found = apiSchedules.get(id);
              if (!found) return undefined;
              const next: ApiSchedule = {
                ...found,
                ...(patch.type === undefined ? {} : { type: patch.type }),
                ...(patch.schedule === undefined ? {} : { cron: undefined, at: undefined, timezone: undefined, ...readScheduleInput(patch.schedule, 'body.schedule') }),
                updatedAt: new Date().toISOString(),
              };
              await apiSchedules.replace(apiSchedules.list().map((s) => (s.id === id ? next : s)));
              schedule();
              logger.info({ id, by }, 'schedule changed through the API');
              return scheduleViews(config, apiSchedules.list()).find((v) => v.id === id);
            },
            remove: async (id, by) => {
              if (!apiSchedules.get(id)) return false;
              await apiSchedules.replace(apiSchedules.list().filter((s) => s.id !== id));
              schedule();
              logger.info({ id, by }, 'schedule removed through the API');
              return true;
            },
          },
        },
        config.api,
        config.daemon.listen_host,
        config.daemon.listen_port,
      );
      server = app.server;
      closeServer = () => app.close();
    } else {
      const plain = await startHttpServer(legacy, config.daemon.listen_host, config.daemon.listen_port);
      server = plain;
      closeServer = async () => {
        await new Promise((r) => plain.close(r));
        plain.closeAllConnections();
      };
    }
  } catch (err) {
    logger.fatal({ error: messageOf(err) }, 'cannot start the HTTP listener');
    throw err;
  }
  const address = server.address();

  return new Promise<number>((resolve) => {
    let stopping = false;
    const shutdown = async (signal: NodeJS.Signals) => {
      if (stopping) {
        logger.warn({ signal }, 'second signal: cancelling running jobs now');
        runner.cancelAll(new Error(`cancelled by a second ${signal}`));
        return;
      }
      stopping = true;
      ready = false;
      logger.info({ signal, running: runner.runningCount, graceMs: config.daemon.shutdown_grace }, 'shutting down');
      scheduler.stop();
      verifyScheduler.stop();
      dailyPrune?.stop();
      // Captures archive what they have fetched, then stop; backups get the grace to finish.
      await Promise.all([binlog.stopAll(), runner.drain(config.daemon.shutdown_grace)]);
      await Promise.allSettled(pruning.values());
      await Promise.race([notifier.flush(), new Promise((r) => setTimeout(r, 10_000).unref())]);
      await closeServer();
      await context.close();
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      process.off('SIGHUP', onHangup);
      logger.info('daemon stopped');
      resolve(0);
    };
    const onSignal = (signal: NodeJS.Signals) => void shutdown(signal);
    const onHangup = () => {
      if (stopping) return;
      let next: AgentConfig;
      try {
        next = loadConfig(options.configPath, options.env);
      } catch (err) {
        logger.error({ error: messageOf(err) }, 'reload rejected: the new configuration is invalid; the old one keeps running');
        return;
      }
      if (next.daemon.listen_host !== config.daemon.listen_host || next.daemon.listen_port !== config.daemon.listen_port) {
        logger.warn('the HTTP listener address changed: it takes effect at the next restart');
      }
      const previous = context;
      config = next;
      context = new CommandContext(next, logger);
      context.packMode = 'refresh';
      logger.level = next.logLevel;
      notifier.detach();
      notifier = attachNotifier(bus, next.notifications, logger);
      schedule();
      applyBinlog(next);
      // Running jobs keep the drivers they hold; the old ones are closed once idle enough.
      void runner
        .idle()
        .then(() => previous.close())
        .catch((err: unknown) => {
          logger.error({ error: messageOf(err) }, 'cannot close the storage clients of the previous configuration');
          bus.emit('daemon:problem', { database: undefined, what: 'close previous storage clients', message: brief(messageOf(err)) });
        });
      logger.info({ databases: next.databases.map((d) => d.name) }, 'configuration reloaded');
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    process.on('SIGHUP', onHangup);

    // Only now that signals are handled: a SIGHUP or SIGTERM from here on (during the catch-up
    // too) is a reload or a graceful stop, never the default action that kills the process.
    logger.info(
      { version: AGENT_VERSION, pid: process.pid, listen: typeof address === 'object' && address ? `${address.address}:${address.port}` : address, databases: config.databases.map((d) => d.name) },
      'daemon started',
    );
    schedule();
    applyBinlog(config);
    const startJob = (database: string, type: BackupType, trigger: Trigger) => {
      if (!stopping) void backupJob(database, type, trigger);
    };
    catchUp(config, context, startJob, logger, bus, {
      backup: (manifest) => {
        board.seed(manifest);
        seedLastSuccess(metrics, manifest.database, manifest.type, new Date(manifest.completedAt), manifest.sizeBytes);
      },
      verified: (database, depth, passed) => {
        board.seedVerified(database, { ...passed, depth });
        seedLastVerified(metrics, database, depth, new Date(passed.at));
      },
    }).then(
      () => {
        if (!stopping) ready = true;
      },
      (err: unknown) => {
        logger.error({ error: messageOf(err) }, 'catch-up at start-up failed');
        bus.emit('daemon:problem', { database: undefined, what: 'catch up at start-up', message: brief(messageOf(err)) });
        if (!stopping) ready = true;
      },
    );
  });
}

/**
 * Seeds status from the catalog and, with `catch_up`, runs once at start-up every periodic job
 * whose last successful periodic backup is older than the run that was due last (the daemon was
 * down when it should have run).
 */
async function catchUp(
  config: AgentConfig,
  context: CommandContext,
  startJob: (database: string, type: BackupType, trigger: Trigger) => void,
  logger: Logger,
  bus: DaemonEventBus,
  seed: {
    backup: (newest: Manifest) => void;
    /** The newest passed verification record at `depth` (verify/record.ts). */
    verified: (database: string, depth: VerifyDepth, passed: { at: string; backupId: string }) => void;
  },
): Promise<void> {
  const now = new Date();
  for (const database of config.databases) {
    let listing;
    try {
      listing = await listBackups(await context.storage(database), database.name, await context.catalog(database));
    } catch (err) {
      logger.error({ database: database.name, error: messageOf(err) }, 'cannot read the catalog at start-up');
      bus.emit('daemon:problem', { database: database.name, what: 'read catalog at start-up', message: brief(messageOf(err)) });
      continue;
    }
    const { backups, unreadable } = listing;
    // Unreadable manifests are reported, never skipped in silence: the status, metrics and the
    // catch-up below only know the backups that could be read.
    for (const bad of unreadable) {
      logger.error({ database: database.name, key: bad.key, error: bad.error }, 'unreadable manifest in the catalog');
      bus.emit('daemon:problem', { database: database.name, what: 'read catalog at start-up', message: brief(describeUnreadable(bad)) });
    }
    // Verification records are in the backup folders the listing walked: the newest passed one per depth.
    for (const [depth, passed] of newestPassedByDepth(listing.objects.keys()).get(database.name) ?? []) seed.verified(database.name, depth, passed);
    for (const schedule of database.schedules) {
      const ofType = backups.filter((b) => b.type === schedule.type);
      const newest = ofType[0];
      if (newest) seed.backup(newest);
      const lastPeriodic = ofType.find((b) => b.trigger === 'periodic');
      if (config.daemon.catch_up && isOverdue(schedule, lastPeriodic ? new Date(lastPeriodic.startedAt) : undefined, now)) {
        logger.info({ database: database.name, type: schedule.type, lastPeriodic: lastPeriodic?.startedAt }, 'missed run: backing up now');
        startJob(database.name, schedule.type, 'periodic');
      }
    }
  }
}
