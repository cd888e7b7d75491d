// Names read back from the bucket reach join(spool, …), rm and the binlog tool's argv: they are
// validated before use, and a segment manifest (or key) that fails is refused loudly.
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Archive } from '../../src/binlog/archive.ts';
import { isBinlogName } from '../../src/binlog/names.ts';
import { checkedBinlogName } from '../../src/binlog/resume.ts';
import { listSegments, readSegment, segmentManifestKey, type SegmentManifest } from '../../src/binlog/segments.ts';
import { MemoryDriver } from '../../src/storage/memory.ts';

const manifest = (over: Partial<SegmentManifest> = {}): SegmentManifest => ({
  format: 'backup-agent/binlog-segment',
  version: 1,
  database: 'shop',
  file: 'mysql-bin.000001',
  start: 0,
  end: 400,
  firstEventAt: '2026-11-21T10:00:00.000Z',
  lastEventAt: '2026-11-21T10:00:05.000Z',
  gtidFirst: '0-1-1',
  gtidLast: '0-1-3',
  transactions: 3,
  serverId: 1,
  fileCreatedAt: '2026-11-21T09:00:00.000Z',
  nextFile: null,
  follows: null,
  object: { key: 'shop/binlog/mysql-bin.000001/000000000000-000000000400.binlog.zst', sizeBytes: 100, sha256: 'a'.repeat(64), compression: 'zstd', rawSizeBytes: 400 },
  capturedAt: '2026-11-21T10:00:06.000Z',
  agent: { version: '0.1.0', hostname: 'h' },
  ...over,
});

async function put(storage: MemoryDriver, key: string, body: unknown): Promise<void> {
  await storage.put(key, Readable.from([Buffer.from(JSON.stringify(body))]));
}

describe('binlog file names', () => {
  it('accept what log_bin produces and nothing that could escape a directory or become an option', () => {
    for (const ok of ['mysql-bin.000001', 'mariadb-bin.000042', 'db1_host-bin.1234567', 'log.bin.000003']) expect(isBinlogName(ok), ok).toBe(true);
    for (const bad of ['../mysql-bin.000001', 'a/b.000001', '-rf.000001', '--help.000001', '.hidden.000001', 'x..y.000001', 'mysql-bin', 'mysql-bin.', 'a b.000001', 'a\nb.000001', '', 'mysql-bin.000001/']) {
      expect(isBinlogName(bad), JSON.stringify(bad)).toBe(false);
    }
  });

  it('a name from the resume point that is not one never reaches the tool', () => {
    expect(() => checkedBinlogName('shop', '--defaults-file=/etc/x.000001', 'segment manifest')).toThrow(
      'binlog capture of shop: segment manifest names "--defaults-file=/etc/x.000001" is not a binlog file name (expected e.g. mysql-bin.000042)',
    );
  });
});

describe('segment manifests read from storage', () => {
  it('refuse a nextFile that would leave the spool', async () => {
    const storage = new MemoryDriver();
    const key = segmentManifestKey('shop', 'mysql-bin.000001', 0, 400);
    await put(storage, key, manifest({ nextFile: '../../etc/cron.d/x.000002' }));
    const [ref] = await listSegments(storage, 'shop');
    await expect(readSegment(storage, ref!)).rejects.toThrow(
      `segment manifest ${key} is invalid at nextFile: "../../etc/cron.d/x.000002" is not a binlog file name (expected e.g. mysql-bin.000042)`,
    );
    await expect(Archive.load(storage, 'shop')).rejects.toThrow('is not a binlog file name');
  });

  it('refuse a file name starting with "-" (it would be an option to mariadb-binlog)', async () => {
    const storage = new MemoryDriver();
    await put(storage, segmentManifestKey('shop', 'mysql-bin.000001', 0, 400), manifest({ follows: { file: '-rf.000000', end: 10 } }));
    const [ref] = await listSegments(storage, 'shop');
    await expect(readSegment(storage, ref!)).rejects.toThrow('is invalid at follows.file: "-rf.000000" is not a binlog file name');
  });

  it('refuse a manifest describing another range than its key names', async () => {
    const storage = new MemoryDriver();
    const key = segmentManifestKey('shop', 'mysql-bin.000001', 0, 400);
    await put(storage, key, manifest({ file: 'mysql-bin.000007' }));
    const [ref] = await listSegments(storage, 'shop');
    await expect(readSegment(storage, ref!)).rejects.toThrow(
      `segment manifest ${key} is invalid: it describes mysql-bin.000007 0–400, its key mysql-bin.000001 0–400`,
    );
  });

  it('a segment key whose file part is not a binlog name makes the listing fail, not skip it', async () => {
    const storage = new MemoryDriver();
    await put(storage, segmentManifestKey('shop', 'mysql-bin.000001', 0, 400), manifest());
    await put(storage, 'shop/binlog/-rf.000002/000000000000-000000000100.json', manifest());
    await expect(listSegments(storage, 'shop')).rejects.toThrow(
      'segment manifest shop/binlog/-rf.000002/000000000000-000000000100.json is unreadable: "-rf.000002" is not a binlog file name (expected e.g. mysql-bin.000042)',
    );
  });
});
