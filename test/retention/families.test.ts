// Retention per backup family: dumps (logical) and full + incremental (physical) never count against
// each other, a family may have its own rules, and only restorable backups count for any rule.
import { describe, expect, it } from 'vitest';
import { parseCalendarDuration } from '../../src/config/duration.ts';
import { applyRetention, newestFirst, type RetentionItem, type RetentionPolicy } from '../../src/retention/policy.ts';

const TZ = 'UTC';
const NOW = new Date('2026-11-21T12:00:00Z');
const at = (day: number, hour: number) => new Date(Date.UTC(2026, 10, day, hour));

function dump(day: number, hour = 1, extra: Partial<RetentionItem> = {}): RetentionItem {
  return { id: `dump-${String(day).padStart(2, '0')}-${hour}`, time: at(day, hour), trigger: 'periodic', kind: 'dump', family: 'logical', dependsOn: [], ...extra };
}
function full(day: number, hour = 2, extra: Partial<RetentionItem> = {}): RetentionItem {
  return { id: `full-${String(day).padStart(2, '0')}-${hour}`, time: at(day, hour), trigger: 'periodic', kind: 'full', family: 'physical', dependsOn: [], ...extra };
}
function incremental(day: number, parent: RetentionItem, hour = 2, extra: Partial<RetentionItem> = {}): RetentionItem {
  return { id: `inc-${String(day).padStart(2, '0')}-${hour}`, time: at(day, hour), trigger: 'periodic', kind: 'incremental', family: 'physical', dependsOn: [parent.id], ...extra };
}
const policy = (periodic: RetentionPolicy['periodic'], extra: Partial<RetentionPolicy> = {}): RetentionPolicy => ({ periodic, manual: {}, ...extra });
const ids = (result: ReturnType<typeof applyRetention>) => result.keep.map((k) => k.item.id);

/** Twenty days of a daily dump at 01:00 and a physical backup at 02:00: a full each Sunday, incrementals between. */
function dailyDumpAndIncremental(): RetentionItem[] {
  const items: RetentionItem[] = [];
  let parent: RetentionItem | undefined;
  for (let day = 1; day <= 20; day++) {
    items.push(dump(day));
    const physical: RetentionItem = at(day, 2).getUTCDay() === 0 || !parent ? full(day) : incremental(day, parent);
    items.push(physical);
    parent = physical;
  }
  return items;
}

describe('families', () => {
  it('keep_last: 2 over dumps and full backups keeps two of each (it kept one of each)', () => {
    const items = [dump(20), full(20), dump(19), full(19), dump(18), full(18)];
    const result = applyRetention(items, policy({ last: 2 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['full-20-2', ['last', 'newest successful']],
      ['dump-20-1', ['last', 'newest successful']],
      ['full-19-2', ['last']],
      ['dump-19-1', ['last']],
    ]);
    expect(result.remove.map((r) => r.id)).toEqual(['full-18-2', 'dump-18-1']);
  });

  it('a daily dump at 01:00 and a daily incremental at 02:00 with keep_daily: 7 keep seven dumps, the newest included', () => {
    const result = applyRetention(dailyDumpAndIncremental(), policy({ daily: 7 }), TZ, NOW);
    const dumps = result.keep.filter((k) => k.item.family === 'logical').map((k) => k.item.id);
    expect(dumps).toEqual(['dump-20-1', 'dump-19-1', 'dump-18-1', 'dump-17-1', 'dump-16-1', 'dump-15-1', 'dump-14-1']);
    // Physical: seven daily restore points (days 14–20), and the chains they need back to the
    // Sunday full of day 8 (2026-11-08 and -15 are Sundays).
    const physical = result.keep.filter((k) => k.item.family === 'physical');
    expect(physical.map((k) => k.item.id)).toEqual(['inc-20-2', 'inc-19-2', 'inc-18-2', 'inc-17-2', 'inc-16-2', 'full-15-2', 'inc-14-2', 'inc-13-2', 'inc-12-2', 'inc-11-2', 'inc-10-2', 'inc-09-2', 'full-08-2']);
    expect(physical.find((k) => k.item.id === 'inc-13-2')?.reasons).toEqual(['needed by incremental inc-14-2']);
    expect(physical.find((k) => k.item.id === 'full-15-2')?.reasons).toEqual(['daily', 'needed by incremental inc-16-2']);
  });

  it('a family block replaces the shared rules for that family only', () => {
    const items = dailyDumpAndIncremental();
    const result = applyRetention(items, policy({ daily: 3 }, { families: { physical: { periodic: { last: 1 }, manual: {} } } }), TZ, NOW);
    expect(ids(result).filter((id) => id.startsWith('dump'))).toEqual(['dump-20-1', 'dump-19-1', 'dump-18-1']);
    expect(result.keep.filter((k) => k.item.family === 'physical').map((k) => [k.item.id, k.reasons[0]])).toEqual([
      ['inc-20-2', 'last'],
      ['inc-19-2', 'needed by incremental inc-20-2'],
      ['inc-18-2', 'needed by incremental inc-19-2'],
      ['inc-17-2', 'needed by incremental inc-18-2'],
      ['inc-16-2', 'needed by incremental inc-17-2'],
      ['full-15-2', 'needed by incremental inc-16-2'],
    ]);
  });

  it('manual backups count per family too', () => {
    const items = [dump(20, 5, { trigger: 'manual' }), dump(19, 5, { trigger: 'manual' }), full(20, 6, { trigger: 'manual' }), full(19, 6, { trigger: 'manual' })];
    const result = applyRetention(items, policy({}, { manual: { last: 1 } }), TZ, NOW);
    expect(ids(result)).toEqual(['full-20-6', 'dump-20-5']);
  });
});

describe('only restorable backups count', () => {
  it('the newest dump with its data missing is kept and reported, but the newest restorable one is "newest successful"', () => {
    const items = [dump(20, 1, { dataProblem: 'data object shop/x/dump.sql.zst is missing' }), dump(19), dump(18)];
    const result = applyRetention(items, policy({ last: 1 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['dump-20-1', ['not restorable (data object shop/x/dump.sql.zst is missing): kept, not counted']],
      ['dump-19-1', ['last', 'newest successful']],
    ]);
    expect(result.remove.map((r) => r.id)).toEqual(['dump-18-1']);
    expect(result.unrestorable.map((u) => [u.item.id, u.problem])).toEqual([['dump-20-1', 'data object shop/x/dump.sql.zst is missing']]);
  });

  it('an incremental whose parent has no data is broken; the last whole chain stays', () => {
    const oldFull = full(10);
    const oldInc = incremental(11, oldFull);
    const newFull = full(15, 2, { dataProblem: 'data object shop/f/backup.xbstream.zst is 10 bytes, the manifest says 99' });
    const newInc = incremental(16, newFull);
    const result = applyRetention([oldFull, oldInc, newFull, newInc], policy({ last: 1 }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons])).toEqual([
      ['inc-16-2', ['not restorable (it needs full full-15-2, which cannot be restored): kept, not counted']],
      ['full-15-2', ['not restorable (data object shop/f/backup.xbstream.zst is 10 bytes, the manifest says 99): kept, not counted']],
      ['inc-11-2', ['last', 'newest successful']],
      ['full-10-2', ['needed by incremental inc-11-2']],
    ]);
    expect(result.remove).toEqual([]);
  });

  it('an incremental whose parent is not in the catalog is broken', () => {
    const orphan = incremental(16, full(15));
    const result = applyRetention([orphan, full(10)], policy({ last: 1 }), TZ, NOW);
    expect(result.unrestorable.map((u) => u.problem)).toEqual(['it needs full-15-2, which is not in the catalog']);
    expect(result.keep.find((k) => k.item.id === 'full-10-2')?.reasons).toEqual(['last', 'newest successful']);
  });

  it('a pitr_window base must be restorable', () => {
    const items = [dump(20, 1, { pitrBaseAt: at(20, 1) }), dump(14, 1, { pitrBaseAt: at(14, 1), dataProblem: 'gone' }), dump(13, 1, { pitrBaseAt: at(13, 1) }), dump(12, 1, { pitrBaseAt: at(12, 1) })];
    const result = applyRetention(items, policy({ last: 1 }, { pitrWindow: parseCalendarDuration('7d') }), TZ, NOW);
    expect(result.keep.map((k) => [k.item.id, k.reasons[0]])).toEqual([
      ['dump-20-1', 'last'],
      ['dump-14-1', 'not restorable (gone): kept, not counted'],
      ['dump-13-1', 'pitr_window 7d base'],
    ]);
  });
});

describe('invariants over a mixed timeline with broken backups', () => {
  const items = dailyDumpAndIncremental().map((i) => (i.id === 'dump-20-1' || i.id === 'inc-12-2' ? { ...i, dataProblem: 'missing' } : i));
  const policies: Record<string, RetentionPolicy> = {
    'last-1': policy({ last: 1 }),
    'daily-3-weekly-2': policy({ daily: 3, weekly: 2 }),
    'within-5d': policy({ within: parseCalendarDuration('5d') }),
    'physical-own': policy({ daily: 2 }, { families: { physical: { periodic: { weekly: 1 }, manual: {} } } }),
    'empty': policy({}),
  };

  it.each(Object.entries(policies))('%s: keep + remove = input; a kept backup keeps its chain; each family keeps its newest restorable; nothing broken is removed', (_name, p) => {
    const result = applyRetention(items, p, TZ, NOW);
    const all = [...result.keep.map((k) => k.item.id), ...result.remove.map((r) => r.id)];
    expect(new Set(all).size).toBe(items.length);
    expect([...all].sort()).toEqual(items.map((i) => i.id).sort());
    const kept = new Set(result.keep.map((k) => k.item.id));
    const broken = new Set(result.unrestorable.map((u) => u.item.id));
    for (const k of result.keep) if (!broken.has(k.item.id)) for (const dep of k.item.dependsOn) expect(kept.has(dep)).toBe(true);
    for (const family of ['logical', 'physical'] as const) {
      const newest = items.filter((i) => i.family === family && !broken.has(i.id)).sort(newestFirst)[0];
      expect(result.keep.find((k) => k.item.id === newest?.id)?.reasons).toContain('newest successful');
    }
    // dump-20 (data missing) and inc-13 … inc-20 (chain through inc-12) are broken, and all kept.
    expect([...broken].sort()).toEqual(['dump-20-1', 'inc-12-2', 'inc-13-2', 'inc-14-2']);
    for (const id of broken) expect(kept.has(id)).toBe(true);
  });
});
