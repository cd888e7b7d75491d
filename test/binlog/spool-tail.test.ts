// The spool tail over real files in a scratch directory, as mariadb-binlog writes them: appended
// in pieces, then a later file. No server, no tool, no store (the archive's part is given).
import { appendFile, mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SpoolTail, type SpoolTailOptions } from '../../src/binlog/spool-tail.ts';
import { binlogFile, fde, gtid, query, rotate, xid } from './builder.ts';

const log = pino({ level: 'silent' });
const T = 1_700_000_000;
const options = (over: Partial<SpoolTailOptions> = {}): SpoolTailOptions => ({
  database: 'shop',
  segmentBytes: 1000,
  archivedPart: async () => undefined,
  log,
  readBuffer: Buffer.alloc(256),
  ...over,
});
const transactions = (n: number, size = 200) => Array.from({ length: n }, (_, i) => [gtid(T + i, 0, i + 1), query(T + i, size), xid(T + i)]).flat();
const none = { finished: false, toolGone: false, stopping: false };

describe('spool tail', () => {
  it('hands out segments of at most segmentBytes at event boundaries, one at a time, then the filling one by age', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tail-test-'));
    const { bytes, bounds } = binlogFile([fde(T), ...transactions(12)]);
    await writeFile(join(dir, 'mysql-bin.000001'), bytes);
    const tail = new SpoolTail(dir, { file: 'mysql-bin.000001', offset: 0 }, options());
    const ends: number[] = [];
    for (;;) {
      const pass = await tail.read();
      expect(pass).toMatchObject({ size: bytes.length, later: undefined, finished: false });
      tail.cutIfDue(Date.now(), 60_000, none);
      const draft = tail.nextDraft;
      if (!draft) break;
      expect(draft.start).toBe(ends.at(-1) ?? 0);
      expect(draft.end - draft.start).toBeLessThanOrEqual(1000);
      expect(bounds.some(([, end]) => end === draft.end)).toBe(true);
      tail.archivedTo(draft.end);
      ends.push(draft.end);
    }
    expect(ends.length).toBeGreaterThan(2);
    // The rest fills until it is old enough.
    const pass = await tail.read();
    expect(tail.idle(pass)).toBe(false);
    tail.cutIfDue(Date.now() + 60_000, 60_000, none);
    const last = tail.nextDraft;
    expect(last).toMatchObject({ start: ends.at(-1), end: bytes.length });
    tail.archivedTo(bytes.length);
    expect(tail.idle(await tail.read())).toBe(true);
    expect(tail.resume).toEqual({ file: 'mysql-bin.000001', offset: bytes.length });
  });

  it('a file appended in pieces: only whole events are framed; finished once a later file exists; then advances', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tail-test-'));
    const { bytes } = binlogFile([fde(T), ...transactions(2, 40), rotate(T + 5, 'mysql-bin.000002')]);
    const path = join(dir, 'mysql-bin.000001');
    await writeFile(path, bytes.subarray(0, bytes.length - 10));
    const tail = new SpoolTail(dir, { file: 'mysql-bin.000001', offset: 0 }, options({ segmentBytes: 1 << 20 }));
    await tail.read();
    tail.cutIfDue(Date.now(), 60_000, { ...none, toolGone: true });
    const partial = tail.nextDraft;
    expect(partial?.end).toBeLessThan(bytes.length);
    tail.archivedTo(partial?.end ?? 0);
    await appendFile(path, bytes.subarray(bytes.length - 10));
    await writeFile(join(dir, 'mysql-bin.000002'), binlogFile([fde(T + 6)]).bytes);
    const pass = await tail.read();
    expect(pass).toMatchObject({ later: 'mysql-bin.000002', finished: true });
    tail.cutIfDue(Date.now(), 60_000, { ...none, finished: pass.finished });
    expect(tail.nextDraft).toMatchObject({ start: partial?.end, end: bytes.length, nextFile: 'mysql-bin.000002' });
    tail.archivedTo(bytes.length);
    expect(tail.idle(pass)).toBe(true);
    await tail.advance('mysql-bin.000002');
    expect(await readdir(dir)).toEqual(['mysql-bin.000002']);
    expect(tail.resume).toEqual({ file: 'mysql-bin.000002', offset: 0, follows: { file: 'mysql-bin.000001', end: bytes.length } });
    expect(tail.follows).toEqual({ file: 'mysql-bin.000001', end: bytes.length });
  });

  it('skips what the archive already holds of the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tail-test-'));
    const { bytes, bounds } = binlogFile([fde(T), ...transactions(4, 40)]);
    await writeFile(join(dir, 'mysql-bin.000001'), bytes);
    const archivedEnd = (bounds[6] as [number, number])[1];
    const createdAt = new Date(T * 1000).toISOString();
    const tail = new SpoolTail(dir, { file: 'mysql-bin.000001', offset: 0 }, options({ archivedPart: async () => ({ end: archivedEnd, fileCreatedAt: createdAt }) }));
    await tail.read();
    expect(tail.archived).toBe(archivedEnd);
    tail.cutIfDue(Date.now(), 60_000, { ...none, stopping: true });
    expect(tail.nextDraft).toMatchObject({ start: archivedEnd, end: bytes.length });
  });

  it('refuses a file of the same name from before a reset of the numbering, reading nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tail-test-'));
    await writeFile(join(dir, 'mysql-bin.000001'), binlogFile([fde(T), ...transactions(2, 40)]).bytes);
    const tail = new SpoolTail(dir, { file: 'mysql-bin.000001', offset: 0 }, options({ archivedPart: async () => ({ end: 120, fileCreatedAt: '2020-01-01T00:00:00.000Z' }) }));
    await expect(tail.read()).rejects.toMatchObject({ kind: 'integrity', message: expect.stringMatching(/numbering was reset/) });
  });

  it('a file the tool has not created yet: nothing read, idle, not finished', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tail-test-'));
    const tail = new SpoolTail(dir, { file: 'mysql-bin.000003', offset: 0 }, options());
    const pass = await tail.read();
    expect(pass).toEqual({ size: -1, later: undefined, finished: false });
    expect(tail.idle(pass)).toBe(true);
    expect(tail.header).toBeUndefined();
  });
});
