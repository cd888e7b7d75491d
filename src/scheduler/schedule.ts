import { Cron } from 'croner';
import type { BackupType } from '../daemon/events.ts';

/**
 * Schedules as data, and the pure questions asked of them: when are the next runs, how long is a
 * period. Time-zone and DST handling is croner's; nothing here reads the clock.
 */

export interface Schedule {
  type: BackupType;
  /** A croner pattern: 5 fields, or 6 with seconds first. */
  cron: string;
  /** IANA time zone the pattern is read in. */
  timezone: string;
  /** Up to this many ms of random delay before each run. */
  jitterMs: number;
  /** How the user wrote it, for status output: `daily at 03:00 (Europe/Paris)` or `cron "0 3 * * *" (UTC)`. */
  description: string;
}

export interface RawScheduleInput {
  type: BackupType;
  at?: string | undefined;
  cron?: string | undefined;
  timezone?: string | undefined;
  jitter?: number | undefined;
}

/** The default when a database names no schedule: one logical backup a day at 01:00. */
export const DEFAULT_SCHEDULE: RawScheduleInput = { type: 'dump', at: '01:00' };

/** A message saying why `pattern` is not a usable cron expression, or undefined when it is. */
export function cronProblem(pattern: string, timezone = 'UTC'): string | undefined {
  try {
    const job = new Cron(pattern, { timezone, paused: true });
    if (!job.nextRun(new Date(0))) return `cron "${pattern}" never runs`;
    return undefined;
  } catch (err) {
    return `invalid cron "${pattern}": ${(err as Error).message}`;
  }
}

export function toSchedule(raw: RawScheduleInput, defaultTimezone: string): Schedule {
  const timezone = raw.timezone ?? defaultTimezone;
  if (raw.at !== undefined) {
    const [hour, minute] = raw.at.split(':').map(Number);
    return {
      type: raw.type,
      cron: `${minute ?? 0} ${hour ?? 0} * * *`,
      timezone,
      jitterMs: raw.jitter ?? 0,
      description: `daily at ${raw.at} (${timezone})`,
    };
  }
  const cron = raw.cron ?? '';
  return { type: raw.type, cron, timezone, jitterMs: raw.jitter ?? 0, description: `cron "${cron}" (${timezone})` };
}

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
