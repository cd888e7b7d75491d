/**
 * A schedule as data, and the announcement of its next run: config builds schedules, the
 * scheduler fires them, the daemon publishes their next runs. No clock and no croner here.
 */
import type { BackupType } from './backup.ts';
import type { VerifyDepth } from './verify.ts';

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

/** A `type: verify` schedule: `agent verify` at `depth` on the newest backup(s) or on every backup not verified yet. */
export interface VerifySchedule extends Omit<Schedule, 'type'> {
  type: 'verify';
  depth: VerifyDepth;
  backups: 'latest' | 'new';
  /** Depth restore: the archived binlog is replayed past the backup up to the last recoverable time. */
  replayBinlog: boolean;
}

/** A job's next run, as the scheduler announces it. */
export interface NextRun {
  database: string;
  type: BackupType;
  /** Undefined when the job has no further run (schedule removed). */
  at: Date | undefined;
}
