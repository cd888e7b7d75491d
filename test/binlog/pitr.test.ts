import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { Archive } from '../../src/binlog/archive.ts';
import { commitSegment, type SegmentManifest } from '../../src/binlog/segments.ts';
import { chooseBase, parseTarget, planReplay, ReplayCut, type PitrTarget } from '../../src/restore/pitr.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';
import { binlogFile, chunks, fde, gtid, query, xid } from './builder.ts';

const T = 1_795_300_000;
const file = binlogFile([
  fde(T),
  gtid(T + 1, 0, 1), query(T + 1), xid(T + 1),
  gtid(T + 2, 0, 2), query(T + 2), xid(T + 2),
  gtid(T + 2, 1, 5, 3), query(T + 2), xid(T + 2),
  gtid(T + 4, 0, 3), query(T + 4), xid(T + 4),
]);
const at = (i: number) => file.bounds[i]?.[0] ?? -1;

async function run(cut: ReplayCut, from: number, seed: number): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const chunk of cut.filter('b.000001', from)(Readable.from(chunks(file.bytes, seed)))) out.push(chunk);
  return Buffer.concat(out);
}

describe('parseTarget', () => {
  it('takes an ISO time with a zone, or one GTID', () => {
    expect(parseTarget('2026-11-21T11:32:00+01:00', undefined)).toMatchObject({ kind: 'time', text: '2026-11-21T10:32:00.000Z' });
    expect(parseTarget(undefined, '0-1-4711')).toMatchObject({ kind: 'gtid', gtid: { domain: 0, serverId: 1, sequence: 4711n } });
    expect(parseTarget(undefined, undefined)).toBeUndefined();
  });
  it('refuses what is ambiguous or malformed, naming the flag', () => {
    expect(() => parseTarget('2026-11-21 10:32', undefined)).toThrow('--to-time 2026-11-21 10:32: not an ISO 8601 time with a zone');
    expect(() => parseTarget('yesterday', undefined)).toThrow(/--to-time yesterday/);
    expect(() => parseTarget(undefined, '0-1')).toThrow(/--to-gtid 0-1: "0-1" is not a MariaDB GTID/);
    expect(() => parseTarget(undefined, '0-1-2,1-1-3')).toThrow('--to-gtid 0-1-2,1-1-3: give exactly one GTID');
    expect(() => parseTarget('2026-11-21T10:32:00Z', '0-1-2')).toThrow('give one, not both');
  });
});

describe('ReplayCut: whole transactions up to the target', () => {
  it('a time target keeps every transaction stamped at or before its second', async () => {
    for (const seed of [1, 5, 9]) {
      const cut = new ReplayCut({ kind: 'time', at: new Date((T + 3) * 1000 + 999), text: '' });
      const bytes = await run(cut, 0, seed);
      expect(bytes.length).toBe(at(10));
      expect(cut.stopped).toBe(true);
      expect(cut.transactions).toBe(3);
      expect(cut.last).toMatchObject({ gtid: '1-3-5', position: at(7) });
    }
  });

  it('a GTID target keeps that transaction and stops at the next one, in any domain', async () => {
    const cut = new ReplayCut({ kind: 'gtid', gtid: { domain: 0, serverId: 1, sequence: 2n }, text: '' });
    expect((await run(cut, 0, 3)).length).toBe(at(7));
    expect(cut.last?.gtid).toBe('0-1-2');
  });

  it('counts only transactions from the base position on; a target past the end keeps everything', async () => {
    const cut = new ReplayCut({ kind: 'time', at: new Date((T + 60) * 1000), text: '' });
    expect(await run(cut, at(4), 2)).toEqual(file.bytes);
    expect(cut.stopped).toBe(false);
    expect(cut.transactions).toBe(3);
  });
});

describe('chooseBase', () => {
  const backup = (id: string, completedAt: string, gtid: string | null, type: Manifest['type'] = 'dump') =>
    ({ id, type, completedAt, binlog: { file: 'b.000001', position: 4, gtid } }) as Manifest;
  const newestFirst = [backup('c', '2026-11-21T12:00:00Z', '0-1-30'), backup('p', '2026-11-21T11:00:00Z', '0-1-25', 'full'), backup('b', '2026-11-21T10:00:00Z', '0-1-20'), backup('a', '2026-11-21T09:00:00Z', '0-1-10')];
  it('takes the newest completed at or before a time, of the given types', () => {
    expect(chooseBase(newestFirst, { kind: 'time', at: new Date('2026-11-21T11:30:00Z'), text: '' }, ['dump'])?.id).toBe('b');
    expect(chooseBase(newestFirst, { kind: 'time', at: new Date('2026-11-21T11:30:00Z'), text: '' }, ['dump', 'full'])?.id).toBe('p');
    expect(chooseBase(newestFirst, { kind: 'time', at: new Date('2026-11-21T08:00:00Z'), text: '' }, ['dump'])).toBeUndefined();
  });
  it('takes the newest whose GTID position has not passed the target', () => {
    expect(chooseBase(newestFirst, { kind: 'gtid', gtid: { domain: 0, serverId: 1, sequence: 20n }, text: '' }, ['dump'])?.id).toBe('b');
    expect(chooseBase(newestFirst, { kind: 'gtid', gtid: { domain: 0, serverId: 1, sequence: 19n }, text: '' }, ['dump'])?.id).toBe('a');
  });
});

describe('planReplay over an archive (memory driver)', () => {
  const segment = (file: string, start: number, end: number, gtidLast: string | null, lastEventAt: string): SegmentManifest => ({
    format: 'backup-agent/binlog-segment',
    version: 1,
    database: 'shop',
    file,
    start,
    end,
    firstEventAt: lastEventAt,
    lastEventAt,
    gtidFirst: gtidLast,
    gtidLast,
    transactions: gtidLast ? 1 : 0,
    serverId: 1,
    fileCreatedAt: '2026-11-21T00:00:00.000Z',
    nextFile: null,
    ...(start === 0 ? { follows: null } : {}),
    object: { key: `k${start}`, sizeBytes: 1, sha256: '0'.repeat(64), compression: 'zstd', rawSizeBytes: end - start },
    capturedAt: lastEventAt,
    agent: { version: 'test', hostname: 'h' },
  });
  const base = { id: 'b', type: 'dump', completedAt: '2026-11-21T10:00:00.000Z', binlog: { file: 'mysql-bin.000001', position: 300, gtid: '0-1-5' } } as Manifest;

  async function archive(): Promise<Archive> {
    const storage = new MemoryDriver();
    // Domain 1 appears only in the first segment; the last holds domain 0 alone.
    await commitSegment(storage, segment('mysql-bin.000001', 0, 500, '0-1-6,1-2-40', '2026-11-21T10:05:00.000Z'));
    await commitSegment(storage, segment('mysql-bin.000001', 500, 900, '0-1-9', '2026-11-21T10:09:00.000Z'));
    return Archive.load(storage, 'shop');
  }
  const gtid = (text: string) => parseTarget(undefined, text) as PitrTarget;

  it('finds a GTID of a domain the last segment does not hold', async () => {
    await expect(planReplay(await archive(), base, gtid('1-2-40'), null)).resolves.toMatchObject({ from: { file: 'mysql-bin.000001', position: 300 } });
    await expect(planReplay(await archive(), base, gtid('1-2-41'), null)).rejects.toThrow(/it is past the end of the binlog archive/);
    await expect(planReplay(await archive(), base, gtid('0-1-9'), null)).resolves.toBeDefined();
  });

  it('refuses a time past the last archived event, naming the last recoverable time', async () => {
    const late = parseTarget('2026-11-21T10:09:01Z', undefined) as PitrTarget;
    await expect(planReplay(await archive(), base, late, '2026-11-21T10:09:00.000Z')).rejects.toThrow(
      'point-in-time restore to 2026-11-21T10:09:01.000Z: it is past the end of the binlog archive; the last recoverable time is 2026-11-21T10:09:00.000Z',
    );
  });
});
