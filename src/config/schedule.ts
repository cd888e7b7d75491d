import { Cron } from 'croner';
import type { BackupType } from '../domain/backup.ts';
import type { Schedule, VerifySchedule } from '../domain/schedule.ts';

/**
 * A schedule entry of the file (`at: "03:00"` or `cron: "…"`) turned into the Schedule the
 * scheduler runs, and the check that a cron pattern is usable. Pure; croner parses the pattern.
 */

export interface RawScheduleInput {
  type: BackupType;
  at?: string | undefined;
  cron?: string | undefined;
  timezone?: string | undefined;
  jitter?: number | undefined;
  /** Only on a `type: verify` entry (config refuses them elsewhere). */
  depth?: string | undefined;
  backups?: 'latest' | 'new' | undefined;
  replay_binlog?: boolean | undefined;
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

/** A `type: verify` entry of the file as the daemon runs it (depth archive and the newest backups unless told). */
export function toVerifySchedule(raw: Omit<RawScheduleInput, 'type'>, defaultTimezone: string): VerifySchedule {
  const timing = toSchedule({ ...raw, type: 'dump' }, defaultTimezone);
  const depth = (raw.depth ?? 'archive') as VerifySchedule['depth'];
  const backups = raw.backups ?? 'latest';
  const replayBinlog = raw.replay_binlog === true;
  const what = `verify ${backups === 'latest' ? 'the newest backups' : 'new backups'} at depth ${depth}${replayBinlog ? ' with the binlog replayed' : ''}`;
  return { ...timing, type: 'verify', depth, backups, replayBinlog, description: `${what}, ${timing.description}` };
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
