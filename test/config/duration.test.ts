// One duration syntax for the whole configuration: `m` is minutes everywhere, months are `mo`, and
// a retention window refuses a bare `m` (restic's months) with an error naming the YAML path.
import { describe, expect, it } from 'vitest';
import { formatCalendarDuration, parseCalendarDuration, parseDuration, readCalendarDuration, readDuration } from '../../src/config/duration.ts';
import { parseConfig } from '../../src/config/load.ts';
import { AgentError } from '../../src/errors.ts';

const LOCAL = 'storage: { type: local, path: /var/backups }';
const problem = <T>(r: { ok: true; value: T } | { ok: false; problem: string }) => (r.ok ? undefined : r.problem);

function configProblems(yaml: string): string[] {
  try {
    parseConfig(yaml, 'agent.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(AgentError);
    expect((err as AgentError).exitCode).toBe(2);
    return (err as AgentError).message.split('\n').slice(1).map((l) => l.trim());
  }
  throw new Error('expected parseConfig to throw');
}

describe('fixed durations (timeouts, grace periods)', () => {
  it('reads every unit; m and min are minutes', () => {
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('5min')).toBe(300_000);
    expect(parseDuration('1h30min')).toBe(5_400_000);
    expect(parseDuration('1h 30m')).toBe(5_400_000);
    expect(parseDuration('2w1d')).toBe(15 * 86_400_000);
    expect(parseDuration('0s')).toBe(0);
  });

  it('refuses calendar units, repeated units and junk, saying why', () => {
    expect(problem(readDuration('1mo'))).toBe('"1mo": months have no fixed length here; give days (e.g. 30d)');
    expect(problem(readDuration('1y'))).toBe('"1y": years have no fixed length here; give days (e.g. 30d)');
    expect(problem(readDuration('1d2d'))).toBe('"1d2d" gives the unit d twice (expected e.g. 30s, 5min, 1h, 7d)');
    expect(problem(readDuration('5 minutes'))).toBe('"5 minutes" is not a duration: cannot read "utes" (expected e.g. 30s, 5min, 1h, 7d)');
    expect(problem(readDuration('10'))).toBe('"10" is not a duration: cannot read "10" (expected e.g. 30s, 5min, 1h, 7d)');
    expect(parseDuration('-5s')).toBeUndefined();
  });
});

describe('retention windows (calendar durations)', () => {
  it('reads y, mo, w, d, h and min, in any order; w and d add up', () => {
    expect(parseCalendarDuration('1y6mo')).toEqual({ years: 1, months: 6, days: 0, hours: 0, minutes: 0 });
    expect(parseCalendarDuration('36h')).toEqual({ years: 0, months: 0, days: 0, hours: 36, minutes: 0 });
    expect(parseCalendarDuration('1w2d')).toEqual({ years: 0, months: 0, days: 9, hours: 0, minutes: 0 });
    expect(parseCalendarDuration('30min')).toEqual({ years: 0, months: 0, days: 0, hours: 0, minutes: 30 });
    expect(parseCalendarDuration('2d1y')).toEqual({ years: 1, months: 0, days: 2, hours: 0, minutes: 0 });
    expect(parseCalendarDuration('0d')).toEqual({ years: 0, months: 0, days: 0, hours: 0, minutes: 0 });
  });

  it('a bare m is ambiguous (months in restic, minutes elsewhere): refused, suggesting mo or min', () => {
    expect(problem(readCalendarDuration('6m'))).toBe('"6m" is ambiguous: "m" is months in restic but minutes elsewhere; write 6mo for months or 6min for minutes');
    expect(parseCalendarDuration('1y6m')).toBeUndefined();
  });

  it('a repeated unit is refused (restic silently keeps the last one)', () => {
    expect(problem(readCalendarDuration('1d2d'))).toBe('"1d2d" gives the unit d twice (expected e.g. 36h, 7d, 2w, 6mo, 1y)');
  });

  it('seconds are finer than a window counts', () => {
    expect(problem(readCalendarDuration('90s'))).toBe('"90s": a retention window counts minutes at the finest (min, h, d, w, mo, y)');
  });

  it('formats in the syntax it reads', () => {
    for (const text of ['1y6mo', '7d', '36h', '1y2mo3d4h5min']) expect(formatCalendarDuration(parseCalendarDuration(text) ?? { years: 0, months: 0, days: 0, hours: 0, minutes: 0 })).toBe(text);
  });
});

describe('durations in the configuration', () => {
  it('orphan_grace: 1m is one minute; pitr_window: 1mo is one month', () => {
    const config = parseConfig(`${LOCAL}\nprune: { orphan_grace: 1m }\nretention: { pitr_window: 1mo, keep_within: 1y6mo }\ndatabases:\n  - name: a\n`, 'agent.yaml', {});
    expect(config.prune.orphan_grace).toBe(60_000);
    expect(config.databases[0]?.retention.pitrWindow).toEqual({ years: 0, months: 1, days: 0, hours: 0, minutes: 0 });
    expect(config.databases[0]?.retention.periodic.within).toEqual({ years: 1, months: 6, days: 0, hours: 0, minutes: 0 });
  });

  it('pitr_window: 1m and keep_within: 6m are refused with the YAML path and the fix', () => {
    expect(configProblems(`${LOCAL}\nretention:\n  pitr_window: 1m\ndatabases:\n  - name: a\n    retention: { keep_within: 6m }\n`)).toEqual([
      'line 3: retention.pitr_window: "1m" is ambiguous: "m" is months in restic but minutes elsewhere; write 1mo for months or 1min for minutes',
      'line 6: databases[0].retention.keep_within: "6m" is ambiguous: "m" is months in restic but minutes elsewhere; write 6mo for months or 6min for minutes',
    ]);
  });

  it('a family block is checked as strictly, with its path', () => {
    expect(configProblems(`${LOCAL}\nretention:\n  physical:\n    keep_within_daily: 2m\n    keep_dayly: 3\ndatabases:\n  - name: a\n`)).toEqual([
      'line 4: retention.physical.keep_within_daily: "2m" is ambiguous: "m" is months in restic but minutes elsewhere; write 2mo for months or 2min for minutes',
      'line 5: retention.physical: unknown key "keep_dayly"',
    ]);
  });

  it('a zero window is no window (pitr_window: 0d), as a zero keep_within is no rule', () => {
    const config = parseConfig(`${LOCAL}\nretention: { pitr_window: 0d, keep_last: 3 }\ndatabases:\n  - name: a\n`, 'agent.yaml', {});
    expect(config.databases[0]?.retention.pitrWindow).toBeUndefined();
  });

  it('a fixed duration refuses months', () => {
    expect(configProblems(`${LOCAL}\nprune: { orphan_grace: 1mo }\ndatabases:\n  - name: a\n`)).toEqual(['line 2: prune.orphan_grace: "1mo": months have no fixed length here; give days (e.g. 30d)']);
  });
});
