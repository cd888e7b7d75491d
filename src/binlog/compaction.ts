import { chooseCover } from './cover.ts';
import { SEGMENT_DATA_KEY, segmentBase, type ListedSegment, type SegmentListing } from './segments.ts';

/**
 * Pure: what one compaction pass does to a database's binlog archive (Litestream-style levels).
 * Captured segments are level 0; level n merges the contiguous level n−1 objects of ONE binlog
 * file whose capture window falls in the same level-n window (a level-0 segment's window time is
 * when the store wrote it; a merged object's is the window in its key). A group is merged once its
 * window has closed (plus `settleMs`, for late uploads and clock skew): a file rotated mid-window
 * just ends its group there, and a segment that arrives after its window was merged becomes an
 * object of its own. Only the readers' cover (cover.ts) is compacted, so a crashed run's leftovers
 * are never merged twice; they are deleted instead (see `cleanup`).
 */

export interface CompactionLevel {
  level: number;
  /** Window length: objects of this level cover what was captured in [window, window + windowMs). */
  windowMs: number;
}

/**
 * Defaults: 10-minute, hourly and daily objects. Ten minutes, not an hour, for level 1: at the 3 s
 * segment age a busy hour is 1,200 segments (2,400 keys), which alone would exceed the archive's
 * object budget; ten minutes bound the uncompacted tail to ~400 keys.
 */
export const DEFAULT_LEVELS: readonly CompactionLevel[] = [
  { level: 1, windowMs: 10 * 60_000 },
  { level: 2, windowMs: 60 * 60_000 },
  { level: 3, windowMs: 24 * 60 * 60_000 },
];

export const SETTLE_MS = 60_000;

export interface Merge {
  file: string;
  level: number;
  /** Window start of the merged object (ms since the epoch, UTC-aligned). */
  window: number;
  start: number;
  end: number;
  /** Contiguous, in order: sources[0].start = start, each next starts where the previous ends. */
  sources: ListedSegment[];
}

export interface Removal {
  /** The manifest to delete first (absent for data without a manifest), then its data keys. */
  manifestKey?: string;
  dataKeys: string[];
  /** The committed object that covers it: its manifest must be read back before anything is deleted. */
  coveredBy?: ListedSegment;
  why: string;
}

export interface CompactionPlan {
  merges: Merge[];
  removals: Removal[];
  /** Overlaps compaction did not write and leaves alone (reported). */
  shadowed: { key: string; overlaps: string }[];
  /** When the earliest still-open group can be merged (ms since the epoch); undefined: nothing waits. */
  nextDueAt: number | undefined;
}

const levelOf = (ref: { level?: number }): number => ref.level ?? 0;

/** The time compaction files an object under: when a segment was stored, or a merged object's window. */
export function windowTime(ref: ListedSegment): number {
  return ref.window ?? ref.modifiedAt.getTime();
}

export function planCompaction(listing: SegmentListing, now: number, levels: readonly CompactionLevel[] = DEFAULT_LEVELS, settleMs = SETTLE_MS): CompactionPlan {
  const { cover, superseded, shadowed } = chooseCover(listing.segments);
  const merges: Merge[] = [];
  let nextDueAt: number | undefined;
  let group: Merge | undefined;
  const close = () => {
    if (!group) return;
    const windowMs = (levels.find((l) => l.level === group?.level) as CompactionLevel).windowMs;
    const due = group.window + windowMs + settleMs;
    if (now >= due) merges.push(group);
    else nextDueAt = Math.min(nextDueAt ?? due, due);
    group = undefined;
  };
  for (const ref of cover) {
    const target = levels.find((l) => l.level === levelOf(ref) + 1);
    if (!target) {
      close();
      continue;
    }
    const window = Math.floor(windowTime(ref) / target.windowMs) * target.windowMs;
    if (group && group.file === ref.file && group.level === target.level && group.window === window && group.end === ref.start) {
      group.sources.push(ref);
      group.end = ref.end;
      continue;
    }
    close();
    group = { file: ref.file, level: target.level, window, start: ref.start, end: ref.end, sources: [ref] };
  }
  close();

  const dataKeysOf = new Map<string, string[]>();
  for (const o of listing.others) {
    const m = SEGMENT_DATA_KEY.exec(o.key);
    if (!m) continue;
    const base = m[1] as string;
    dataKeysOf.set(base, [...(dataKeysOf.get(base) ?? []), o.key]);
  }
  const baseOf = (key: string) => key.replace(/\.json$/, '');
  const removals: Removal[] = superseded.map(({ ref, by }) => ({
    manifestKey: ref.key,
    dataKeys: dataKeysOf.get(baseOf(ref.key)) ?? [],
    coveredBy: by,
    why: `inside ${by.key}`,
  }));
  // Data without a manifest: a merged object whose commit never happened (only compaction writes
  // those, under the writer lease), or a source whose manifest was already deleted. A level-0 one
  // is removed only inside a merged object: otherwise it may be a capture upload in flight (prune
  // removes old ones after its grace period).
  const manifests = new Set(listing.segments.map((s) => baseOf(s.key)));
  const merged = cover.filter((c) => levelOf(c) > 0);
  for (const [base, keys] of dataKeysOf) {
    if (manifests.has(base)) continue;
    const m = /\/([^/]+)\/(\d{12})-(\d{12})(?:\.L([1-9])-[0-9TZ]+)?$/.exec(base);
    if (!m) continue;
    const [file, start, end] = [m[1] as string, Number(m[2]), Number(m[3])];
    if (m[4] !== undefined) {
      removals.push({ dataKeys: keys, why: 'merged data whose manifest was never committed' });
      continue;
    }
    const by = merged.find((c) => c.file === file && c.start <= start && end <= c.end);
    if (by) removals.push({ dataKeys: keys, coveredBy: by, why: `source data inside ${by.key}` });
  }
  return { merges, removals, shadowed: shadowed.map((s) => ({ key: s.ref.key, overlaps: s.overlaps.key })), nextDueAt };
}

/** The key base a merge writes (manifest: `.json`, data: `.binlog<ext>`). */
export function mergeBase(database: string, merge: Merge): string {
  return segmentBase(database, merge.file, merge.start, merge.end, { level: merge.level, window: merge.window });
}
