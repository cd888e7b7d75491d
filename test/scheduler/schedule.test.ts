// Schedule computation is pure: next runs of daily-at-time and cron schedules in several time
// zones, across DST changes, and the catch-up decision after downtime. No timers involved.
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load.ts';
import { cronProblem, toSchedule } from '../../src/config/schedule.ts';
import { isOverdue, nextRun, nextRuns, previousRun } from '../../src/scheduler/schedule.ts';

const daily = (at: string, timezone: string) => toSchedule({ type: 'dump', at }, timezone);
const cron = (pattern: string, timezone: string) => toSchedule({ type: 'dump', cron: pattern }, timezone);
const iso = (dates: Date[]) => dates.map((d) => d.toISOString());

describe('daily at a time, in a time zone', () => {
  it('runs at 03:00 local time: CET in winter, CEST in summer (Europe/Paris)', () => {
    expect(iso(nextRuns(daily('03:00', 'Europe/Paris'), new Date('2026-01-10T00:00:00Z'), 2))).toEqual([
      '2026-01-10T02:00:00.000Z',
      '2026-01-11T02:00:00.000Z',
    ]);
    expect(iso(nextRuns(daily('03:00', 'Europe/Paris'), new Date('2026-07-10T00:00:00Z'), 1))).toEqual(['2026-07-10T01:00:00.000Z']);
  });

  it('spring forward: a time that does not exist that day runs once, at the first time after the gap', () => {
    // 2026-03-29 in Paris: 02:00 CET jumps to 03:00 CEST; 02:30 never happens.
    expect(iso(nextRuns(daily('02:30', 'Europe/Paris'), new Date('2026-03-27T12:00:00Z'), 4))).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 03:00 CEST
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
      '2026-03-31T00:30:00.000Z',
    ]);
  });

  it('fall back: a time that happens twice that day runs once', () => {
    // 2026-10-25 in Paris: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    const runs = nextRuns(daily('02:30', 'Europe/Paris'), new Date('2026-10-23T12:00:00Z'), 4);
    expect(iso(runs)).toEqual(['2026-10-24T00:30:00.000Z', '2026-10-25T00:30:00.000Z', '2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z']);
  });

  it('America/New_York across both changes, and the southern hemisphere (Australia/Sydney)', () => {
    expect(iso(nextRuns(daily('02:30', 'America/New_York'), new Date('2026-03-06T12:00:00Z'), 3))).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:00:00.000Z', // 03:00 EDT: 02:30 does not exist
      '2026-03-09T06:30:00.000Z',
    ]);
    expect(iso(nextRuns(daily('01:30', 'America/New_York'), new Date('2026-10-30T12:00:00Z'), 3))).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z', // the first of the two 01:30s
      '2026-11-02T06:30:00.000Z',
    ]);
    expect(iso(nextRuns(daily('02:30', 'Australia/Sydney'), new Date('2026-10-02T12:00:00Z'), 3))).toEqual([
      '2026-10-02T16:30:00.000Z',
      '2026-10-03T16:00:00.000Z', // 03:00 AEDT on the day DST starts
      '2026-10-04T15:30:00.000Z',
    ]);
  });
});

describe('cron expressions', () => {
  it('are read in their time zone', () => {
    expect(iso(nextRuns(cron('0 3 * * 1', 'Asia/Tokyo'), new Date('2026-11-21T00:00:00Z'), 2))).toEqual([
      '2026-11-22T18:00:00.000Z', // Monday 03:00 JST
      '2026-11-29T18:00:00.000Z',
    ]);
    expect(nextRun(cron('0 3 * * *', 'UTC'), new Date('2026-11-21T03:00:00Z'))?.toISOString()).toBe('2026-11-22T03:00:00.000Z');
  });

  it('take an optional seconds field', () => {
    expect(iso(nextRuns(cron('*/20 * * * * *', 'UTC'), new Date('2026-11-21T10:00:05Z'), 3))).toEqual([
      '2026-11-21T10:00:20.000Z',
      '2026-11-21T10:00:40.000Z',
      '2026-11-21T10:01:00.000Z',
    ]);
  });

  it('invalid ones are named', () => {
    expect(cronProblem('0 3 * *')).toMatch(/^invalid cron "0 3 \* \*"/);
    expect(cronProblem('61 * * * *')).toMatch(/^invalid cron/);
    expect(cronProblem('0 3 * * *')).toBeUndefined();
  });
});

describe('catch-up after downtime', () => {
  const schedule = daily('01:00', 'UTC');

  it('the previous due run is the latest at or before now', () => {
    expect(previousRun(schedule, new Date('2026-11-21T12:00:00Z'))?.toISOString()).toBe('2026-11-21T01:00:00.000Z');
    expect(previousRun(schedule, new Date('2026-11-21T00:59:00Z'))?.toISOString()).toBe('2026-11-20T01:00:00.000Z');
  });

  it('is overdue when the last success is older than the run that was due', () => {
    const now = new Date('2026-11-21T12:00:00Z');
    expect(isOverdue(schedule, new Date('2026-11-20T01:00:05Z'), now)).toBe(true);
    expect(isOverdue(schedule, new Date('2026-11-21T01:00:05Z'), now)).toBe(false);
    expect(isOverdue(schedule, undefined, now)).toBe(true);
  });
});

describe('schedules in the configuration', () => {
  const base = 'storage: { type: local, path: /tmp/x }\n';

  it('default to one dump a day at 01:00 in the configured time zone', () => {
    const config = parseConfig(`${base}timezone: Europe/Paris\ndatabases:\n  - name: a\n`, 'c', {});
    expect(config.databases[0]?.schedules).toEqual([
      { type: 'dump', cron: '0 1 * * *', timezone: 'Europe/Paris', jitterMs: 0, description: 'daily at 01:00 (Europe/Paris)' },
    ]);
  });

  it('take at or cron, a time zone of their own and a jitter', () => {
    const config = parseConfig(
      `${base}databases:\n  - name: a\n    schedules:\n      - { at: "03:15", timezone: America/New_York, jitter: 10m }\n      - { cron: "0 4 * * 0" }\n`,
      'c',
      {},
    );
    expect(config.databases[0]?.schedules).toMatchObject([
      { cron: '15 3 * * *', timezone: 'America/New_York', jitterMs: 600_000 },
      { cron: '0 4 * * 0', timezone: 'UTC', jitterMs: 0 },
    ]);
  });

  it('name what is wrong by YAML path', () => {
    const bad = `${base}databases:\n  - name: a\n    schedules:\n      - { at: "25:00" }\n      - { cron: "nope" }\n      - { at: "01:00", cron: "0 1 * * *" }\n      - { at: "01:00", timezone: Mars/Base }\n      - { at: "01:00", jitter: soon }\n`;
    expect(() => parseConfig(bad, 'c', {})).toThrow(/databases\[0\]\.schedules\[0\]\.at: must be a 24-hour time HH:MM/);
    const message = (() => {
      try {
        parseConfig(bad.replace('"25:00"', '"23:00"').replace(', jitter: soon', ''), 'c', {});
      } catch (err) {
        return (err as Error).message;
      }
      return '';
    })();
    expect(message).toMatch(/line 6: databases\[0\]\.schedules\[1\]\.cron: invalid cron "nope"/);
    expect(message).toMatch(/line 7: databases\[0\]\.schedules\[2\]: give either at: "HH:MM" or cron: "…"/);
    expect(message).toMatch(/line 8: databases\[0\]\.schedules\[3\]\.timezone: unknown time zone "Mars\/Base"/);
    expect(() => parseConfig(bad.replace('"25:00"', '"23:00"'), 'c', {})).toThrow(/schedules\[4\]\.jitter: "soon" is not a duration/);
  });
});
