import { formatCalendarDuration, isZeroDuration, type CalendarDuration } from '../config/duration.ts';
import type { PeriodicPolicy } from '../domain/retention-policy.ts';
import { isoWeek, localTime, subtractCalendar } from './calendar.ts';

export type { PeriodicPolicy } from '../domain/retention-policy.ts';

/**
 * restic's `forget` policy (ApplyPolicy, restic ≥ 0.16), as a pure function over one list of
 * backups, newest first. Each count rule keeps the newest backup of each of its last N periods that
 * have backups; a rule with counts left at the oldest backup keeps that one too ("oldest daily"),
 * for the longest history the policy allows; `within` windows are measured back from the newest
 * backup that is not in the future; rules are ORed; a policy with no rule keeps everything.
 * Periods are hours, days, ISO weeks, months and years in `timeZone`. Our reason words are
 * restic's without the word "snapshot" ("daily", "oldest daily", "daily within 7d").
 */

type Bucketer = (time: Date, index: number) => number;

function bucketers(timeZone: string) {
  const local = (t: Date) => localTime(t, timeZone);
  const always: Bucketer = (_t, index) => index;
  const hour: Bucketer = (t) => {
    const l = local(t);
    return l.year * 1_000_000 + l.month * 10_000 + l.day * 100 + l.hour;
  };
  const day: Bucketer = (t) => {
    const l = local(t);
    return l.year * 10_000 + l.month * 100 + l.day;
  };
  const week: Bucketer = (t) => {
    const l = local(t);
    const w = isoWeek(l.year, l.month, l.day);
    return w.year * 100 + w.week;
  };
  const month: Bucketer = (t) => {
    const l = local(t);
    return l.year * 100 + l.month;
  };
  const year: Bucketer = (t) => local(t).year;
  return { always, hour, day, week, month, year };
}

/** A window that is set and not zero: restic ignores `0d`, and so do we. */
const windowOf = (d: CalendarDuration | undefined): CalendarDuration | undefined => (d && !isZeroDuration(d) ? d : undefined);

export function isEmptyPolicy(p: PeriodicPolicy): boolean {
  const counts = [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly].every((c) => c === undefined || c === 0);
  const windows = [p.within, p.withinHourly, p.withinDaily, p.withinWeekly, p.withinMonthly, p.withinYearly].every((w) => windowOf(w) === undefined);
  return counts && windows;
}

/**
 * The moment `within` windows are measured from: the newest backup not in the future (restic's
 * findLatestTimestamp), so a backup dated ahead by a skewed clock cannot move the window. When
 * every backup is in the future, restic measures from the zero time: every backup is inside.
 */
export function windowReference(list: readonly { time: Date }[], now: Date): Date | undefined {
  let latest: Date | undefined;
  for (const { time } of list) if (time.getTime() < now.getTime() && (!latest || time.getTime() > latest.getTime())) latest = time;
  return latest;
}

/** restic's ApplyPolicy over one list sorted newest first; returns the reasons per index (none = remove). */
export function applyPeriodic(list: readonly { time: Date }[], policy: PeriodicPolicy, timeZone: string, now: Date): string[][] {
  if (list.length === 0) return [];
  if (isEmptyPolicy(policy)) return list.map(() => ['policy is empty']);
  const b = bucketers(timeZone);
  const counts = [
    { count: policy.last ?? 0, bucket: b.always, reason: 'last', last: undefined as number | undefined },
    { count: policy.hourly ?? 0, bucket: b.hour, reason: 'hourly', last: undefined as number | undefined },
    { count: policy.daily ?? 0, bucket: b.day, reason: 'daily', last: undefined as number | undefined },
    { count: policy.weekly ?? 0, bucket: b.week, reason: 'weekly', last: undefined as number | undefined },
    { count: policy.monthly ?? 0, bucket: b.month, reason: 'monthly', last: undefined as number | undefined },
    { count: policy.yearly ?? 0, bucket: b.year, reason: 'yearly', last: undefined as number | undefined },
  ];
  const reference = windowReference(list, now);
  // No backup before now: every backup is inside every window (restic's zero time).
  const startOf = (d: CalendarDuration | undefined) => (d === undefined ? undefined : reference ? subtractCalendar(reference, d, timeZone).getTime() : -Infinity);
  const within = windowOf(policy.within);
  const withinStart = startOf(within);
  const windows = [
    { within: windowOf(policy.withinHourly), bucket: b.hour, reason: 'hourly within', last: undefined as number | undefined },
    { within: windowOf(policy.withinDaily), bucket: b.day, reason: 'daily within', last: undefined as number | undefined },
    { within: windowOf(policy.withinWeekly), bucket: b.week, reason: 'weekly within', last: undefined as number | undefined },
    { within: windowOf(policy.withinMonthly), bucket: b.month, reason: 'monthly within', last: undefined as number | undefined },
    { within: windowOf(policy.withinYearly), bucket: b.year, reason: 'yearly within', last: undefined as number | undefined },
  ].map((w) => ({ ...w, start: startOf(w.within) }));

  return list.map((item, index) => {
    const reasons: string[] = [];
    const oldest = index === list.length - 1;
    const t = item.time.getTime();
    if (within && withinStart !== undefined && t > withinStart) reasons.push(`within ${formatCalendarDuration(within)}`);
    for (const rule of counts) {
      if (rule.count <= 0 && rule.count !== -1) continue;
      const value = rule.bucket(item.time, index);
      // The oldest backup is kept while the rule has counts left; restic names it "oldest …" when
      // its period already has a kept backup.
      if (value !== rule.last || oldest) {
        reasons.push(oldest && value === rule.last ? `oldest ${rule.reason}` : rule.reason);
        rule.last = value;
        if (rule.count > 0) rule.count--;
      }
    }
    for (const rule of windows) {
      if (!rule.within || rule.start === undefined || t <= rule.start) continue;
      const value = rule.bucket(item.time, index);
      if (value !== rule.last || oldest) {
        const reason = oldest && value === rule.last ? `oldest ${rule.reason}` : rule.reason;
        reasons.push(`${reason} ${formatCalendarDuration(rule.within)}`);
        rule.last = value;
      }
    }
    return reasons;
  });
}
