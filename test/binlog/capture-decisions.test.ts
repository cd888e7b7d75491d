// The binlog capture's decisions, without a server, a tool or a store: data in, data out.
import { describe, expect, it } from 'vitest';
import {
  draftDue,
  fileFinished,
  markDue,
  purgedOnServer,
  reconnectBackoff,
  serverLostBinlog,
  spoolOverLimit,
  tailIdle,
} from '../../src/binlog/capture-decisions.ts';
import type { DatabaseConfig } from '../../src/config/normalize.ts';
import { configSchema } from '../../src/config/schema.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';

function database(max_spool_mb: number): DatabaseConfig {
  const raw = configSchema.parse({ storage: { type: 'local', path: '/x' }, databases: [{ name: 'shop', binlog: { enabled: true, max_spool_mb } }] });
  return normalizeConfig(raw).config.databases[0] as DatabaseConfig;
}

describe('is the spooled file finished', () => {
  const read = { later: 'mysql-bin.000002', finalSize: 1000, completeEnd: 1000, archived: 400 };

  it('finished once the tool has started a later file and every event of this one is read', () => {
    expect(fileFinished(read)).toBe(true);
  });

  it('not finished while no later file exists, the last event is partial, or the header is unread', () => {
    expect(fileFinished({ ...read, later: undefined, finalSize: -1 })).toBe(false);
    expect(fileFinished({ ...read, completeEnd: 990 })).toBe(false);
    expect(fileFinished({ ...read, completeEnd: undefined })).toBe(false);
  });

  it('a server file shorter than the archived part (crash without sync_binlog) is finished: nothing more comes from it', () => {
    const lost = { later: 'mysql-bin.000002', finalSize: 300, completeEnd: 400, archived: 400 };
    expect(serverLostBinlog(lost)).toBe(true);
    expect(fileFinished(lost)).toBe(true);
    expect(serverLostBinlog(read)).toBe(false);
    expect(serverLostBinlog({ ...lost, later: undefined })).toBe(false);
  });
});

describe('does the filling segment close', () => {
  const none = { finished: false, toolGone: false, stopping: false };
  it('by age: at segment_age, not before', () => {
    expect(draftDue(1000, 3999, 3000, none)).toBe(false);
    expect(draftDue(1000, 4000, 3000, none)).toBe(true);
  });
  it('at once when its file is finished, the tool is gone, or the capture stops', () => {
    expect(draftDue(1000, 1000, 3000, { ...none, finished: true })).toBe(true);
    expect(draftDue(1000, 1000, 3000, { ...none, toolGone: true })).toBe(true);
    expect(draftDue(1000, 1000, 3000, { ...none, stopping: true })).toBe(true);
  });
});

describe('is the tail idle', () => {
  it('idle only with nothing filling, nothing ready and everything read (or no file yet)', () => {
    expect(tailIdle({ filling: false, ready: 0, size: 100, scanned: 100 })).toBe(true);
    expect(tailIdle({ filling: false, ready: 0, size: -1, scanned: 0 })).toBe(true);
    expect(tailIdle({ filling: true, ready: 0, size: 100, scanned: 100 })).toBe(false);
    expect(tailIdle({ filling: false, ready: 1, size: 100, scanned: 100 })).toBe(false);
    expect(tailIdle({ filling: false, ready: 0, size: 100, scanned: 60 })).toBe(false);
  });
});

describe('is a complete-through marker due', () => {
  const due = { toolGone: false, idle: true, headerRead: true, size: 500, archived: 500, now: 70_000, lastMarkAt: 0, intervalMs: 60_000 };
  it('due when connected, idle, all archived and the interval passed', () => {
    expect(markDue(due)).toBe(true);
  });
  it('not due otherwise', () => {
    expect(markDue({ ...due, toolGone: true })).toBe(false);
    expect(markDue({ ...due, idle: false })).toBe(false);
    expect(markDue({ ...due, headerRead: false })).toBe(false);
    expect(markDue({ ...due, archived: 400 })).toBe(false);
    expect(markDue({ ...due, lastMarkAt: 20_000 })).toBe(false);
  });
});

describe('is the spool over its bound', () => {
  const outage = { message: 'connect ECONNREFUSED\nstack', since: new Date('2026-11-30T10:00:00Z'), attempts: 7 };
  it('fails only while uploads fail: a burst that drains is no reason', () => {
    expect(spoolOverLimit(database(1), 2 * 1024 * 1024, null)).toBeUndefined();
    expect(spoolOverLimit(database(1), 1024 * 1024, outage)).toBeUndefined();
  });
  it('over the bound with failing uploads: a storage error naming the bound, the outage and the last error', () => {
    const error = spoolOverLimit(database(1), 1024 * 1024 + 1, outage);
    expect(error?.kind).toBe('storage');
    expect(error?.message).toContain('max_spool_mb (1 MiB)');
    expect(error?.message).toContain('since 2026-11-30T10:00:00.000Z (7 attempts; last: connect ECONNREFUSED)');
    expect(error?.hint).toMatch(/fix the storage/);
  });
});

describe('reconnecting', () => {
  it('backs off 1, 2, 4 … 30 s, and starts over after an attempt that archived something', () => {
    const waits: number[] = [];
    let current = 1000;
    for (let i = 0; i < 7; i++) {
      const { waitMs, nextMs } = reconnectBackoff(current, false);
      waits.push(waitMs);
      current = nextMs;
    }
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(reconnectBackoff(30_000, true)).toEqual({ waitMs: 1000, nextMs: 2000 });
  });
  it('recognises a resume file the server has purged', () => {
    expect(purgedOnServer('mariadb-binlog: Got error reading packet from server: Could not find first log file name in binary log index file')).toBe(true);
    expect(purgedOnServer('Lost connection to server during query')).toBe(false);
  });
});
