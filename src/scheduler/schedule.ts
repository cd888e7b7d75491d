import { Cron } from 'croner';
import type { Schedule } from '../domain/schedule.ts';

/**
 * The pure questions asked of a schedule: when are the next runs, which run was due last, is a
 * job overdue. Time-zone and DST handling is croner's; nothing here reads the clock. Building a
 * schedule from the file is config's (config/schedule.ts).
 */

export type { Schedule } from '../domain/schedule.ts';

function cronOf(schedule: Schedule): Cron {
  return new Cron(schedule.cron, { timezone: schedule.timezone, paused: true });
}

/** The next `count` run times strictly after `from`. */
export function nextRuns(schedule: Schedule, from: Date, count: number): Date[] {
  return cronOf(schedule).nextRuns(count, from);
}

export function nextRun(schedule: Schedule, from: Date): Date | undefined {
  return cronOf(schedule).nextRun(from) ?? undefined;
}

/** The run time at or before `at` (the latest run that was due), found by walking back. */
export function previousRun(schedule: Schedule, at: Date): Date | undefined {
  const job = cronOf(schedule);
  // Look in growing windows before `at`; within one, step forward run by run.
  for (let window = 3_600_000; window <= 1600 * 86_400_000; window *= 4) {
    let last: Date | undefined;
    let cursor = new Date(at.getTime() - window);
    for (let step = 0; step < 100_000; step++) {
      const next = job.nextRun(cursor);
      if (!next || next.getTime() > at.getTime()) break;
      last = next;
      cursor = next;
    }
    if (last) return last;
  }
  return undefined;
}

/**
 * Pure: whether a periodic job missed its last run while the daemon was down, i.e. its last
 * successful backup is older than the run that was due most recently.
 */
export function isOverdue(schedule: Schedule, lastSuccess: Date | undefined, now: Date): boolean {
  const due = previousRun(schedule, now);
  if (!due) return false;
  return lastSuccess === undefined || lastSuccess.getTime() < due.getTime();
}
