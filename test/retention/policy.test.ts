// Retention is a pure function. One fixed irregular timeline runs through a table of policies:
// invariants first (keep + remove = input, every kept backup has a reason, the newest is kept),
// then golden files. Edge cases are spelled out one by one below.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseCalendarDuration } from '../../src/config/duration.ts';
import { applyRetention, DEFAULT_POLICY, newestFirst, type RetentionItem, type RetentionPolicy } from '../../src/retention/policy.ts';
import { chainTimeline, TIMELINE, TIMELINE_NOW as NOW } from './timeline.ts';

const TZ = 'Europe/Paris';
const GOLDEN = fileURLToPath(new URL('./golden', import.meta.url));
const d = (text: string) => parseCalendarDuration(text);
const periodic = (p: RetentionPolicy['periodic'], manual: RetentionPolicy['manual'] = {}): RetentionPolicy => ({ periodic: p, manual });

const POLICIES: Record<string, RetentionPolicy> = {
  'empty': periodic({}),
  'last-3': periodic({ last: 3 }),
  'hourly-5': periodic({ hourly: 5 }),
  'daily-7': periodic({ daily: 7 }),
  'default': DEFAULT_POLICY,
  'weekly-4': periodic({ weekly: 4 }),
  'weekly-6': periodic({ weekly: 6 }),
  'monthly-12': periodic({ monthly: 12 }),
  'yearly-3': periodic({ yearly: 3 }),
  'daily-7-weekly-4-monthly-12-yearly-2': periodic({ daily: 7, weekly: 4, monthly: 12, yearly: 2 }),
  'daily-unlimited': periodic({ daily: -1 }),
  'daily-100-not-used-up': periodic({ daily: 100 }),
  'last-1-daily-2-weekly-2-monthly-2-yearly-2': periodic({ last: 1, daily: 2, weekly: 2, monthly: 2, yearly: 2 }),
  'within-2w': periodic({ within: d('2w') }),
  'within-1y6mo': periodic({ within: d('1y6mo') }),
  'within-daily-7d': periodic({ withinDaily: d('7d') }),
  'within-weekly-1mo': periodic({ withinWeekly: d('1mo') }),
  'within-monthly-1y': periodic({ withinMonthly: d('1y') }),
  'within-hourly-2d-and-yearly-1': periodic({ withinHourly: d('2d'), yearly: 1 }),
  'manual-2-daily-3': periodic({ daily: 3 }, { last: 2 }),
  'manual-0': periodic({ daily: 3 }, { last: 0 }),
  'manual-unlimited': periodic({ last: 1 }, { last: -1 }),
};

function summary(result: ReturnType<typeof applyRetention>) {
  return {
    keep: result.keep.map((k) => ({ id: k.item.id, trigger: k.item.trigger, reasons: k.reasons })),
    remove: result.remove.map((r) => r.id),
  };
}

describe.each(Object.entries(POLICIES))('policy %s on the fixed timeline', (name, policy) => {
  const result = applyRetention(TIMELINE, policy, TZ, NOW);

  it('keep + remove = input, disjoint, newest first', () => {
    const ids = [...result.keep.map((k) => k.item.id), ...result.remove.map((r) => r.id)];
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(TIMELINE.map((t) => t.id).sort());
    const sorted = [...TIMELINE].sort(newestFirst).map((t) => t.id);
    expect(result.keep.map((k) => k.item.id)).toEqual(sorted.filter((id) => result.keep.some((k) => k.item.id === id)));
  });

  it('every kept backup has a reason, and the newest is always kept', () => {
    for (const kept of result.keep) expect(kept.reasons.length).toBeGreaterThan(0);
    const newest = [...TIMELINE].sort(newestFirst)[0];
    expect(result.keep.find((k) => k.item.id === newest?.id)?.reasons).toContain('newest successful');
  });

  it('matches its golden file', async () => {
    const file = join(GOLDEN, `${name}.json`);
    const actual = `${JSON.stringify(summary(result), null, 2)}\n`;
    if (process.env['UPDATE_GOLDEN'] === '1') await writeFile(file, actual);
    expect(existsSync(file), `missing golden ${file}; run with UPDATE_GOLDEN=1 and review it`).toBe(true);
    expect(actual).toBe(await readFile(file, 'utf8'));
  });
});

/** IDs kept for a rule, as short local labels, for readable edge-case assertions. */
function keptWith(result: ReturnType<typeof applyRetention>, reason: string): string[] {
  return result.keep.filter((k) => k.reasons.includes(reason)).map((k) => k.item.time.toISOString());
}

const item = (iso: string, id?: string, trigger: 'periodic' | 'manual' = 'periodic'): RetentionItem => ({
  id: id ?? iso,
  time: new Date(iso),
  trigger,
  kind: 'dump',
  family: 'logical',
  dependsOn: [],
});

describe('edge cases', () => {
  it('an empty list keeps and removes nothing', () => {
    expect(applyRetention([], DEFAULT_POLICY, TZ, NOW)).toEqual({ keep: [], remove: [], unrestorable: [] });
  });

  it('an empty policy deletes nothing', () => {
    const result = applyRetention(TIMELINE, { periodic: {}, manual: {} }, TZ, NOW);
    expect(result.remove).toEqual([]);
  });

  it('hours are local hours: 02:30 CEST and 02:30 CET on 2026-10-25 (fall back) are one hour in Paris, two in UTC', () => {
    const list = [item('2026-10-24T12:00:00Z'), item('2026-10-25T00:30:00Z'), item('2026-10-25T01:30:00Z'), item('2026-10-26T00:10:00Z')];
    const paris = applyRetention(list, periodic({ hourly: 3 }), TZ, NOW);
    expect(keptWith(paris, 'hourly')).toEqual(['2026-10-26T00:10:00.000Z', '2026-10-25T01:30:00.000Z', '2026-10-24T12:00:00.000Z']);
    expect(paris.remove.map((r) => r.time.toISOString())).toEqual(['2026-10-25T00:30:00.000Z']);
    const utc = applyRetention(list, periodic({ hourly: 3 }), 'UTC', NOW);
    expect(utc.remove.map((r) => r.time.toISOString())).toEqual(['2026-10-24T12:00:00.000Z']);
  });

  it('spring forward: 01:30 CET and 03:30 CEST on 2026-03-29 are one local day', () => {
    const list = [item('2026-03-29T00:30:00Z'), item('2026-03-29T01:30:00Z')];
    const result = applyRetention(list, periodic({ daily: 5 }), TZ, NOW);
    expect(keptWith(result, 'daily')).toEqual(['2026-03-29T01:30:00.000Z']);
    // Kept only as the oldest backup of a rule with counts left, in a day that already has one.
    expect(keptWith(result, 'oldest daily')).toEqual(['2026-03-29T00:30:00.000Z']);
    expect(keptWith(applyRetention([...list, item('2026-03-28T12:00:00Z')], periodic({ daily: 5 }), TZ, NOW), 'daily')).toEqual([
      '2026-03-29T01:30:00.000Z',
      '2026-03-28T12:00:00.000Z',
    ]);
  });

  it('ISO week 53 of 2026 spans the new year; 2027-01-04 starts week 1', () => {
    const list = [item('2026-12-28T12:00:00Z'), item('2026-12-31T12:00:00Z'), item('2027-01-02T12:00:00Z'), item('2027-01-04T12:00:00Z'), item('2026-12-20T12:00:00Z')];
    const result = applyRetention(list, periodic({ weekly: 10 }), TZ, NOW);
    expect(keptWith(result, 'weekly')).toEqual(['2027-01-04T12:00:00.000Z', '2027-01-02T12:00:00.000Z', '2026-12-20T12:00:00.000Z']);
  });

  it('the new-year week: 2025-12-29 to 2026-01-04 is 2026-W01', () => {
    const list = [item('2025-12-28T12:00:00Z'), item('2025-12-29T12:00:00Z'), item('2026-01-02T12:00:00Z')];
    expect(keptWith(applyRetention(list, periodic({ weekly: 10 }), TZ, NOW), 'weekly')).toEqual(['2026-01-02T12:00:00.000Z', '2025-12-28T12:00:00.000Z']);
  });

  it('months are local months: 2026-06-30T23:30Z is July in Paris', () => {
    const list = [item('2026-06-30T23:30:00Z'), item('2026-07-15T12:00:00Z'), item('2026-06-15T12:00:00Z')];
    const paris = applyRetention(list, periodic({ monthly: 2 }), TZ, NOW);
    expect(keptWith(paris, 'monthly')).toEqual(['2026-07-15T12:00:00.000Z', '2026-06-15T12:00:00.000Z']);
    const utc = applyRetention(list, periodic({ monthly: 2 }), 'UTC', NOW);
    expect(keptWith(utc, 'monthly')).toEqual(['2026-07-15T12:00:00.000Z', '2026-06-30T23:30:00.000Z']);
  });

  it('equal timestamps: the larger ID counts as newer', () => {
    const list = [item('2026-11-20T10:00:00Z', 'a'), item('2026-11-20T10:00:00Z', 'b'), item('2026-11-19T10:00:00Z', 'c')];
    const result = applyRetention(list, periodic({ daily: 1 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([['b', ['daily', 'newest successful']]]);
    expect(result.remove.map((r) => r.id)).toEqual(['a', 'c']);
  });

  it('a backup dated in the future does not move the window: it is measured from the newest backup before now (restic)', () => {
    const list = [item('2030-01-01T00:00:00Z', 'future'), item('2026-11-20T00:00:00Z', 'now'), item('2026-11-01T00:00:00Z', 'older'), item('2026-10-01T00:00:00Z', 'old')];
    const result = applyRetention(list, periodic({ within: d('30d') }), TZ, new Date('2026-11-21T00:00:00Z'));
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['future', ['within 30d', 'newest successful']],
      ['now', ['within 30d']],
      ['older', ['within 30d']],
    ]);
    expect(result.remove.map((r) => r.id)).toEqual(['old']);
    // Every backup in the future: restic measures from the zero time, so all are inside.
    expect(applyRetention(list, periodic({ within: d('1d') }), TZ, new Date('2020-01-01T00:00:00Z')).remove).toEqual([]);
  });

  it('the oldest backup is kept for a rule whose count is not used up, named "oldest …" in a period already kept (restic ≥ 0.16)', () => {
    const list = [item('2026-11-20T10:00:00Z'), item('2026-11-20T08:00:00Z'), item('2026-11-19T10:00:00Z'), item('2026-11-19T08:00:00Z')];
    const result = applyRetention(list, periodic({ daily: 5, last: 9, withinDaily: d('10d') }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.time.toISOString(), k.reasons])).toEqual([
      ['2026-11-20T10:00:00.000Z', ['last', 'daily', 'daily within 10d', 'newest successful']],
      ['2026-11-20T08:00:00.000Z', ['last']],
      ['2026-11-19T10:00:00.000Z', ['last', 'daily', 'daily within 10d']],
      // `last` has a new bucket per backup: not "oldest"; daily and the window repeat a kept day.
      ['2026-11-19T08:00:00.000Z', ['last', 'oldest daily', 'oldest daily within 10d']],
    ]);
    // Used up: no extra.
    expect(keptWith(applyRetention(list, periodic({ daily: 2 }), TZ, NOW), 'oldest daily')).toEqual([]);
    // The oldest backup in a period of its own is a plain "daily".
    expect(keptWith(applyRetention(list.slice(0, 3), periodic({ daily: 5 }), TZ, NOW), 'daily')).toEqual(['2026-11-20T10:00:00.000Z', '2026-11-19T10:00:00.000Z']);
  });

  it('manual backups have their own count; the newest backup is kept whatever the policy says', () => {
    const list = [item('2026-11-21T10:00:00Z', 'm2', 'manual'), item('2026-11-21T09:00:00Z', 'm1', 'manual'), item('2026-11-20T01:00:00Z', 'p1')];
    const result = applyRetention(list, periodic({ daily: 1 }, { last: 0 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['m2', ['newest successful']],
      ['p1', ['daily']],
    ]);
    expect(result.remove.map((r) => r.id)).toEqual(['m1']);
  });

  it('a base that a kept backup depends on is kept, transitively, with the reason', () => {
    const [dump, full, inc1, inc2] = chainTimeline();
    const result = applyRetention([dump, full, inc1, inc2] as RetentionItem[], periodic({ last: 1 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.kind, k.reasons])).toEqual([
      ['incremental', ['last', 'newest successful']],
      ['incremental', [`needed by incremental ${inc2?.id}`]],
      ['full', [`needed by incremental ${inc1?.id}`]],
      // The dump is the other family: its own rules, its own newest.
      ['dump', ['last', 'newest successful']],
    ]);
    expect(result.remove).toEqual([]);
  });
});

describe('verified backups', () => {
  const at = new Date('2026-03-10T04:00:00Z');
  const manual = (iso: string, verified?: boolean): RetentionItem => ({ ...item(iso, undefined, 'manual'), verified: verified ? { depth: 'restore', at } : undefined });
  const keepLast1 = { periodic: {}, manual: { last: 1 } } as RetentionPolicy;

  it('keeps the newest verified backup when the counts would remove it, and says why', () => {
    const old = manual('2026-03-01T00:00:00Z', true);
    const newer = manual('2026-03-02T00:00:00Z');
    const newest = manual('2026-03-03T00:00:00Z');
    const result = applyRetention([old, newer, newest], keepLast1, TZ, NOW);
    expect(result.remove.map((i) => i.id)).toEqual([newer.id]);
    expect(result.keep.find((k) => k.item.id === old.id)?.reasons).toEqual([`newest verified (restore, ${at.toISOString()})`]);
  });

  it('lets an older verified backup go once a newer one is verified', () => {
    const old = manual('2026-03-01T00:00:00Z', true);
    const newer = manual('2026-03-02T00:00:00Z', true);
    const newest = manual('2026-03-03T00:00:00Z');
    const result = applyRetention([old, newer, newest], keepLast1, TZ, NOW);
    expect(result.remove.map((i) => i.id)).toEqual([old.id]);
    expect(keptWith(result, `newest verified (restore, ${at.toISOString()})`)).toEqual([newer.time.toISOString()]);
  });

  it('a verified backup that cannot be restored protects nothing: the newest restorable verified one is kept', () => {
    const good = manual('2026-03-01T00:00:00Z', true);
    const broken = { ...manual('2026-03-02T00:00:00Z', true), dataProblem: 'dump.sql.zst is missing' };
    const newest = manual('2026-03-03T00:00:00Z');
    const result = applyRetention([good, broken, newest], keepLast1, TZ, NOW);
    expect(result.remove).toEqual([]);
    expect(keptWith(result, `newest verified (restore, ${at.toISOString()})`)).toEqual([good.time.toISOString()]);
  });
});
