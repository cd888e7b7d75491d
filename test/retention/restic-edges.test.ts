// Where the agent differed from restic ≥ 0.16 (checked against its ApplyPolicy, Duration and Go's
// time.Date): the window start near a DST change, zero windows, and a future-dated backup. The
// expected instants below are what Go's AddDate gives for the same zone and wall time.
import { describe, expect, it } from 'vitest';
import { parseCalendarDuration } from '../../src/config/duration.ts';
import { subtractCalendar, zonedInstant } from '../../src/retention/calendar.ts';
import { applyRetention, type RetentionItem, type RetentionPolicy } from '../../src/retention/policy.ts';

const d = (text: string) => parseCalendarDuration(text);
const periodic = (p: RetentionPolicy['periodic']): RetentionPolicy => ({ periodic: p, manual: {} });
const item = (iso: string): RetentionItem => ({ id: iso, time: new Date(iso), trigger: 'periodic', kind: 'dump', family: 'logical', dependsOn: [] });
const wall = (year: number, month: number, day: number, hour: number, minute: number) => ({ year, month, day, hour, minute, second: 0, millisecond: 0 });
const iso = (date: Date) => date.toISOString();

describe("zonedInstant: Go's time.Date for wall times that do not exist or exist twice", () => {
  it('a gap east of UTC (Paris, 2026-03-29 02:30) moves forward: 01:30Z, i.e. 03:30 CEST', () => {
    expect(iso(zonedInstant(wall(2026, 3, 29, 2, 30), 'Europe/Paris'))).toBe('2026-03-29T01:30:00.000Z');
  });

  it('a gap west of UTC (New York, 2026-03-08 02:30) moves backward: 06:30Z, i.e. 01:30 EST', () => {
    expect(iso(zonedInstant(wall(2026, 3, 8, 2, 30), 'America/New_York'))).toBe('2026-03-08T06:30:00.000Z');
  });

  it('a wall time twice east of UTC (Paris, 2026-10-25 02:30) is the later one (CET)', () => {
    expect(iso(zonedInstant(wall(2026, 10, 25, 2, 30), 'Europe/Paris'))).toBe('2026-10-25T01:30:00.000Z');
  });

  it('a wall time twice west of UTC (New York, 2026-11-01 01:30) is the earlier one (EDT)', () => {
    expect(iso(zonedInstant(wall(2026, 11, 1, 1, 30), 'America/New_York'))).toBe('2026-11-01T05:30:00.000Z');
  });

  it('an ordinary wall time, and Go-style overflow (Feb 31 → Mar 3)', () => {
    expect(iso(zonedInstant(wall(2026, 7, 1, 12, 0), 'America/New_York'))).toBe('2026-07-01T16:00:00.000Z');
    expect(iso(zonedInstant(wall(2026, 2, 31, 12, 0), 'UTC'))).toBe('2026-03-03T12:00:00.000Z');
  });

  it('a Southern-hemisphere gap (Sydney, 2026-10-04 02:30) moves forward', () => {
    expect(iso(zonedInstant(wall(2026, 10, 4, 2, 30), 'Australia/Sydney'))).toBe('2026-10-03T16:30:00.000Z');
  });
});

describe('keep_within windows across a DST change', () => {
  it('New York, 1d back from 02:30 EDT on 2026-03-09: the window starts at 01:30 EST, as in restic', () => {
    const reference = new Date('2026-03-09T06:30:00Z');
    expect(iso(subtractCalendar(reference, { years: 0, months: 0, days: 1, hours: 0, minutes: 0 }, 'America/New_York'))).toBe('2026-03-08T06:30:00.000Z');
    const list = [item('2026-03-09T06:30:00Z'), item('2026-03-08T07:15:00Z'), item('2026-03-08T06:45:00Z'), item('2026-03-08T06:15:00Z')];
    const result = applyRetention(list, periodic({ within: d('1d') }), 'America/New_York', new Date('2026-03-10T00:00:00Z'));
    expect(result.keep.map((k) => k.item.id)).toEqual(['2026-03-09T06:30:00Z', '2026-03-08T07:15:00Z', '2026-03-08T06:45:00Z']);
    expect(result.remove.map((r) => r.id)).toEqual(['2026-03-08T06:15:00Z']);
  });

  it('hours and minutes are subtracted after the calendar part, as absolute time', () => {
    const reference = new Date('2026-03-29T12:00:00Z'); // 14:00 CEST
    expect(iso(subtractCalendar(reference, { years: 0, months: 0, days: 1, hours: 0, minutes: 0 }, 'Europe/Paris'))).toBe('2026-03-28T13:00:00.000Z');
    expect(iso(subtractCalendar(reference, { years: 0, months: 0, days: 0, hours: 24, minutes: 30 }, 'Europe/Paris'))).toBe('2026-03-28T11:30:00.000Z');
  });
});

describe('zero windows are no rule (restic Duration.Zero)', () => {
  const list = [item('2026-11-20T00:00:00Z'), item('2026-11-19T00:00:00Z'), item('2026-11-18T00:00:00Z')];
  const now = new Date('2026-11-21T00:00:00Z');

  it('keep_within: 0d alone is an empty policy: everything is kept', () => {
    const result = applyRetention(list, periodic({ within: d('0d') }), 'UTC', now);
    expect(result.remove).toEqual([]);
    expect(result.keep.map((k) => k.reasons[0])).toEqual(['policy is empty', 'policy is empty', 'policy is empty']);
  });

  it('a zero window beside other rules changes nothing', () => {
    const withZero = applyRetention(list, periodic({ last: 1, withinDaily: d('0h'), within: d('0d') }), 'UTC', now);
    const without = applyRetention(list, periodic({ last: 1 }), 'UTC', now);
    expect(withZero).toEqual(without);
  });
});
