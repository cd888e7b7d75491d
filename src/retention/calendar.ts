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
 * The instant of a wall-clock time in the zone. Month and day may overflow (Feb 31 → Mar 3), as
 * Go's time.Date normalises. A time in a DST gap maps to the instant using the offset before it.
 */
export function zonedInstant(t: LocalTime, timeZone: string): Date {
  const asUtc = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute, t.second, t.millisecond);
  let guess = asUtc - offsetAt(asUtc, timeZone);
  const second = asUtc - offsetAt(guess, timeZone);
  if (second !== guess) guess = Math.max(guess, second);
  return new Date(guess);
}

export interface CalendarDuration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** `moment` minus a calendar duration, as Go's AddDate(-y, -m, -d).Add(-h) in the zone (restic's `within`). */
export function subtractCalendar(moment: Date, duration: CalendarDuration, timeZone: string): Date {
  const t = localTime(moment, timeZone);
  const shifted = zonedInstant(
    { ...t, year: t.year - duration.years, month: t.month - duration.months, day: t.day - duration.days },
    timeZone,
  );
  return new Date(shifted.getTime() - duration.hours * 3_600_000);
}

const CALENDAR_PART = /(\d+)(y|m|w|d|h)/g;
const CALENDAR_WHOLE = /^(?:\d+(?:y|m|w|d|h))+$/;

/**
 * A retention duration, as restic writes them: `y` years, `m` months, `w` weeks (7 days), `d` days,
 * `h` hours, combinable (`1y6m`). Undefined when the text is not one.
 */
export function parseCalendarDuration(text: string): CalendarDuration | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!CALENDAR_WHOLE.test(compact)) return undefined;
  const d: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0 };
  for (const [, amount, unit] of compact.matchAll(CALENDAR_PART)) {
    const n = Number(amount);
    if (unit === 'y') d.years += n;
    else if (unit === 'm') d.months += n;
    else if (unit === 'w') d.days += 7 * n;
    else if (unit === 'd') d.days += n;
    else d.hours += n;
  }
  return d;
}

export function formatCalendarDuration(d: CalendarDuration): string {
  const parts = [d.years ? `${d.years}y` : '', d.months ? `${d.months}m` : '', d.days ? `${d.days}d` : '', d.hours ? `${d.hours}h` : ''];
  return parts.join('') || '0h';
}
