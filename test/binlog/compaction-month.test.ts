// Thirty simulated days of binlog archive, written through the real local driver and compacted by
// the real compactor on a simulated clock, then counted: objects left in the archive, and the
// store requests `agent binlog list` and PITR planning make for a target a week back (counted by
// the CountingDriver, not timed). Steady writes; the server rotates its binlog daily at 06:00 UTC.
//
// Scale, said plainly: the last 20 minutes are captured at the default 3 s segment age (400
// segments: one closed 10-minute window merged from 200, and the open one). The last day before
// them has one segment per 10-minute window, the 29 days before one per hour: a window's segments
// become one object whatever their number, so the archive compaction leaves behind is the same,
// and the test writes ~1,300 segments instead of 860,000 (same bytes per hour, fewer cuts).
import { createHash } from 'node:crypto';
import { mkdtemp, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { zstdCompressSync } from 'node:zlib';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Archive } from '../../src/binlog/archive.ts';
import { compactArchive } from '../../src/binlog/compactor.ts';
import { commitSegment, segmentDataKey, type SegmentManifest } from '../../src/binlog/segments.ts';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { chooseBase, parseTarget, planReplay } from '../../src/restore/pitr.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { CountingDriver } from '../harness/counting-driver.ts';
import { BINLOG_MAGIC } from '../../src/binlog/events.ts';
import { event, fde, gtid, query, rotate, xid, type Spec } from './builder.ts';

const DAY = 24 * 3600_000;
const START = Date.parse('2026-10-01T00:00:00Z');
const END = START + 30 * DAY;
const COMPRESSION = { algorithm: 'zstd' as const, level: 3 };
const log = pino({ level: 'silent' });

interface Writer {
  file: number;
  position: number;
  sequence: number;
  createdAt: number;
  previous: { file: string; end: number } | null;
}

const fileName = (n: number) => `mysql-bin.${String(n).padStart(6, '0')}`;

/** Appends one segment at `at` (its transactions stamped then), rotating first when asked. */
async function writeSegment(storage: LocalDriver, root: string, w: Writer, at: number, transactions: number, rotateAfter: boolean): Promise<void> {
  const seconds = Math.floor(at / 1000);
  const file = fileName(w.file);
  const start = w.position;
  const parts: Buffer[] = [];
  const specs: Spec[] = [];
  if (start === 0) {
    parts.push(BINLOG_MAGIC);
    w.position = 4;
    specs.push(fde(Math.floor(w.createdAt / 1000)));
  }
  const firstSeq = w.sequence + 1;
  for (let i = 0; i < transactions; i++) specs.push(gtid(seconds, 0, ++w.sequence), query(seconds, 120), xid(seconds));
  if (rotateAfter) specs.push(rotate(seconds, fileName(w.file + 1)));
  for (const spec of specs) {
    const bytes = event(spec, w.position);
    parts.push(bytes);
    w.position += bytes.length;
  }
  const raw = Buffer.concat(parts);
  const data = zstdCompressSync(raw);
  const key = segmentDataKey('shop', file, start, w.position, '.zst');
  await storage.put(key, Readable.from([data]));
  const manifest: SegmentManifest = {
    format: 'backup-agent/binlog-segment',
    version: 1,
    database: 'shop',
    file,
    start,
    end: w.position,
    firstEventAt: new Date(seconds * 1000).toISOString(),
    lastEventAt: new Date(seconds * 1000).toISOString(),
    gtidFirst: `0-1-${firstSeq}`,
    gtidLast: `0-1-${w.sequence}`,
    transactions,
    serverId: 1,
    fileCreatedAt: new Date(Math.floor(w.createdAt / 1000) * 1000).toISOString(),
    nextFile: rotateAfter ? fileName(w.file + 1) : null,
    ...(start === 0 ? { follows: w.previous } : {}),
    object: { key, sizeBytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), compression: 'zstd', rawSizeBytes: raw.length },
    capturedAt: new Date(at).toISOString(),
    agent: { version: 'test', hostname: 'test' },
  };
  await commitSegment(storage, manifest);
  // The store's modification time is the capture time compaction files a level-0 segment under.
  const stamp = new Date(at);
  await utimes(join(root, manifest.object.key), stamp, stamp);
  await utimes(join(root, key.replace(/\.binlog\.zst$/, '.json')), stamp, stamp);
  if (rotateAfter) {
    w.previous = { file, end: w.position };
    w.file++;
    w.position = 0;
    w.createdAt = at;
  }
}

describe('thirty days of binlog at the default settings, compacted', () => {
  it('holds ≤ 2,000 objects, and binlog list and PITR planning a week back read ≤ 50 objects', async () => {
    const root = await mkdtemp(join(tmpdir(), 'compaction-month-'));
    const local = new LocalDriver(root);
    const w: Writer = { file: 1, position: 0, sequence: 0, createdAt: START, previous: null };
    const compact = (now: number) => compactArchive({ storage: local, database: 'shop', compression: COMPRESSION, log, now: () => new Date(now) });
    let nextCompaction = START + DAY;
    const tail = END - 20 * 60_000;
    let written = 0;
    const step = (at: number) => (at < END - DAY ? 3600_000 : at < tail ? 600_000 : 3000);
    for (let at = START; at < END; at += step(at)) {
      const next = at + step(at);
      const rotates = Math.floor((next - 6 * 3600_000) / DAY) > Math.floor((at - 6 * 3600_000) / DAY);
      await writeSegment(local, root, w, at, Math.max(1, Math.round(step(at) / 30_000)), rotates);
      written++;
      // The daemon compacts when a window closes; once a simulated day gives the same end state.
      if (next >= nextCompaction) {
        await compact(next);
        nextCompaction += DAY;
      }
    }
    await compact(END);
    expect(written).toBeGreaterThan(1200);

    const counting = new CountingDriver(local);
    const objects: string[] = [];
    for await (const o of counting.list('shop/')) objects.push(o.key);
    expect(objects.length).toBeLessThanOrEqual(2000);
    // The last open 10-minute window holds the only level-0 segments left.
    expect(objects.filter((k) => /\d{12}\.json$/.test(k)).length).toBeLessThanOrEqual(200 + 20);

    // `agent binlog list` (the archive part; the backup catalog is read apart from it).
    const base = {
      id: '20261123T070000.000Z-aaaaaa',
      type: 'dump',
      completedAt: new Date(END - 7 * DAY - 3 * 3600_000).toISOString(),
      binlog: { file: fileName(24), position: 4, gtid: null },
    } as unknown as Manifest;
    counting.reset();
    const archive = await Archive.load(counting, 'shop');
    const summary = await archive.summarize([base]);
    expect(summary.gaps).toEqual([]);
    expect(summary.runs).toHaveLength(1);
    expect(summary.base).toBe(base.id);
    const listReads = counting.objectReads;
    const listRequests = counting.requests;
    expect(listReads).toBeLessThanOrEqual(50);

    // PITR planning for a target a week back, from the listing on.
    counting.reset();
    const target = parseTarget(new Date(END - 7 * DAY).toISOString(), undefined);
    const planArchive = await Archive.load(counting, 'shop');
    const chosen = chooseBase([base], target!, ['dump']);
    const plan = await planReplay(planArchive, chosen!, target!, null);
    expect(plan.segments[0]).toMatchObject({ file: fileName(24), start: 0 });
    expect(counting.objectReads).toBeLessThanOrEqual(50);
    console.log(
      `30 days: ${written} segments written, ${objects.length} objects left; binlog list: ${listReads} object reads, ${listRequests} requests; PITR plan a week back: ${counting.objectReads} object reads, ${counting.requests} requests`,
    );
  }, 600_000);
});
