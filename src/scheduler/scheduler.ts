import { Cron } from 'croner';
import type { Logger } from 'pino';
import type { NextRun, Schedule } from '../domain/schedule.ts';

export interface ScheduledJob {
  database: string;
  schedule: Schedule;
}

export interface SchedulerDeps {
  /** Told each job's next run when it is scheduled, after it fires, and (as undefined) when it stops. Must not throw. */
  announce: (next: NextRun) => void;
  logger: Logger;
  /** Called when a job is due (after its jitter). Must not throw. */
  onDue: (job: ScheduledJob) => void;
  random?: () => number;
}

/**
 * Fires jobs on their schedules with croner (time zones and DST are croner's), adds jitter, and
 * announces each job's next run. It only decides *when*; the job runner decides whether a job may
 * run (overlap, concurrency).
 */
export class Scheduler {
  readonly #deps: SchedulerDeps;
  #crons: { job: ScheduledJob; cron: Cron }[] = [];
  readonly #jitterTimers = new Set<NodeJS.Timeout>();

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
  }

  start(jobs: readonly ScheduledJob[]): void {
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

  #fire(job: ScheduledJob): void {
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

  #announce(job: ScheduledJob, cron: Cron): void {
    this.#deps.announce({ database: job.database, type: job.schedule.type, at: cron.nextRun() ?? undefined });
  }

  /** Next run per scheduled job. */
  nextRuns(): { database: string; schedule: Schedule; at: Date | undefined }[] {
    return this.#crons.map(({ job, cron }) => ({ database: job.database, schedule: job.schedule, at: cron.nextRun() ?? undefined }));
  }

  /** Stops every schedule (running jobs are not touched). */
  stop(): void {
    for (const { job, cron } of this.#crons) {
      cron.stop();
      this.#deps.announce({ database: job.database, type: job.schedule.type, at: undefined });
    }
    this.#crons = [];
    for (const timer of this.#jitterTimers) clearTimeout(timer);
    this.#jitterTimers.clear();
  }
}
