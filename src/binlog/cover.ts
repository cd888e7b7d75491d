import { compareSegments, type SegmentRef } from './segments.ts';

/**
 * Pure: which of a database's segment objects readers use. Compaction writes a merged object
 * before it deletes its sources, so after a crash (or while it runs) the archive holds overlapping
 * ranges: the merged object and some or all of the segments it was made from. Readers take one
 * non-overlapping cover of every file, preferring the highest level (then the widest range), and
 * fall back to lower levels only where no higher one covers; everything else is set aside:
 *
 * - superseded: wholly inside one chosen object of at least its level — the next compaction
 *   deletes it, once it has read that covering object's manifest (fail closed otherwise);
 * - shadowed: overlapping a chosen object without being inside one (never written by this agent;
 *   a foreign or damaged archive) — left alone and reported, never deleted.
 *
 * A range the cover misses shows up as a gap, exactly as a missing segment does today.
 */
export interface Cover<T extends SegmentRef> {
  /** Non-overlapping, in binlog order. */
  cover: T[];
  superseded: { ref: T; by: T }[];
  shadowed: { ref: T; overlaps: T }[];
}

const levelOf = (ref: SegmentRef): number => ref.level ?? 0;

export function chooseCover<T extends SegmentRef>(refs: readonly T[]): Cover<T> {
  const byFile = new Map<string, T[]>();
  for (const ref of refs) {
    const list = byFile.get(ref.file);
    if (list) list.push(ref);
    else byFile.set(ref.file, [ref]);
  }
  const result: Cover<T> = { cover: [], superseded: [], shadowed: [] };
  for (const list of byFile.values()) {
    // Highest level first; within a level the widest range first, then by position.
    const ranked = [...list].sort((a, b) => levelOf(b) - levelOf(a) || b.end - b.start - (a.end - a.start) || a.start - b.start);
    const chosen: T[] = [];
    for (const ref of ranked) {
      const overlap = chosen.find((c) => c.start < ref.end && ref.start < c.end);
      if (!overlap) {
        chosen.push(ref);
        continue;
      }
      const inside = chosen.find((c) => c.start <= ref.start && ref.end <= c.end && levelOf(c) >= levelOf(ref));
      if (inside) result.superseded.push({ ref, by: inside });
      else result.shadowed.push({ ref, overlaps: overlap });
    }
    result.cover.push(...chosen);
  }
  result.cover.sort(compareSegments);
  return result;
}
