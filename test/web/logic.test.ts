import { describe, expect, it } from 'vitest';
import { ageLevel, apiErrorText, can, formatBytes, formatDuration, formatTime, scheduleBody, timelinePosition, timelineSpanDays } from '../../src/web/logic.ts';

describe('the dashboard logic', () => {
  it('colours an age against the expected interval: ok within it (10 % slack), amber up to twice, red beyond or never', () => {
    const day = 86_400;
    expect(ageLevel(day, day)).toBe('ok');
    expect(ageLevel(day * 1.1, day)).toBe('ok');
    expect(ageLevel(day * 1.1 + 1, day)).toBe('amber');
    expect(ageLevel(day * 2, day)).toBe('amber');
    expect(ageLevel(day * 2 + 1, day)).toBe('red');
    expect(ageLevel(null, day)).toBe('red');
    expect(ageLevel(day * 30, null)).toBe('none');
    expect(ageLevel(null, null)).toBe('none');
  });

  it('offers each role only what the API lets it do', () => {
    expect(['backup', 'cancel', 'schedule', 'restore', 'download'].map((a) => can('viewer', a as never))).toEqual([false, false, false, false, false]);
    expect(['backup', 'cancel', 'schedule', 'restore', 'download'].map((a) => can('operator', a as never))).toEqual([true, true, false, false, false]);
    expect(['backup', 'cancel', 'schedule', 'restore', 'download'].map((a) => can('admin', a as never))).toEqual([true, true, true, true, true]);
  });

  it('formats sizes, durations and times in the configured zone', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(20 * 1024 * 1024)).toBe('20 MiB');
    expect(formatBytes(3.25 * 1024 ** 3)).toBe('3.25 GiB');
    expect(formatBytes(150.4 * 1024)).toBe('150 KiB');
    expect(formatDuration(45)).toBe('45 s');
    expect(formatDuration(12 * 60)).toBe('12 min');
    expect(formatDuration(3 * 3600 + 5 * 60)).toBe('3 h 5 min');
    expect(formatDuration(52 * 3600)).toBe('2 d 4 h');
    expect(formatTime('2026-12-01T09:05:07.000Z', 'Europe/Paris')).toBe('2026-12-01 10:05 CET');
    expect(formatTime('2026-07-01T09:05:07.000Z', 'Europe/Paris', true)).toBe('2026-07-01 11:05:07 CEST');
    expect(formatTime('2026-12-01T23:30:00.000Z', 'UTC')).toBe('2026-12-01 23:30 UTC');
    expect(formatTime(null, 'UTC')).toBe('—');
  });

  it('shows API errors as the API words them, with the hint', () => {
    expect(apiErrorText(409, { error: 'a dump of shop is running (job job-1)', hint: 'wait for it' })).toBe('a dump of shop is running (job job-1) (wait for it)');
    expect(apiErrorText(403, { error: 'the viewer role may not do this: it needs admin' })).toBe('the viewer role may not do this: it needs admin');
    expect(apiErrorText(502, undefined, 'Bad Gateway')).toBe('HTTP 502 Bad Gateway');
  });

  it('builds the schedule of a POST body from the settings form', () => {
    expect(scheduleBody({ mode: 'daily', at: '03:30', cron: 'ignored', timezone: 'Europe/Paris' })).toEqual({ at: '03:30', timezone: 'Europe/Paris' });
    expect(scheduleBody({ mode: 'cron', at: '03:30', cron: ' 0 */6 * * * ', timezone: ' ' })).toEqual({ cron: '0 */6 * * *' });
  });

  it('places backups on a timeline long enough for the oldest', () => {
    const now = new Date('2026-12-01T00:00:00Z');
    expect(timelineSpanDays([], now)).toBe(7);
    expect(timelineSpanDays(['2026-11-20T00:00:00Z'], now)).toBe(14);
    expect(timelineSpanDays(['2026-07-01T00:00:00Z'], now)).toBe(183);
    expect(timelinePosition('2026-12-01T00:00:00Z', now, 7)).toBe(1);
    expect(timelinePosition('2026-11-24T00:00:00Z', now, 7)).toBe(0);
    expect(timelinePosition('2026-11-27T12:00:00Z', now, 7)).toBe(0.5);
    expect(timelinePosition('2026-11-01T00:00:00Z', now, 7)).toBeUndefined();
  });
});
