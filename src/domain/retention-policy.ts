/**
 * A retention policy as data: what config produces and the pure retention function reads. The
 * rules themselves live in src/retention; this leaf only names their shape.
 */
import type { Family } from './backup.ts';

/** A calendar span (`6mo` is six calendar months, not 180 days), as retention windows are written. */
export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
  minutes: number;
}

/** restic's `forget` rules. A count of -1 keeps every period. Undefined or 0 disables the rule; so does a zero window. */
export interface PeriodicPolicy {
  last?: number | undefined;
  hourly?: number | undefined;
  daily?: number | undefined;
  weekly?: number | undefined;
  monthly?: number | undefined;
  yearly?: number | undefined;
  within?: CalendarDuration | undefined;
  withinHourly?: CalendarDuration | undefined;
  withinDaily?: CalendarDuration | undefined;
  withinWeekly?: CalendarDuration | undefined;
  withinMonthly?: CalendarDuration | undefined;
  withinYearly?: CalendarDuration | undefined;
}

/** The rules for one family: periodic (restic's) and manual backups. */
export interface FamilyPolicy {
  periodic: PeriodicPolicy;
  /** Undefined keeps every manual backup. */
  manual: { last?: number | undefined };
}

export interface RetentionPolicy extends FamilyPolicy {
  /** Keep the base for point-in-time restores back to now − pitrWindow (and, in prune, the binlog from it on). */
  pitrWindow?: CalendarDuration | undefined;
  /** A family's own rules, replacing `periodic` and `manual` for that family. */
  families?: Partial<Record<Family, FamilyPolicy>> | undefined;
}

/** The documented default when a database has no retention block. */
export const DEFAULT_POLICY: RetentionPolicy = { periodic: { daily: 7, weekly: 4 }, manual: { last: 10 } };
