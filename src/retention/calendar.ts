import type { CalendarDuration } from '../config/duration.ts';

/**
 * Calendar arithmetic in an IANA time zone, for retention periods: which hour, day, ISO week,
 * month and year a moment falls in *there*, and "N years/months/days/hours before" a moment. Pure.
 */

export interface LocalTime {
  year: number;
  month: number; // 1–12
  day: number;
  hour: number;
  minute: number;
  second: number;
  millisecond: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

export function localTime(date: Date, timeZone: string): LocalTime {
  const parts = formatter(timeZone).formatToParts(date);
  const get = (type: Intl.DateTimeFormatPartTypes) => Number(parts.find((p) => p.type === type)?.value ?? 0);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour') % 24,
    minute: get('minute'),
    second: get('second'),
    millisecond: date.getUTCMilliseconds(),
  };
}

/** ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday. */
export function isoWeek(year: number, month: number, day: number): { year: number; week: number } {
  const date = Date.UTC(year, month - 1, day);
  const weekday = (new Date(date).getUTCDay() + 6) % 7; // Monday = 0
  const thursday = new Date(date + (3 - weekday) * 86_400_000);
  const isoYear = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * 86_400_000));
  return { year: isoYear, week };
}

/** Offset of the zone from UTC at `utcMs`, in ms (east positive). */
function offsetAt(utcMs: number, timeZone: string): number {
  const t = localTime(new Date(utcMs), timeZone);
  return Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second, t.millisecond) - utcMs;
}

/**
 * The instant of a wall-clock time in the zone, exactly as Go's time.Date picks it (restic's
 * `within` windows go through it). Month and day may overflow (Feb 31 → Mar 3). Go reads the
 * wall time as if it were UTC, takes the zone's offset at that instant and, when the result falls
 * in another offset period, the offset at the result instead. So a wall time that does not exist
 * (a spring-forward gap) moves forward by the gap east of UTC and backward west of it, and one that
 * exists twice (fall back) maps to the later instant east of UTC and to the earlier one west of it.
 */
export function zonedInstant(t: LocalTime, timeZone: string): Date {
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second, t.millisecond);
  const offset = offsetAt(asUtc, timeZone);
  const utc = asUtc - offset;
  // Offsets change months apart, never twice within a day: the same offset at `utc` means no
  // transition lies between, i.e. `utc` is in the period Go looked up.
  const there = offsetAt(utc, timeZone);
  return new Date(there === offset ? utc : asUtc - there);
}

/** `moment` minus a calendar duration, as Go's AddDate(-y, -m, -d).Add(-h) in the zone (restic's `within`). */
export function subtractCalendar(moment: Date, duration: CalendarDuration, timeZone: string): Date {
  const t = localTime(moment, timeZone);
  const shifted = zonedInstant(
    { ...t, year: t.year - duration.years, month: t.month - duration.months, day: t.day - duration.days },
    timeZone,
  );
  return new Date(shifted.getTime() - duration.hours * 3_600_000 - duration.minutes * 60_000);
}
