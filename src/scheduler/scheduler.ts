import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { Schedule } from '../domain/schedule.ts';

/** What the scheduler needs of a schedule: backup schedules and verify schedules alike. */
export type Timed = Pick<Schedule, 'cron' | 'timezone' | 'jitterMs' | 'description'> & { type: string };

export interface ScheduledJob<S extends Timed = Schedule> {
  database: string;
  schedule: S;
}

export interface SchedulerDeps<S extends Timed = Schedule> {
  /** Told each job's next run when it is scheduled, after it fires, and (as undefined) when it stops. Must not throw. */
  announce: (next: { database: string; type: S['type']; at: Date | undefined; schedule: S }) => void;
  logger: Logger;
  /** Called when a job is due (after its jitter). Must not throw. */
  onDue: (job: ScheduledJob<S>) => void;
  random?: () => number;
}

/**
 * Fires jobs on their schedules with croner (time zones and DST are croner's), adds jitter, and
 * announces each job's next run. It only decides *when*; the job runner decides whether a job may
 * run (overlap, concurrency).
 */
export class Scheduler<S extends Timed = Schedule> {
  readonly #deps: SchedulerDeps<S>;
  #crons: { job: ScheduledJob<S>; cron: Cron }[] = [];
  readonly #jitterTimers = new Set<NodeJS.Timeout>();

  constructor(deps: SchedulerDeps<S>) {
    this.#deps = deps;
  }

  start(jobs: readonly ScheduledJob<S>[]): void {
    this.stop();
    for (const job of jobs) {
      const cron = new Cron(job.schedule.cron, { timezone: job.schedule.timezone, protect: false, catch: true }, () => {
        this.#fire(job);
        this.#announce(job, cron);
      });
      this.#crons.push({ job, cron });
      this.#announce(job, cron);
      this.#deps.logger.info(
        { database: job.database, type: job.schedule.type, schedule: job.schedule.description, nextRun: cron.nextRun()?.toISOString() },
        'job scheduled',
      );
    }
  }

  #fire(job: ScheduledJob<S>): void {
    const delay = Math.floor((this.#deps.random ?? Math.random)() * job.schedule.jitterMs);
    if (delay <= 0) {
      this.#deps.onDue(job);
      return;
    }
    const timer = setTimeout(() => {
      this.#jitterTimers.delete(timer);
      this.#deps.onDue(job);
    }, delay);
    this.#jitterTimers.add(timer);
  }

  #announce(job: ScheduledJob<S>, cron: Cron): void {
    this.#deps.announce({ database: job.database, type: job.schedule.type, at: cron.nextRun() ?? undefined, schedule: job.schedule });
  }

  /** Next run per scheduled job. */
  nextRuns(): { database: string; schedule: S; at: Date | undefined }[] {
    return this.#crons.map(({ job, cron }) => ({ database: job.database, schedule: job.schedule, at: cron.nextRun() ?? undefined }));
  }

  /** Stops every schedule (running jobs are not touched). */
  stop(): void {
    for (const { job, cron } of this.#crons) {
      cron.stop();
      this.#deps.announce({ database: job.database, type: job.schedule.type, at: undefined, schedule: job.schedule });
    }
    this.#crons = [];
    for (const timer of this.#jitterTimers) clearTimeout(timer);
    this.#jitterTimers.clear();
  }
}
