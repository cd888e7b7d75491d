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
}

export type RunOutcome =
  | { status: 'succeeded'; manifest: Manifest }
  | { status: 'failed'; error: unknown }
  | { status: 'skipped'; reason: 'overlap' };

interface Running {
  controller: AbortController;
  done: Promise<RunOutcome>;
}

/**
 * Jobs that must not overlap share a key: a dump per database, and one physical backup per
 * database whatever its type (a full and an incremental of one server at once would compete for
 * the same redo log and the incremental's base).
 */
const jobKey = (database: string, type: BackupType) => `${database}\u0000${type === 'dump' ? 'dump' : 'physical'}`;

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
