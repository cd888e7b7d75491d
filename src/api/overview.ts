import { Cron } from 'croner';

/**
 * Pure pieces of the dashboard's overview (GET /v1/status): how often a schedule is expected to
 * run, and from that how late the newest backup of a type is. No clock: `now` is passed in.
 */

/** The gap between the next two runs of a cron pattern in its zone, in seconds; undefined when it runs at most once more. */
export function expectedIntervalSeconds(cron: string, timezone: string, now: Date): number | undefined {
  const [a, b] = new Cron(cron, { timezone, paused: true }).nextRuns(2, now);
  if (!a || !b) return undefined;
  return Math.round((b.getTime() - a.getTime()) / 1000);
}

/** Of several schedules of one database and type, the shortest interval: the one the newest backup is held to. */
export function shortestInterval(intervals: readonly (number | undefined)[]): number | null {
  const known = intervals.filter((i): i is number => i !== undefined);
  return known.length === 0 ? null : Math.min(...known);
}
