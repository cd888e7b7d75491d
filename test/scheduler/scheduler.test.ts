// The scheduler with croner on fake timers: jobs fire on their schedule, jitter delays them by
// random × jitter, stop() cancels pending ones, and each job's next run is announced.
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { toSchedule } from '../../src/config/schedule.ts';
import type { NextRun } from '../../src/domain/schedule.ts';
import { Scheduler } from '../../src/scheduler/scheduler.ts';

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(new Date('2026-11-21T10:00:00.000Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Scheduler', () => {
  it('fires at the scheduled time plus random × jitter, announces next runs, and stops', async () => {
    const announced: NextRun[] = [];
    const due: string[] = [];
    const scheduler = new Scheduler({
      announce: (next) => announced.push(next),
      logger: pino({ level: 'silent' }),
      random: () => 0.5,
      onDue: (job) => due.push(`${job.database}@${new Date().toISOString()}`),
    });
    scheduler.start([
      { database: 'shop', schedule: toSchedule({ type: 'dump', cron: '0 * * * * *', jitter: 20_000 }, 'UTC') },
      { database: 'crm', schedule: toSchedule({ type: 'dump', cron: '30 * * * * *' }, 'UTC') },
    ]);
    expect(announced.map((a) => `${a.database} ${a.at?.toISOString()}`)).toEqual([
      'shop 2026-11-21T10:01:00.000Z',
      'crm 2026-11-21T10:00:30.000Z',
    ]);

    await vi.advanceTimersByTimeAsync(75_000);
    // crm at 10:00:30 exactly; shop fired at 10:01:00 and ran 10 s later (0.5 × 20 s jitter).
    expect(due).toEqual(['crm@2026-11-21T10:00:30.000Z', 'shop@2026-11-21T10:01:10.000Z']);
    expect(scheduler.nextRuns().map((r) => r.at?.toISOString())).toEqual(['2026-11-21T10:02:00.000Z', '2026-11-21T10:01:30.000Z']);

    await vi.advanceTimersByTimeAsync(50_000); // 10:02:05: shop fired at 10:02:00, its jitter is pending
    scheduler.stop();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(due).toEqual(['crm@2026-11-21T10:00:30.000Z', 'shop@2026-11-21T10:01:10.000Z', 'crm@2026-11-21T10:01:30.000Z']);
    expect(announced.slice(-2).map((a) => `${a.database} ${String(a.at)}`)).toEqual(['shop undefined', 'crm undefined']);
  });
});
