// Pure parts of `agent verify`: the record's key and cell, the checks on a dump's scan, on an
// xbstream's file list, the streaming xbstream and binlog segment scanners, and the selection flags.
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { selection } from '../../src/cli/verify.ts';
import { findOrphans } from '../../src/retention/prune.ts';
import { BinlogSegmentScanner } from '../../src/verify/binlog-segment.ts';
import { buildRecord, newestRecords, parseRecord, parseRecordKey, recordKey, serializeRecord, supersededRecords, verifiedCell } from '../../src/verify/record.ts';
import { dumpProblems } from '../../src/verify/verify-backup.ts';
import { prepareProblems, systemTablespaces, XbstreamScanner, type XbstreamFile } from '../../src/verify/xbstream.ts';
import { binlogFile, fde, query, xid } from '../binlog/builder.ts';

const ID = '20261201T100000.000Z-abcdef';

describe('verification record', () => {
  const outcome = { database: 'shop', backupId: ID, depth: 'archive' as const, ok: true, problems: [], startedAt: '2026-12-01T10:00:00.000Z', finishedAt: '2026-12-01T10:00:05.123Z' };

  it('lives in the backup folder of its layout, its key saying depth, time and result', () => {
    expect(recordKey(outcome, 2)).toBe(`shop/backups/${ID}/verify/20261201T100005.123Z-archive-ok.json`);
    expect(recordKey({ ...outcome, ok: false }, 1)).toBe(`shop/${ID}/verify/20261201T100005.123Z-archive-failed.json`);
    expect(recordKey({ ...outcome, backupId: 'binlog' }, 0)).toBe('shop/binlog/verify/20261201T100005.123Z-archive-ok.json');
    expect(parseRecordKey(`shop/backups/${ID}/verify/20261201T100005.123Z-archive-ok.json`)).toEqual({ key: `shop/backups/${ID}/verify/20261201T100005.123Z-archive-ok.json`, database: 'shop', backupId: ID, depth: 'archive', ok: true, at: '2026-12-01T10:00:05.123Z' });
    expect(parseRecordKey(`shop/backups/${ID}/manifest.json`)).toBeUndefined();
    expect(parseRecordKey(`shop/backups/${ID}/verify/notes.txt`)).toBeUndefined();
    expect(parseRecordKey('shop/binlog/mysql-bin.000001/000000000000-000000000400.json')).toBeUndefined();
  });

  it('keeps the newest per backup, and makes older records of the same depth redundant', () => {
    const keys = [
      `shop/backups/${ID}/dump.sql.zst`,
      `shop/backups/${ID}/verify/20261201T100000.000Z-restore-ok.json`,
      `shop/backups/${ID}/verify/20261202T100000.000Z-archive-failed.json`,
      `shop/backups/${ID}/verify/20261130T100000.000Z-archive-ok.json`,
    ];
    expect(newestRecords(keys).get(ID)).toMatchObject({ depth: 'archive', ok: false, at: '2026-12-02T10:00:00.000Z' });
    expect(supersededRecords(keys, keys[2] as string)).toEqual([keys[3]]);
    expect(verifiedCell(newestRecords(keys).get(ID), (iso) => iso.slice(0, 10))).toBe('FAILED archive 2026-12-02');
    expect(verifiedCell(undefined, String)).toBe('-');
  });

  it('round-trips through its JSON form', () => {
    const record = buildRecord({ ...outcome, ok: false, problems: [{ backupId: ID, key: 'k', message: 'm' }] }, ['a note'], { version: '0.1.0', hostname: 'h' });
    expect(parseRecord(serializeRecord(record), 'key')).toEqual(record);
    expect(() => parseRecord('{"format":"x"}', 'the-key')).toThrow(/verification record the-key is invalid at format/);
  });

  it('of a backup whose manifest is gone is an orphan for prune (after the grace); of a listed backup it is not', () => {
    const old = new Date('2026-11-01T00:00:00Z');
    const objects = [
      { key: `shop/backups/${ID}/verify/20261201T100005.123Z-archive-ok.json`, size: 10, modifiedAt: old },
      { key: 'shop/backups/20261101T100000.000Z-123456/manifest.json', size: 10, modifiedAt: old },
      { key: 'shop/backups/20261101T100000.000Z-123456/verify/20261201T100005.123Z-objects-ok.json', size: 10, modifiedAt: old },
    ];
    expect(findOrphans(objects, 'shop', new Set(), new Date('2026-12-02T00:00:00Z'), 3_600_000).map((o) => o.key)).toEqual([objects[0]?.key]);
  });
});

describe('dump checks', () => {
  it('want the completion line and every schema of the manifest', () => {
    expect(dumpProblems({ complete: true, schemas: new Set(['shop', 'crm']) }, ['shop', 'crm'])).toEqual([]);
    expect(dumpProblems({ complete: false, schemas: new Set(['shop']) }, ['shop', 'crm'])).toEqual([
      "the dump does not end with the dump tool's completion line (-- Dump completed): it is cut short or was not written by a dump that finished",
      'the dump creates no schema `crm` (no CREATE DATABASE or USE line), which the manifest lists',
    ]);
  });
});

/** One xbstream chunk: payload ('P') or end of file ('E'). */
function chunk(path: string, payload?: Buffer, badCrc = false): Buffer {
  const name = Buffer.from(path);
  const head = Buffer.alloc(14);
  head.write('XBSTCK01', 0, 'latin1');
  head.writeUInt8(payload ? 0x50 : 0x45, 9);
  head.writeUInt32LE(name.length, 10);
  if (!payload) return Buffer.concat([head, name]);
  const sizes = Buffer.alloc(20);
  sizes.writeBigUInt64LE(BigInt(payload.length), 0);
  sizes.writeUInt32LE((crc32(payload) ^ (badCrc ? 1 : 0)) >>> 0, 16);
  return Buffer.concat([head, name, sizes, payload]);
}

const file = (path: string, text: string) => [chunk(path, Buffer.from(text)), chunk(path)];
const scan = async (bytes: Buffer, piece = 7) => {
  const scanner = new XbstreamScanner();
  const pieces = Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => bytes.subarray(i * piece, (i + 1) * piece));
  await pipeline(Readable.from(pieces), scanner);
  return scanner;
};

describe('xbstream', () => {
  const fullStream = Buffer.concat([
    ...file('ibdata1', 'x'.repeat(100)),
    ...file('ib_logfile0', 'redo'),
    ...file('backup-my.cnf', '[mysqld]\ninnodb_data_file_path=ibdata1:12M:autoextend\n'),
    ...file('xtrabackup_checkpoints', 'backup_type = full-backuped\nfrom_lsn = 0\nto_lsn = 44744\n'),
  ]);

  it('lists the files and keeps the small ones, read in pieces of any size', async () => {
    const scanner = await scan(fullStream);
    expect([...scanner.files.keys()]).toEqual(['ibdata1', 'ib_logfile0', 'backup-my.cnf', 'xtrabackup_checkpoints']);
    expect(scanner.kept.get('xtrabackup_checkpoints')).toContain('to_lsn = 44744');
    expect(prepareProblems(scanner.files, scanner.kept, { type: 'full', fromLsn: '0', toLsn: '44744' })).toEqual([]);
  });

  it('fails a stream cut inside a chunk, and a chunk whose CRC-32 does not match', async () => {
    await expect(scan(fullStream.subarray(0, fullStream.length - 3))).rejects.toThrow(/ends inside a chunk.*cut short/);
    await expect(scan(Buffer.concat([chunk('ibdata1', Buffer.from('abc'), true)]))).rejects.toThrow('a chunk of ibdata1 fails its CRC-32');
  });

  it('names what a prepare needs and lacks', () => {
    const files = new Map<string, XbstreamFile>([
      ['ibdata1.delta', { chunks: 1, bytes: 1, ended: true }],
      ['shop/t.ibd.delta', { chunks: 1, bytes: 1, ended: true }],
      ['shop/t.ibd.meta', { chunks: 1, bytes: 1, ended: false }],
      ['xtrabackup_checkpoints', { chunks: 1, bytes: 1, ended: true }],
    ]);
    expect(prepareProblems(files, new Map([['xtrabackup_checkpoints', 'backup_type = full-backuped\nto_lsn = 5\n']]), { type: 'incremental', toLsn: '7' })).toEqual([
      'the xbstream holds no backup-my.cnf, which mariadb-backup --prepare needs',
      'the xbstream holds no ib_logfile0, which mariadb-backup --prepare needs',
      "the xbstream holds no ibdata1.meta (the system tablespace's changes), which mariadb-backup --prepare needs",
      'the xbstream ends before the end of shop/t.ibd.meta',
      'xtrabackup_checkpoints says backup_type = full-backuped, the manifest an incremental backup (incremental)',
      'xtrabackup_checkpoints says to_lsn = 5, the manifest 7',
    ]);
    expect(systemTablespaces('ibdata1:12M;ibdata2:50M:autoextend')).toEqual(['ibdata1', 'ibdata2']);
  });
});

/** A binlog file from the builder with real CRC-32 trailers (the builder writes zeros). */
function checksummed(bytes: Buffer, bounds: [number, number][]): Buffer {
  const out = Buffer.from(bytes);
  for (const [start, end] of bounds) out.writeUInt32LE(crc32(out.subarray(start, end - 4)) >>> 0, end - 4);
  return out;
}

describe('binlog segment scanner', () => {
  const { bytes, bounds } = binlogFile([fde(1000), query(1001, 5000), xid(1001), query(1002, 30), xid(1002)]);
  const good = checksummed(bytes, bounds);
  const run = async (data: Buffer, start: number, end: number, piece = 13) => {
    const scanner = new BinlogSegmentScanner(start, end);
    const pieces = Array.from({ length: Math.ceil(data.length / piece) }, (_, i) => data.subarray(i * piece, (i + 1) * piece));
    await pipeline(Readable.from(pieces), scanner);
    return scanner;
  };

  it('passes a clean file and a segment from an event boundary, in pieces of any size', async () => {
    expect((await run(good, 0, good.length)).events).toBe(5);
    expect((await run(good, 0, good.length, 100_000)).events).toBe(5);
    const from = bounds[2]?.[0] as number;
    expect((await run(good.subarray(from), from, good.length)).events).toBe(3);
  });

  it('fails a flipped byte (CRC-32), a cut segment, and positions that do not follow', async () => {
    const flipped = Buffer.from(good);
    flipped[(bounds[1]?.[0] as number) + 100]! ^= 1;
    await expect(run(flipped, 0, good.length)).rejects.toThrow(`the event at ${bounds[1]?.[0]} fails its CRC-32`);
    await expect(run(good.subarray(0, good.length - 2), 0, good.length)).rejects.toThrow('cut short');
    await expect(run(good, 0, good.length + 10)).rejects.toThrow(`its events end at ${good.length}, the segment's range at ${good.length + 10}`);
    const moved = Buffer.from(good);
    moved.writeUInt32LE(1, (bounds[3]?.[0] as number) + 13);
    await expect(run(moved, 0, good.length)).rejects.toThrow(`the event at ${bounds[3]?.[0]} says the next one starts at 1`);
  });
});

describe('selection flags', () => {
  it('default to the newest backup; clash by name', () => {
    expect(selection({})).toEqual({ kind: 'latest' });
    expect(selection({ binlog: true })).toEqual({ kind: 'none' });
    expect(selection({ all: true, binlog: true })).toEqual({ kind: 'all' });
    expect(selection({ backup: ID })).toEqual({ kind: 'backup', id: ID });
    expect(() => selection({ backup: ID, all: true })).toThrow('--backup and --all: choose one');
  });
});
