import type { Logger } from 'pino';
import { runBackup } from '../backup/run.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { ListOptions } from '../catalog/listing.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { brief } from './brief.ts';
import type { JobHandle } from './job-registry.ts';
import type { BackupType, DaemonEventBus, Trigger } from './events.ts';
import type { VerifyDepth, VerifyOutcome } from '../verify/types.ts';
import type { EntryVerifyInput } from '../verify/verify-entry.ts';

/** How the daemon verifies an entry's backups (src/verify/verify-entry.ts): the newest ones, or every one not verified yet at `depth`. */
export type VerifyRun = (input: EntryVerifyInput) => Promise<VerifyOutcome[]>;

export type VerifyRunOutcome = { status: 'succeeded' | 'failed'; outcomes: VerifyOutcome[]; error?: unknown } | { status: 'skipped'; reason: 'overlap' };

/** Pure: one line saying which backups failed verification and the first thing wrong with each. */
export function verifyFailureMessage(database: string, depth: VerifyDepth, outcomes: readonly VerifyOutcome[]): string {
  const failed = outcomes.filter((o) => !o.ok);
  const parts = failed.map((o) => {
    const first = o.problems[0];
    const what = first ? `${first.key === undefined ? '' : `${first.key}: `}${first.message}` : 'failed';
    return `backup ${o.backupId}: ${what}${o.problems.length > 1 ? ` (and ${o.problems.length - 1} more problem${o.problems.length > 2 ? 's' : ''})` : ''}`;
  });
  return `verification of ${database} at depth ${depth} failed for ${failed.length} of ${outcomes.length} backup${outcomes.length === 1 ? '' : 's'}: ${parts.join('; ')}`;
}

export interface JobRunnerDeps {
  bus: DaemonEventBus;
  logger: Logger;
  /** The current configuration (it changes on reload; running jobs keep the one they started with). */
  config: () => AgentConfig;
  storage: (database: DatabaseConfig) => Promise<StorageDriver>;
  /** How a job reads the catalog (the daemon's manifest cache). */
  catalog?: (database: DatabaseConfig) => Promise<ListOptions>;
  maxConcurrent: () => number;
  now?: () => Date;
  /** Runs verifications (type: verify schedules); without it, verify jobs fail saying so. */
  verify?: VerifyRun;
}

export type RunOutcome =
  | { status: 'succeeded'; manifest: Manifest }
  | { status: 'failed'; error: unknown }
  | { status: 'skipped'; reason: 'overlap' };

interface Running {
  controller: AbortController;
  /** Settles when the job has finished (a backup's RunOutcome or a verification's). */
  done: Promise<unknown>;
}

/**
 * Jobs that must not overlap share a key: a dump per database, and one physical backup per
 * database whatever its type (a full and an incremental of one server at once would compete for
 * the same redo log and the incremental's base).
 */
const jobKey = (database: string, type: BackupType | 'verify') => `${database}\u0000${type === 'dump' ? 'dump' : type === 'verify' ? 'verify' : 'physical'}`;

/**
 * Runs backup jobs: never the same database and type (physical types count as one) twice at once (a second request is skipped
 * with an event), at most `maxConcurrent` jobs over all databases (the rest wait their turn), each
 * cancellable. A failing job fails alone; the runner carries on.
 */
export class JobRunner {
  readonly #deps: JobRunnerDeps;
  readonly #running = new Map<string, Running>();
  #active = 0;
  readonly #waiting: (() => void)[] = [];

  constructor(deps: JobRunnerDeps) {
    this.#deps = deps;
  }

  get runningCount(): number {
    return this.#running.size;
  }

  isRunning(database: string, type: BackupType): boolean {
    return this.#running.has(jobKey(database, type));
  }

  /**
   * Starts a job unless the same one is running; resolves when it has finished. A `job` handle
   * (job-registry.ts) hears when it starts, counts its uploaded bytes and its end, and cancels it.
   */
  run(database: string, type: BackupType, trigger: Trigger, job?: JobHandle): Promise<RunOutcome> {
    const key = jobKey(database, type);
    if (this.#running.has(key)) {
      this.#deps.logger.warn({ database, type, trigger }, 'job skipped: the previous run is still going');
      this.#deps.bus.emit('job:skipped', { database, type, trigger, reason: 'overlap' });
      job?.failed(new Error(`skipped: a ${type === 'dump' ? 'dump' : 'physical backup'} of ${database} is still running`));
      return Promise.resolve({ status: 'skipped', reason: 'overlap' });
    }
    const controller = new AbortController();
    job?.signal.addEventListener('abort', () => controller.abort(job.signal.reason), { once: true });
    const done = this.#execute(database, type, trigger, controller.signal, job)
      .then((outcome) => {
        if (outcome.status === 'succeeded') job?.succeeded(`backup ${outcome.manifest.id} committed`, outcome.manifest.id);
        else if (outcome.status === 'failed') job?.failed(outcome.error);
        return outcome;
      })
      .finally(() => this.#running.delete(key));
    this.#running.set(key, { controller, done });
    return done;
  }

  async #slot(signal: AbortSignal): Promise<void> {
    while (this.#active >= this.#deps.maxConcurrent()) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
      if (signal.aborted) throw signal.reason;
    }
    this.#active++;
  }

  #release(): void {
    this.#active--;
    this.#waiting.shift()?.();
  }

  async #execute(name: string, type: BackupType, trigger: Trigger, signal: AbortSignal, job: JobHandle | undefined): Promise<RunOutcome> {
    const now = this.#deps.now ?? (() => new Date());
    const log = this.#deps.logger.child({ database: name, type, trigger });
    try {
      await this.#slot(signal);
    } catch (error) {
      // Cancelled while waiting for a slot (shutdown): the backup did not happen, and that is said, not only returned.
      const message = `backup of ${name} cancelled before it started: ${messageOf(error)}`;
      log.error({ error: message }, 'backup failed');
      const at = now();
      this.#deps.bus.emit('job:failure', { database: name, type, trigger, message: brief(message), hint: undefined, startedAt: at, durationMs: 0 });
      return { status: 'failed', error };
    }
    const startedAt = now();
    job?.started();
    try {
      this.#deps.bus.emit('job:start', { database: name, type, trigger, startedAt });
      const config = this.#deps.config();
      const database = config.databases.find((d) => d.name === name);
      if (!database) throw new AgentError('config', `database entry ${name} is no longer in the configuration`);
      const shared = await this.#deps.storage(database);
      const storage = job ? job.counting(shared) : shared;
      const catalog = await this.#deps.catalog?.(database);
      const manifest = await runBackup({ config, database, storage, trigger, logger: this.#deps.logger, signal, ...(catalog ? { catalog } : {}) }, type);
      this.#deps.bus.emit('job:success', { database: name, type, trigger, manifest, durationMs: now().getTime() - startedAt.getTime() });
      return { status: 'succeeded', manifest };
    } catch (error) {
      const message = messageOf(error);
      const hint = error instanceof AgentError ? error.hint : undefined;
      // The full text (a tool's stderr tail) goes to the log; events, /status and webhooks get one short line.
      log.error({ error: message, hint }, 'backup failed');
      this.#deps.bus.emit('job:failure', {
        database: name,
        type,
        trigger,
        message: brief(message),
        hint: hint === undefined ? undefined : brief(hint),
        startedAt,
        durationMs: now().getTime() - startedAt.getTime(),
      });
      return { status: 'failed', error };
    } finally {
      this.#release();
    }
  }

  /**
   * Starts a verification of `database` unless one is running (the same overlap rule as backups:
   * skipped with a log line), in one of the `maxConcurrent` slots backups use. Emits verify:start,
   * then verify:success, or verify:failure when a backup failed verification or the run itself
   * failed; resolves when it has finished.
   */
  runVerify(database: string, depth: VerifyDepth, backups: 'latest' | 'new', trigger: Trigger, job?: JobHandle, replayBinlog = false): Promise<VerifyRunOutcome> {
    const key = jobKey(database, 'verify');
    if (this.#running.has(key)) {
      this.#deps.logger.warn({ database, depth, trigger }, 'verification skipped: the previous one is still going');
      job?.failed(new Error(`skipped: a verification of ${database} is still running`));
      return Promise.resolve({ status: 'skipped', reason: 'overlap' });
    }
    const controller = new AbortController();
    job?.signal.addEventListener('abort', () => controller.abort(job.signal.reason), { once: true });
    const done = this.#verify(database, depth, backups, replayBinlog, trigger, controller.signal, job).finally(() => this.#running.delete(key));
    this.#running.set(key, { controller, done });
    return done;
  }

  async #verify(name: string, depth: VerifyDepth, backups: 'latest' | 'new', replayBinlog: boolean, trigger: Trigger, signal: AbortSignal, job: JobHandle | undefined): Promise<VerifyRunOutcome> {
    const now = this.#deps.now ?? (() => new Date());
    const log = this.#deps.logger.child({ database: name, verify: depth, trigger });
    const startedAt = now();
    const fail = (outcomes: VerifyOutcome[], message: string, hint: string | undefined, error: unknown): VerifyRunOutcome => {
      log.error({ error: message, hint }, 'verification failed');
      const at = now();
      this.#deps.bus.emit('verify:failure', { database: name, depth, trigger, outcomes, message: brief(message), hint: hint === undefined ? undefined : brief(hint), at, durationMs: at.getTime() - startedAt.getTime() });
      job?.failed(error);
      return { status: 'failed', outcomes, error };
    };
    try {
      await this.#slot(signal);
    } catch (error) {
      return fail([], `verification of ${name} cancelled before it started: ${messageOf(error)}`, undefined, error);
    }
    job?.started();
    try {
      this.#deps.bus.emit('verify:start', { database: name, depth, trigger });
      const config = this.#deps.config();
      const database = config.databases.find((d) => d.name === name);
      if (!database) throw new AgentError('config', `database entry ${name} is no longer in the configuration`);
      if (!this.#deps.verify) throw new AgentError('internal', 'this daemon cannot verify backups');
      const shared = await this.#deps.storage(database);
      const catalog = await this.#deps.catalog?.(database);
      const outcomes = await this.#deps.verify({ config, database, storage: shared, catalog, depth, backups, replayBinlog, signal, logger: this.#deps.logger });
      if (outcomes.some((o) => !o.ok)) {
        const message = verifyFailureMessage(name, depth, outcomes);
        return fail(outcomes, message, undefined, new AgentError('integrity', message));
      }
      const at = now();
      log.info({ verified: outcomes.map((o) => o.backupId) }, outcomes.length === 0 ? 'verification: nothing to verify' : 'verification passed');
      this.#deps.bus.emit('verify:success', { database: name, depth, trigger, outcomes, at, durationMs: at.getTime() - startedAt.getTime() });
      job?.succeeded(outcomes.length === 0 ? 'nothing to verify' : `verified ${outcomes.map((o) => o.backupId).join(', ')} at depth ${depth}`, outcomes[0]?.backupId);
      return { status: 'succeeded', outcomes };
    } catch (error) {
      return fail([], `verification of ${name} could not run: ${messageOf(error)}`, error instanceof AgentError ? error.hint : undefined, error);
    } finally {
      this.#release();
    }
  }

  /**
   * Lets running jobs finish for up to `graceMs`, then cancels the rest (their tools are killed,
   * partial uploads aborted, no manifest written) and waits for them to wind down.
   */
  async drain(graceMs: number): Promise<void> {
    const all = () => Promise.allSettled([...this.#running.values()].map((r) => r.done));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      all().then(() => false),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), graceMs);
      }),
    ]);
    clearTimeout(timer);
    if (timedOut) this.cancelAll(new AgentError('internal', `cancelled: the shutdown grace period (${graceMs} ms) ran out`));
    await all();
  }

  /** Resolves once no job is running. */
  async idle(): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running.values()].map((r) => r.done));
  }

  /** Cancels every running and waiting job at once. */
  cancelAll(reason: unknown): void {
    for (const running of this.#running.values()) running.controller.abort(reason);
    for (const wake of this.#waiting.splice(0)) wake();
  }
}
