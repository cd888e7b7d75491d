import { describe, expect, it } from 'vitest';
import { BinlogFormatError, EventScanner, EventType, formatGtidPosition, parseGtidPosition, positionIncludes } from '../../src/binlog/events.ts';
import { binlogFile, chunks, fde, gtid, query, rotate, xid } from './builder.ts';

const T = 1_795_300_000;

/** Splits bytes into chunks of `size` bytes. */
const fixed = (bytes: Buffer, size: number): Buffer[] => Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.subarray(i * size, (i + 1) * size));

describe('EventScanner', () => {
  const file = binlogFile([fde(T), gtid(T + 1, 0, 41), query(T + 1), xid(T + 1), gtid(T + 2, 1, 7, 9), query(T + 2, 300), xid(T + 2), rotate(T + 3, 'mysql-bin.000008')]);

  it('frames every event with its position, time, server, GTID and rotation, however the bytes arrive', () => {
    for (const split of [[file.bytes], chunks(file.bytes, 3), chunks(file.bytes, 11)]) {
      const scanner = new EventScanner();
      const events = split.flatMap((c) => scanner.push(c));
      expect(events.map((e) => [e.position, e.end])).toEqual(file.bounds);
      expect(events.map((e) => e.type)).toEqual([15, 162, 2, 16, 162, 2, 16, 4]);
      expect(events[1]?.gtid).toEqual({ domain: 0, serverId: 1, sequence: 41n });
      expect(events[4]?.gtid).toEqual({ domain: 1, serverId: 9, sequence: 7n });
      expect(events[4]?.timestamp).toBe(T + 2);
      expect(events[7]?.rotateTo).toBe('mysql-bin.000008');
      expect(scanner.completeEnd).toBe(file.bytes.length);
    }
  });

  it('frames the same events for every fixed chunk size, events straddling any number of pushes', () => {
    for (let size = 1; size <= 64; size++) {
      const scanner = new EventScanner();
      const events = fixed(file.bytes, size).flatMap((c) => scanner.push(c));
      expect(events.map((e) => [e.position, e.end, e.type, e.timestamp])).toEqual(file.bounds.map(([p, e], i) => [p, e, [15, 162, 2, 16, 162, 2, 16, 4][i], [T, T + 1, T + 1, T + 1, T + 2, T + 2, T + 2, T + 3][i]]));
      expect(events[4]?.gtid).toEqual({ domain: 1, serverId: 9, sequence: 7n });
      expect(events[7]?.rotateTo).toBe('mysql-bin.000008');
      expect(scanner.completeEnd).toBe(file.bytes.length);
    }
  });

  it('does not reuse the pushed buffers: the caller may overwrite one as soon as push returns', () => {
    const scanner = new EventScanner();
    const reused = Buffer.alloc(7);
    const events = [];
    for (let at = 0; at < file.bytes.length; at += reused.length) {
      const n = file.bytes.copy(reused, 0, at, at + reused.length);
      events.push(...scanner.push(reused.subarray(0, n)));
      reused.fill(0xee);
    }
    expect(events.map((e) => [e.position, e.end])).toEqual(file.bounds);
    expect(events[1]?.gtid).toEqual({ domain: 0, serverId: 1, sequence: 41n });
    expect(events[7]?.rotateTo).toBe('mysql-bin.000008');
  });

  it('keeps a partial event until the rest arrives; completeEnd stays on the last boundary', () => {
    const scanner = new EventScanner();
    const cut = (file.bounds[2]?.[0] ?? 0) + 5;
    const first = scanner.push(file.bytes.subarray(0, cut));
    expect(first).toHaveLength(2);
    expect(scanner.completeEnd).toBe(file.bounds[1]?.[1]);
    expect(scanner.push(file.bytes.subarray(cut))).toHaveLength(6);
  });

  it('resumes on a known boundary without the file head', () => {
    const from = file.bounds[4]?.[0] ?? 0;
    const scanner = new EventScanner(from, 1);
    const events = scanner.push(file.bytes.subarray(from));
    expect(events[0]?.position).toBe(from);
    expect(events.at(-1)?.rotateTo).toBe('mysql-bin.000008');
  });

  it('reads rotate names without a checksum when the format description says none', () => {
    const plain = binlogFile([fde(T, 0)]);
    const scanner = new EventScanner();
    expect(scanner.push(plain.bytes)[0]?.checksumAlg).toBe(0);
    expect(scanner.checksumAlg).toBe(0);
  });

  it('rejects bytes that are not a binlog, and impossible event sizes', () => {
    expect(() => new EventScanner().push(Buffer.from('-- MariaDB dump'))).toThrow(BinlogFormatError);
    const bad = Buffer.from(file.bytes);
    bad.writeUInt32LE(3, 4 + 9);
    expect(() => new EventScanner().push(bad)).toThrow(/impossible size 3/);
    // The same header arriving a byte at a time.
    const scanner = new EventScanner();
    expect(() => fixed(bad, 1).forEach((c) => scanner.push(c))).toThrow(/impossible size 3/);
  });

  it('labels event types as MariaDB numbers them', () => {
    expect(EventType).toMatchObject({ GTID: 162, ROTATE: 4, FORMAT_DESCRIPTION: 15, XID: 16 });
  });
});

describe('GTID positions', () => {
  it('parse, format and compare per domain', () => {
    const p = parseGtidPosition('1-9-7, 0-1-41');
    expect(formatGtidPosition(p)).toBe('0-1-41,1-9-7');
    expect(positionIncludes(p, { domain: 0, sequence: 41n })).toBe(true);
    expect(positionIncludes(p, { domain: 0, sequence: 42n })).toBe(false);
    expect(positionIncludes(p, { domain: 2, sequence: 1n })).toBe(false);
    expect(() => parseGtidPosition('0-1')).toThrow(/not a MariaDB GTID/);
  });
});
