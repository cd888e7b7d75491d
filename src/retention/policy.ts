import { formatCalendarDuration, isoWeek, localTime, subtractCalendar, type CalendarDuration } from './calendar.ts';

/**
 * Retention as a pure function: backups + policy + time zone → keep (with the reasons of each) and
 * remove. The periodic rules are restic's `forget` policy, exactly: backups newest first; each
 * count rule keeps the newest backup of each of its last N periods that have backups; the oldest
 * backup is kept for a rule whose count is not used up; `within` windows are measured back from
 * the newest backup; rules are ORed. Periods are hours, days, ISO weeks, months and years in
 * `timeZone`. Manual backups have their own count. Then two safety rules: the newest backup is
 * always kept, and every base a kept backup depends on is kept.
 */

export interface RetentionItem {
  id: string;
  time: Date;
  trigger: 'periodic' | 'manual';
  /** e.g. "dump", "full", "incremental": used in "needed by incremental X". */
  kind: string;
  /** IDs of the backups this one needs to be restorable (incremental parents, base of binlogs). */
  dependsOn: readonly string[];
  /** When a point-in-time restore can start from this backup (it has binlog coordinates); else undefined. */
  pitrBaseAt?: Date | undefined;
}

/** A count of -1 keeps every period. Undefined or 0 disables the rule. */
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

export interface RetentionPolicy {
  periodic: PeriodicPolicy;
  /** Undefined keeps every manual backup. */
  manual: { last?: number | undefined };
  /** Keep the base for point-in-time restores back to now − pitrWindow (and, in prune, the binlog from it on). */
  pitrWindow?: CalendarDuration | undefined;
}

export const DEFAULT_POLICY: RetentionPolicy = { periodic: { daily: 7, weekly: 4 }, manual: { last: 10 } };

export interface Kept<T extends RetentionItem> {
  item: T;
  reasons: string[];
}

export interface RetentionResult<T extends RetentionItem> {
  keep: Kept<T>[];
  remove: T[];
}

/** Newest first: by time, then by ID (the larger ID counts as newer). The documented tie-break. */
export function newestFirst(a: RetentionItem, b: RetentionItem): number {
  const dt = b.time.getTime() - a.time.getTime();
  if (dt !== 0) return dt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

type Bucketer = (time: Date, index: number) => number | string;

function bucketers(timeZone: string) {
  const local = (t: Date) => localTime(t, timeZone);
  return {
    always: ((_t: Date, index: number) => index) as Bucketer,
    hour: ((t: Date) => {
      const l = local(t);
      return l.year * 1_000_000 + l.month * 10_000 + l.day * 100 + l.hour;
    }) as Bucketer,
    day: ((t: Date) => {
      const l = local(t);
      return l.year * 10_000 + l.month * 100 + l.day;
    }) as Bucketer,
    week: ((t: Date) => {
      const l = local(t);
      const w = isoWeek(l.year, l.month, l.day);
      return w.year * 100 + w.week;
    }) as Bucketer,
    month: ((t: Date) => {
      const l = local(t);
      return l.year * 100 + l.month;
    }) as Bucketer,
    year: ((t: Date) => local(t).year) as Bucketer,
  };
}

function isEmptyPolicy(p: PeriodicPolicy): boolean {
  const counts = [p.last, p.hourly, p.daily, p.weekly, p.monthly, p.yearly].every((c) => c === undefined || c === 0);
  const windows = [p.within, p.withinHourly, p.withinDaily, p.withinWeekly, p.withinMonthly, p.withinYearly].every((w) => w === undefined);
  return counts && windows;
}

/** restic's ApplyPolicy over one list (newest first); returns reasons per index (empty = remove). */
function applyPeriodic(list: readonly RetentionItem[], policy: PeriodicPolicy, timeZone: string): string[][] {
  if (isEmptyPolicy(policy)) return list.map(() => ['policy is empty']);
  const b = bucketers(timeZone);
  const counts = [
    { count: policy.last ?? 0, bucket: b.always, reason: 'last', last: undefined as number | string | undefined },
    { count: policy.hourly ?? 0, bucket: b.hour, reason: 'hourly', last: undefined as number | string | undefined },
    { count: policy.daily ?? 0, bucket: b.day, reason: 'daily', last: undefined as number | string | undefined },
    { count: policy.weekly ?? 0, bucket: b.week, reason: 'weekly', last: undefined as number | string | undefined },
    { count: policy.monthly ?? 0, bucket: b.month, reason: 'monthly', last: undefined as number | string | undefined },
    { count: policy.yearly ?? 0, bucket: b.year, reason: 'yearly', last: undefined as number | string | undefined },
  ];
  const windows = [
    { within: policy.withinHourly, bucket: b.hour, reason: 'hourly within', last: undefined as number | string | undefined },
    { within: policy.withinDaily, bucket: b.day, reason: 'daily within', last: undefined as number | string | undefined },
    { within: policy.withinWeekly, bucket: b.week, reason: 'weekly within', last: undefined as number | string | undefined },
    { within: policy.withinMonthly, bucket: b.month, reason: 'monthly within', last: undefined as number | string | undefined },
    { within: policy.withinYearly, bucket: b.year, reason: 'yearly within', last: undefined as number | string | undefined },
  ];
  const newest = list[0]?.time;
  if (!newest) return [];
  const within = policy.within && subtractCalendar(newest, policy.within, timeZone);
  const windowStarts = windows.map((w) => w.within && subtractCalendar(newest, w.within, timeZone));

  return list.map((item, index) => {
    const reasons: string[] = [];
    const oldest = index === list.length - 1;
    if (within && policy.within && item.time.getTime() > within.getTime()) reasons.push(`within ${formatCalendarDuration(policy.within)}`);
    for (const rule of counts) {
      if (rule.count > 0 || rule.count === -1) {
        const value = rule.bucket(item.time, index);
        // The oldest backup is kept while the rule has counts left: the longest history possible.
        if (value !== rule.last || oldest) {
          rule.last = value;
          if (rule.count > 0) rule.count--;
          reasons.push(rule.reason);
        }
      }
    }
    windows.forEach((rule, i) => {
      const start = windowStarts[i];
      if (!rule.within || !start || item.time.getTime() <= start.getTime()) return;
      const value = rule.bucket(item.time, index);
      if (value !== rule.last || oldest) {
        rule.last = value;
        reasons.push(`${rule.reason} ${formatCalendarDuration(rule.within)}`);
      }
    });
    return reasons;
  });
}

/**
 * Pure: the base a point-in-time restore to `windowStart` starts from — the newest backup that can
 * serve as a base at or before it; when every base is newer, the oldest base (the window then
 * reaches back further than any base can).
 */
export function pitrBase<T extends RetentionItem>(items: readonly T[], windowStart: Date): { item: T; covers: boolean } | undefined {
  const bases = items.filter((i) => i.pitrBaseAt !== undefined).sort((a, b) => (b.pitrBaseAt?.getTime() ?? 0) - (a.pitrBaseAt?.getTime() ?? 0));
  const covering = bases.find((i) => (i.pitrBaseAt?.getTime() ?? Infinity) <= windowStart.getTime());
  if (covering) return { item: covering, covers: true };
  const oldest = bases.at(-1);
  return oldest ? { item: oldest, covers: false } : undefined;
}

export function applyRetention<T extends RetentionItem>(items: readonly T[], policy: RetentionPolicy, timeZone: string, now?: Date): RetentionResult<T> {
  const sorted = [...items].sort(newestFirst);
  const reasons = new Map<string, string[]>(sorted.map((item) => [item.id, []]));
  const add = (id: string, reason: string) => reasons.get(id)?.push(reason);

  const periodic = sorted.filter((i) => i.trigger === 'periodic');
  applyPeriodic(periodic, policy.periodic, timeZone).forEach((r, index) => {
    const item = periodic[index];
    if (item) for (const reason of r) add(item.id, reason);
  });

  const manual = sorted.filter((i) => i.trigger === 'manual');
  manual.forEach((item, index) => {
    if (policy.manual.last === undefined) add(item.id, 'manual policy is empty');
    else if (policy.manual.last === -1 || index < policy.manual.last) add(item.id, 'manual keep_last');
  });

  const newest = sorted[0];
  if (newest) add(newest.id, 'newest successful');

  if (policy.pitrWindow && now) {
    const windowStart = subtractCalendar(now, policy.pitrWindow, timeZone);
    const base = pitrBase(sorted, windowStart);
    const window = `pitr_window ${formatCalendarDuration(policy.pitrWindow)}`;
    if (base) add(base.item.id, base.covers ? `${window} base` : `${window} base (oldest; the window reaches further back)`);
  }

  // Dependency closure: a kept backup keeps every base it needs, transitively.
  const byId = new Map(sorted.map((i) => [i.id, i]));
  const queue = sorted.filter((i) => (reasons.get(i.id)?.length ?? 0) > 0);
  while (queue.length > 0) {
    const item = queue.shift() as T;
    for (const dep of item.dependsOn) {
      const base = byId.get(dep);
      if (!base) continue; // a missing base is the catalog's problem (shown by list), not retention's
      const baseReasons = reasons.get(base.id) ?? [];
      const reason = `needed by ${item.kind} ${item.id}`;
      const wasRemoved = baseReasons.length === 0;
      if (!baseReasons.includes(reason)) baseReasons.push(reason);
      if (wasRemoved) queue.push(base);
    }
  }

  const keep: Kept<T>[] = [];
  const remove: T[] = [];
  for (const item of sorted) {
    const r = reasons.get(item.id) ?? [];
    if (r.length > 0) keep.push({ item, reasons: r });
    else remove.push(item);
  }
  return { keep, remove };
}
