// One fixed, irregular timeline of backups (Europe/Paris), used by the policy table and goldens.
// It has: bursts on one day, gaps of weeks, both DST changes of 2026, ISO week 53 of 2026 and the
// new-year week, two backups with the same timestamp, manual backups, a backup dated in the
// future, and a small incremental chain.
import type { RetentionItem } from '../../src/retention/policy.ts';

let counter = 0;
function at(iso: string, trigger: 'periodic' | 'manual' = 'periodic', extra: Partial<RetentionItem> = {}): RetentionItem {
  counter++;
  const time = new Date(iso);
  const stamp = time.toISOString().replace(/[-:]/g, '');
  return { id: `${stamp}-${counter.toString(16).padStart(6, '0')}`, time, trigger, kind: 'dump', family: 'logical', dependsOn: [], ...extra };
}

/** "Now" for the timeline: the last backup of the list is after it (a skewed clock). */
export const TIMELINE_NOW = new Date('2027-01-05T12:00:00Z');

export const TIMELINE: RetentionItem[] = [
  // 2025: sparse
  at('2025-01-15T00:10:00Z'),
  at('2025-03-01T00:10:00Z'),
  at('2025-06-30T22:30:00Z'), // 2025-07-01 00:30 in Paris: July there, June in UTC
  at('2025-09-14T00:10:00Z'),
  at('2025-12-29T00:10:00Z'), // Monday of ISO week 1 of 2026
  at('2025-12-31T00:10:00Z'), // same ISO week (2026-W01)
  // 2026 Q1: daily, with a burst
  at('2026-01-02T00:10:00Z'), // still 2026-W01
  at('2026-01-05T00:10:00Z'),
  at('2026-01-05T06:00:00Z'),
  at('2026-01-05T12:00:00Z'),
  at('2026-01-05T12:00:00Z'), // same timestamp as the previous one
  at('2026-01-06T00:10:00Z'),
  at('2026-02-10T00:10:00Z', 'manual'),
  at('2026-02-11T00:10:00Z'),
  // spring forward in Paris on 2026-03-29 (02:00 → 03:00)
  at('2026-03-28T00:10:00Z'),
  at('2026-03-29T00:30:00Z'), // 01:30 CET
  at('2026-03-29T01:30:00Z'), // 03:30 CEST, same local day
  at('2026-03-30T00:10:00Z'),
  // a gap, then summer
  at('2026-05-20T00:10:00Z', 'manual'),
  at('2026-06-01T00:10:00Z'),
  at('2026-07-01T00:10:00Z'),
  at('2026-08-15T00:10:00Z', 'manual'),
  // fall back in Paris on 2026-10-25 (03:00 CEST → 02:00 CET): 02:30 happens twice
  at('2026-10-24T23:30:00Z'), // 01:30 CEST on the 25th
  at('2026-10-25T00:30:00Z'), // 02:30 CEST
  at('2026-10-25T01:30:00Z'), // 02:30 CET, the same local hour again
  at('2026-10-26T00:10:00Z'),
  // November: daily for two weeks
  ...Array.from({ length: 14 }, (_, i) => at(`2026-11-${String(8 + i).padStart(2, '0')}T00:10:00Z`)),
  at('2026-11-21T09:00:00Z', 'manual'),
  at('2026-11-21T10:00:00Z', 'manual'),
  // ISO week 53 of 2026 runs from Mon 2026-12-28 to Sun 2027-01-03
  at('2026-12-28T00:10:00Z'),
  at('2026-12-31T00:10:00Z'),
  at('2027-01-02T00:10:00Z'),
  at('2027-01-04T00:10:00Z'), // 2027-W01
  // dated in the future relative to the rest (clock skew on some host)
  at('2027-06-01T00:10:00Z'),
];

/** A small chain for dependency tests: full ← inc1 ← inc2, and a dump that needs nothing. */
export function chainTimeline(): RetentionItem[] {
  const full = at('2026-11-01T01:00:00Z', 'periodic', { kind: 'full', family: 'physical' });
  const inc1 = at('2026-11-02T01:00:00Z', 'periodic', { kind: 'incremental', family: 'physical', dependsOn: [full.id] });
  const inc2 = at('2026-11-03T01:00:00Z', 'periodic', { kind: 'incremental', family: 'physical', dependsOn: [inc1.id] });
  const dump = at('2026-10-20T01:00:00Z');
  return [dump, full, inc1, inc2];
}
