/**
 * The one duration syntax of the configuration, for both kinds of duration. Pure; imports only
 * the leaf types.
 *
 * A duration is one or more `<integer><unit>` parts, each unit at most once, in any order
 * (`1h30min`, `1y6mo`). Units: `ms`, `s`, `min` or `m` (minutes), `h`, `d`, `w` (7 days),
 * `mo` (calendar months), `y` (calendar years).
 *
 * - Fixed durations (timeouts, grace periods, jitter) are milliseconds: `mo` and `y` have no fixed
 *   length and are refused there.
 * - Retention windows (`keep_within*`, `pitr_window`) are calendar durations, subtracted as restic
 *   (Go's AddDate) does: years, months and days on the wall clock, then hours and minutes. `s` and
 *   `ms` are refused there, and so is a bare `m`: restic reads it as months, a timeout as minutes,
 *   so the window must say `mo` or `min`.
 */

import type { CalendarDuration } from '../domain/retention-policy.ts';

export type { CalendarDuration } from '../domain/retention-policy.ts';

export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const UNITS = ['ms', 's', 'min', 'm', 'h', 'd', 'w', 'mo', 'y'] as const;
type Unit = (typeof UNITS)[number];
// Longest units first, so `min` and `mo` are not read as `m` followed by junk.
const PART = /(\d+)(ms|min|mo|s|m|h|d|w|y)/y;

/** Splits a duration into its parts, or says what is wrong with it. */
function tokens(text: string): Parsed<{ amount: number; unit: Unit }[]> {
  const compact = text.replace(/\s+/g, '');
  if (compact === '') return { ok: false, problem: `"${text}" is empty` };
  const parts: { amount: number; unit: Unit }[] = [];
  PART.lastIndex = 0;
  while (PART.lastIndex < compact.length) {
    const at = PART.lastIndex;
    const m = PART.exec(compact);
    if (!m) return { ok: false, problem: `"${text}" is not a duration: cannot read "${compact.slice(at)}"` };
    const unit = m[2] as Unit;
    if (parts.some((p) => p.unit === unit)) return { ok: false, problem: `"${text}" gives the unit ${unit} twice` };
    parts.push({ amount: Number(m[1]), unit });
  }
  return { ok: true, value: parts };
}

const FIXED_MS: Record<Exclude<Unit, 'mo' | 'y'>, number> = {
  ms: 1,
  s: 1000,
  min: 60_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
};

/** A fixed duration in milliseconds, e.g. `30s`, `5m`, `1h30min`, `7d`. */
export function readDuration(text: string): Parsed<number> {
  const parsed = tokens(text);
  if (!parsed.ok) return { ok: false, problem: `${parsed.problem} (expected e.g. 30s, 5min, 1h, 7d)` };
  let total = 0;
  for (const { amount, unit } of parsed.value) {
    if (unit === 'mo' || unit === 'y') {
      return { ok: false, problem: `"${text}": ${unit === 'mo' ? 'months' : 'years'} have no fixed length here; give days (e.g. 30d)` };
    }
    total += amount * FIXED_MS[unit];
  }
  return { ok: true, value: total };
}

/** A retention window, e.g. `36h`, `7d`, `2w`, `6mo`, `1y6mo`. */
export function readCalendarDuration(text: string): Parsed<CalendarDuration> {
  const parsed = tokens(text);
  if (!parsed.ok) return { ok: false, problem: `${parsed.problem} (expected e.g. 36h, 7d, 2w, 6mo, 1y)` };
  const d: CalendarDuration = { years: 0, months: 0, days: 0, hours: 0, minutes: 0 };
  for (const { amount, unit } of parsed.value) {
    if (unit === 'm') {
      return { ok: false, problem: `"${text}" is ambiguous: "m" is months in restic but minutes elsewhere; write ${amount}mo for months or ${amount}min for minutes` };
    }
    if (unit === 's' || unit === 'ms') return { ok: false, problem: `"${text}": a retention window counts minutes at the finest (min, h, d, w, mo, y)` };
    if (unit === 'y') d.years = amount;
    else if (unit === 'mo') d.months = amount;
    // w and d are both days: `1w2d` is 9 days.
    else if (unit === 'w') d.days += 7 * amount;
    else if (unit === 'd') d.days += amount;
    else if (unit === 'h') d.hours = amount;
    else d.minutes = amount;
  }
  return { ok: true, value: d };
}

/** Milliseconds of a fixed duration, or undefined when the text is not one. */
export function parseDuration(text: string): number | undefined {
  const r = readDuration(text);
  return r.ok ? r.value : undefined;
}

/** A retention window, or undefined when the text is not one. */
export function parseCalendarDuration(text: string): CalendarDuration | undefined {
  const r = readCalendarDuration(text);
  return r.ok ? r.value : undefined;
}

/** True for a window of no length: restic's `Zero()`, which makes the rule no rule at all. */
export function isZeroDuration(d: CalendarDuration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0 && d.minutes === 0;
}

/** The canonical text of a window, in the syntax the configuration takes (`1y6mo`, `36h`). */
export function formatCalendarDuration(d: CalendarDuration): string {
  const parts = [
    d.years ? `${d.years}y` : '',
    d.months ? `${d.months}mo` : '',
    d.days ? `${d.days}d` : '',
    d.hours ? `${d.hours}h` : '',
    d.minutes ? `${d.minutes}min` : '',
  ];
  return parts.join('') || '0h';
}
