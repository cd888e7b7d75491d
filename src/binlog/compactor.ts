import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Compression } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { compressionExtension, createDecompressor, openCompressor } from '../pipeline/compress.ts';
import { DigestStream } from '../pipeline/digest.ts';
import { openVerified } from '../restore/fetch.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { AGENT_VERSION } from '../version.ts';
import { DEFAULT_LEVELS, mergeBase, planCompaction, type CompactionLevel, type Merge, type Removal } from './compaction.ts';
import { formatGtidPosition, parseGtidPosition, type GtidPosition } from './events.ts';
import { commitSegment, listSegmentObjects, MERGED_SEGMENT_VERSION, readSegment, segmentDataKey, type SegmentManifest, type SegmentRef } from './segments.ts';
import { testPause } from './test-pause.ts';

/**
 * Runs compaction passes over one database's binlog archive (plan: compaction.ts). Every step is
 * crash safe: a merged object's data, then its manifest (the commit); only then, its sources, each
 * manifest first and data after. Readers take a cover that prefers the merged object, so any step
 * may be the last; the next run deletes what a crashed one left once it has read the covering
 * manifest back (and found its data at its size). The caller holds the binlog writer lease.
 */

const READ_CONCURRENCY = 8;

export interface CompactOptions {
  storage: StorageDriver;
  database: string;
  compression: Compression;
  log: Logger;
  signal?: AbortSignal;
  levels?: readonly CompactionLevel[];
  now?: () => Date;
}

export interface CompactResult {
  merged: number;
  /** Source and leftover objects deleted (manifests and data keys). */
  removed: number;
  /** When a still-open window can next be merged; undefined: nothing waits. */
  nextDueAt: number | undefined;
  /** Overlapping objects compaction did not write: left alone. */
  shadowed: number;
}

export async function compactArchive(options: CompactOptions): Promise<CompactResult> {
  const { storage, database, log } = options;
  const levels = options.levels ?? DEFAULT_LEVELS;
  const now = options.now ?? (() => new Date());
  const result: CompactResult = { merged: 0, removed: 0, nextDueAt: undefined, shadowed: 0 };
  const failures: string[] = [];
  // Each pass can lift what the previous one merged one level up (a day-old backlog: 0 → 1 → 2 → 3).
  for (let pass = 0; pass <= levels.length; pass++) {
    options.signal?.throwIfAborted();
    const plan = planCompaction(await listSegmentObjects(storage, database), now().getTime(), levels);
    result.nextDueAt = plan.nextDueAt;
    result.shadowed = plan.shadowed.length;
    for (const s of plan.shadowed) log.warn({ key: s.key, overlaps: s.overlaps }, 'binlog segment overlaps a chosen one without being inside it: left alone');
    // One read-back per covering object, however many objects it supersedes.
    const confirmed = new Map<string, Promise<void>>();
    const confirm = (ref: SegmentRef) => {
      let check = confirmed.get(ref.key);
      if (!check) confirmed.set(ref.key, (check = confirmCommitted(storage, ref)));
      return check;
    };
    for (const removal of plan.removals) {
      try {
        result.removed += await remove(storage, removal, confirm);
      } catch (err) {
        failures.push(`${removal.manifestKey ?? removal.dataKeys.join(', ')}: ${messageOf(err)}`);
      }
    }
    for (const merge of plan.merges) {
      options.signal?.throwIfAborted();
      const sources = await mergeAndCommit(options, merge);
      result.merged++;
      result.removed += await removeSources(storage, sources);
      log.info({ file: merge.file, level: merge.level, start: merge.start, end: merge.end, sources: merge.sources.length }, 'binlog segments compacted');
    }
    if (plan.merges.length === 0) break;
  }
  if (failures.length > 0) {
    throw new AgentError('storage', `compact the binlog archive of ${database}: left ${failures.length} superseded object(s) in place: ${failures.slice(0, 3).join('; ')}`, {
      hint: 'nothing is lost: readers use the covering objects; the next compaction tries again',
    });
  }
  return result;
}

/** Deletes a superseded object or leftover data, after reading back the manifest that covers it (fail closed). */
async function remove(storage: StorageDriver, removal: Removal, confirm: (ref: SegmentRef) => Promise<void>): Promise<number> {
  if (removal.coveredBy) await confirm(removal.coveredBy);
  let n = 0;
  if (removal.manifestKey) {
    await storage.delete(removal.manifestKey);
    n++;
    await testPause('cleanup-manifest');
  }
  for (const key of removal.dataKeys) {
    await storage.delete(key);
    n++;
  }
  return n;
}

/** The covering object is committed and readable: its manifest parses and matches its key, its data is there at its size. */
async function confirmCommitted(storage: StorageDriver, ref: SegmentRef): Promise<void> {
  const manifest = await readSegment(storage, ref);
  const data = await storage.stat(manifest.object.key);
  if (data?.size !== manifest.object.sizeBytes) {
    throw new Error(`${ref.key} covers it, but its data ${manifest.object.key} is ${data ? `${data.size} bytes, not ${manifest.object.sizeBytes}` : 'missing'}`);
  }
}

async function removeSources(storage: StorageDriver, sources: readonly { ref: SegmentRef; manifest: SegmentManifest }[]): Promise<number> {
  let n = 0;
  for (const { ref, manifest } of sources) {
    await storage.delete(ref.key);
    await testPause('source-manifest');
    await storage.delete(manifest.object.key);
    n += 2;
    await testPause('source-data');
  }
  return n;
}

/** Writes the merged object (data, then manifest), reads its manifest back, and returns its sources. */
async function mergeAndCommit(options: CompactOptions, merge: Merge): Promise<{ ref: SegmentRef; manifest: SegmentManifest }[]> {
  const { storage, database, compression } = options;
  const sources = await readAll(storage, merge.sources);
  sources.forEach((m, i) => {
    const expected = i === 0 ? merge.start : (sources[i - 1] as SegmentManifest).end;
    if (m.file !== merge.file || m.start !== expected) throw new AgentError('integrity', `compact ${merge.file}: ${m.object.key} does not continue at ${expected}`);
  });
  const place = { level: merge.level, window: merge.window };
  const key = segmentDataKey(database, merge.file, merge.start, merge.end, compressionExtension(compression.algorithm), place);
  const raw = createHash('sha256');
  const hashRaw = new Transform({ transform: (chunk: Buffer, _e, callback) => (raw.update(chunk), callback(null, chunk)) });
  const digest = new DigestStream();
  // Compressed like segments and backups: by the zstd command when installed.
  const { stage: compressor } = await openCompressor(compression, options.signal);
  const put = storage.put(key, digest, { contentType: 'application/octet-stream', ...(options.signal ? { signal: options.signal } : {}) });
  await Promise.all([pipeline(Readable.from(concatenated(storage, sources, options.signal)), hashRaw, compressor, digest), put]);
  await testPause('merge-data');
  const first = sources[0] as SegmentManifest;
  const last = sources.at(-1) as SegmentManifest;
  const manifest: SegmentManifest = {
    format: 'backup-agent/binlog-segment',
    version: MERGED_SEGMENT_VERSION,
    database,
    level: merge.level,
    window: new Date(merge.window).toISOString(),
    sources: sources.length,
    file: merge.file,
    start: merge.start,
    end: merge.end,
    firstEventAt: first.firstEventAt,
    lastEventAt: last.lastEventAt,
    gtidFirst: mergeGtids(sources.map((s) => s.gtidFirst), false),
    gtidLast: mergeGtids(sources.map((s) => s.gtidLast), true),
    transactions: sources.reduce((n, s) => n + s.transactions, 0),
    serverId: first.serverId,
    fileCreatedAt: first.fileCreatedAt,
    nextFile: last.nextFile,
    ...(merge.start === 0 && first.follows !== undefined ? { follows: first.follows } : {}),
    object: { key, sizeBytes: digest.bytes, sha256: digest.sha256, compression: compression.algorithm, rawSizeBytes: merge.end - merge.start, rawSha256: raw.digest('hex') },
    capturedAt: last.capturedAt,
    agent: { version: AGENT_VERSION, hostname: hostname() },
  };
  await commitSegment(storage, manifest);
  await testPause('merge-manifest');
  await confirmCommitted(storage, { file: merge.file, start: merge.start, end: merge.end, level: merge.level, window: merge.window, key: `${mergeBase(database, merge)}.json` });
  return merge.sources.map((ref, i) => ({ ref, manifest: sources[i] as SegmentManifest }));
}

/** Reads the sources' manifests, a few at a time (a level-1 merge has up to ~200), in order. */
async function readAll(storage: StorageDriver, refs: readonly SegmentRef[]): Promise<SegmentManifest[]> {
  const out: SegmentManifest[] = [];
  for (let i = 0; i < refs.length; i += READ_CONCURRENCY) out.push(...(await Promise.all(refs.slice(i, i + READ_CONCURRENCY).map((ref) => readSegment(storage, ref)))));
  return out;
}

/** The sources' bytes in order, each verified against its manifest (size and SHA-256) and its raw size. */
async function* concatenated(storage: StorageDriver, sources: readonly SegmentManifest[], signal?: AbortSignal): AsyncGenerator<Buffer> {
  for (const m of sources) {
    if (m.encryption) throw new AgentError('refused', `compact ${m.file}: ${m.object.key} is encrypted; encrypted segments are not merged`);
    const source = await openVerified(storage, { ...m.object, role: 'data' }, signal ? { signal } : {});
    const bytes = source.pipe(createDecompressor(m.object.compression));
    source.on('error', (err) => bytes.destroy(err));
    let n = 0;
    for await (const chunk of bytes) {
      n += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    if (n !== m.end - m.start) throw new AgentError('integrity', `${m.object.key}: ${n} bytes after decompression, the manifest says ${m.end - m.start}`);
  }
}

/** Per domain, the first (or last) GTID over the sources in order: what one segment of all their bytes would record. */
export function mergeGtids(positions: readonly (string | null)[], last: boolean): string | null {
  const merged: GtidPosition = new Map();
  for (const text of positions) {
    if (text === null) continue;
    for (const [domain, gtid] of parseGtidPosition(text)) if (last || !merged.has(domain)) merged.set(domain, gtid);
  }
  return merged.size === 0 ? null : formatGtidPosition(merged);
}
