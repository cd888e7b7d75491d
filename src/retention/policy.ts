import { formatCalendarDuration, type CalendarDuration } from '../config/duration.ts';
import { subtractCalendar } from './calendar.ts';
import { FAMILIES, type Family } from '../domain/backup.ts';
import type { FamilyPolicy, RetentionPolicy } from '../domain/retention-policy.ts';
import { applyPeriodic } from './periodic.ts';

export { FAMILIES, type Family } from '../domain/backup.ts';
export { DEFAULT_POLICY, type FamilyPolicy, type PeriodicPolicy, type RetentionPolicy } from '../domain/retention-policy.ts';

/**
 * Retention as a pure function: backups + policy + time zone + now → keep (with the reasons of
 * each) and remove. Backups are split into families that never count against each other: logical
 * (dumps) and physical (full backups and their incrementals). In each family, periodic backups go
 * through restic's `forget` rules (periodic.ts) and manual ones through their own count, then the
 * newest backup of the family is kept whatever the policy says. A family may have its own rules.
 * The newest backup that passed `agent verify` is kept until a newer one passes (a restore test's
 * proof is not thrown away for an unproven backup). The pitr_window keeps the base a point-in-time restore to its start needs, and every base a kept
 * backup depends on is kept, transitively: a physical rule counts restore points (each kept
 * incremental keeps its chain), as restic counts snapshots.
 *
 * Only restorable backups count: one whose data is missing (`dataProblem`), or whose chain is
 * broken, is never a reason to remove another; it is kept (deleting fails closed) and reported.
 */

export interface RetentionItem {
  id: string;
  time: Date;
  trigger: 'periodic' | 'manual';
  /** e.g. "dump", "full", "incremental": used in "needed by incremental X". */
  kind: string;
  family: Family;
  /** IDs of the backups this one needs to be restorable (incremental parents). */
  dependsOn: readonly string[];
  /** When a point-in-time restore can start from this backup (it has binlog coordinates); else undefined. */
  pitrBaseAt?: Date | undefined;
  /** Why the backup's own data cannot serve a restore (missing, short); undefined when it is all there. */
  dataProblem?: string | undefined;
  /** The newest passed verification of this backup (`agent verify`): its depth and when; undefined when none passed. */
  verified?: { depth: string; at: Date } | undefined;
}

export interface Kept<T extends RetentionItem> {
  item: T;
  reasons: string[];
}

export interface RetentionResult<T extends RetentionItem> {
  keep: Kept<T>[];
  remove: T[];
  /** Kept backups that cannot be restored, with why; they counted for no rule. */
  unrestorable: { item: T; problem: string }[];
}

/** Newest first: by time, then by ID (the larger ID counts as newer). The documented tie-break. */
export function newestFirst(a: RetentionItem, b: RetentionItem): number {
  const dt = b.time.getTime() - a.time.getTime();
  if (dt !== 0) return dt;
  return a.id < b.id ? 1 : a.id > b.id ? -1 : 0;
}

/**
 * Pure: why each backup that cannot be restored cannot be: its own data is bad, or a backup it
 * needs is absent from the catalog or itself not restorable (a broken chain).
 */
export function findUnrestorable(items: readonly RetentionItem[]): Map<string, string> {
  const byId = new Map(items.map((i) => [i.id, i]));
  const problems = new Map<string, string>();
  const visit = (item: RetentionItem, seen: Set<string>): string | undefined => {
    if (problems.has(item.id)) return problems.get(item.id);
    if (item.dataProblem) {
      problems.set(item.id, item.dataProblem);
      return item.dataProblem;
    }
    for (const dep of item.dependsOn) {
      const base = byId.get(dep);
      const baseProblem = !base ? `it needs ${dep}, which is not in the catalog` : seen.has(dep) ? `its chain loops through ${dep}` : visit(base, new Set([...seen, dep])) && `it needs ${base.kind} ${dep}, which cannot be restored`;
      if (baseProblem) {
        problems.set(item.id, baseProblem);
        return baseProblem;
      }
    }
    return undefined;
  };
  for (const item of items) visit(item, new Set([item.id]));
  return problems;
}

/**
 * Pure: the base a point-in-time restore to `windowStart` starts from — the newest backup that can
 * serve as a base at or before it; when every base is newer, the oldest base (the window then
 * reaches back further than any base can).
 */
export function pitrBase<T extends RetentionItem>(items: readonly T[], windowStart: Date): { item: T; covers: boolean } | undefined {
  const bases = items.filter((i) => i.pitrBaseAt !== undefined).sort((a, b) => (b.pitrBaseAt?.getTime() ?? 0) - (a.pitrBaseAt?.getTime() ?? 0));
  const covering = bases.find((i) => (i.pitrBaseAt?.getTime() ?? Infinity) <= windowStart.getTime());
  if (covering) return { item: covering, covers: true };
  const oldest = bases.at(-1);
  return oldest ? { item: oldest, covers: false } : undefined;
}

export function applyRetention<T extends RetentionItem>(items: readonly T[], policy: RetentionPolicy, timeZone: string, now: Date): RetentionResult<T> {
  const sorted = [...items].sort(newestFirst);
  const reasons = new Map<string, string[]>(sorted.map((item) => [item.id, []]));
  const add = (id: string, reason: string) => reasons.get(id)?.push(reason);
  const broken = findUnrestorable(sorted);
  const counted = sorted.filter((i) => !broken.has(i.id));

  for (const family of FAMILIES) {
    const rules = policy.families?.[family] ?? policy;
    const members = counted.filter((i) => i.family === family);
    const periodic = members.filter((i) => i.trigger === 'periodic');
    applyPeriodic(periodic, rules.periodic, timeZone, now).forEach((r, index) => {
      const item = periodic[index];
      if (item) for (const reason of r) add(item.id, reason);
    });
    members
      .filter((i) => i.trigger === 'manual')
      .forEach((item, index) => {
        if (rules.manual.last === undefined) add(item.id, 'manual policy is empty');
        else if (rules.manual.last === -1 || index < rules.manual.last) add(item.id, 'manual keep_last');
      });
    const newest = members[0];
    if (newest) add(newest.id, 'newest successful');
  }

  // A proven backup is worth more than an unproven one: the newest backup that passed `agent verify`
  // stays until a newer one passes too, whatever the counts say (its chain stays with it below).
  const verified = counted.find((i) => i.verified !== undefined);
  if (verified?.verified) add(verified.id, `newest verified (${verified.verified.depth}, ${verified.verified.at.toISOString()})`);

  if (policy.pitrWindow) {
    const windowStart = subtractCalendar(now, policy.pitrWindow, timeZone);
    const base = pitrBase(counted, windowStart);
    const window = `pitr_window ${formatCalendarDuration(policy.pitrWindow)}`;
    if (base) add(base.item.id, base.covers ? `${window} base` : `${window} base (oldest; the window reaches further back)`);
  }

  // Dependency closure: a kept backup keeps every base it needs, transitively. Only restorable
  // backups get here with reasons, and everything they need is restorable too.
  const byId = new Map(sorted.map((i) => [i.id, i]));
  const queue = sorted.filter((i) => (reasons.get(i.id)?.length ?? 0) > 0);
  while (queue.length > 0) {
    const item = queue.shift() as T;
    for (const dep of item.dependsOn) {
      const base = byId.get(dep);
      if (!base) continue;
      const baseReasons = reasons.get(base.id) ?? [];
      const reason = `needed by ${item.kind} ${item.id}`;
      const wasRemoved = baseReasons.length === 0;
      if (!baseReasons.includes(reason)) baseReasons.push(reason);
      if (wasRemoved) queue.push(base);
    }
  }

  // Fail closed: a backup that cannot be restored is not deleted by a rule it did not count for.
  const unrestorable: { item: T; problem: string }[] = [];
  for (const item of sorted) {
    const problem = broken.get(item.id);
    if (problem === undefined) continue;
    add(item.id, `not restorable (${problem}): kept, not counted`);
    unrestorable.push({ item, problem });
  }

  const keep: Kept<T>[] = [];
  const remove: T[] = [];
  for (const item of sorted) {
    const r = reasons.get(item.id) ?? [];
    if (r.length > 0) keep.push({ item, reasons: r });
    else remove.push(item);
  }
  return { keep, remove, unrestorable };
}
