import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { z } from 'zod';
import { messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeBadName, isBinlogName } from './names.ts';

/**
 * The binlog archive of a database: segments, each a byte range [start, end) of one binlog file,
 * cut on event boundaries. Data first, then the segment's manifest, which commits it:
 *
 *   <database>/binlog/<file>/<start>-<end>.binlog[.zst]   the bytes, compressed
 *   <database>/binlog/<file>/<start>-<end>.json           the manifest (commit marker)
 *
 * Positions are zero-padded to 12 digits so keys sort by position. Concatenating a file's
 * segments from 0 gives the server's binlog file byte for byte (up to what was captured), which
 * `mariadb-binlog` reads as is. Pure functions below decide continuity and gaps from the keys and
 * manifests.
 */

/** A binlog file name read from storage: refused unless it has the strict shape (see names.ts). */
export const binlogName = z.string().refine(isBinlogName, { error: (issue) => describeBadName(String(issue.input)) });

export const SEGMENT_FORMAT = 'backup-agent/binlog-segment';
export const SEGMENT_VERSION = 1;
const POS_DIGITS = 12;

export const segmentSchema = z.object({
  format: z.literal(SEGMENT_FORMAT),
  version: z.literal(SEGMENT_VERSION),
  database: z.string(),
  /** Binlog file name on the server, e.g. mysql-bin.000042. */
  file: binlogName,
  /** Byte range in that file: start is an event boundary (0 = the file's beginning, incl. magic). */
  start: z.number().int().nonnegative(),
  end: z.number().int().positive(),
  /** Timestamps of the first and last event in the range (1-second resolution, server clock). */
  firstEventAt: z.iso.datetime(),
  lastEventAt: z.iso.datetime(),
  /** First and last GTID in the range, per domain (gtid_binlog_pos format); null when none. */
  gtidFirst: z.string().nullable(),
  gtidLast: z.string().nullable(),
  /** Transactions (GTID event groups) that start in the range. */
  transactions: z.number().int().nonnegative(),
  /** The server that wrote the file (its format description event's server id). */
  serverId: z.number().int().nonnegative(),
  /** When the server created the file (its format description event's timestamp). */
  fileCreatedAt: z.iso.datetime(),
  /** The range ends with a rotate event: the server continues in `nextFile`. */
  nextFile: binlogName.nullable(),
  /**
   * First segment of a file only: the capture came here having archived `file` whole up to `end`
   * (null: it did not, e.g. it started here or jumped here after a purge). Absent in segments
   * written before this field existed.
   */
  follows: z.object({ file: binlogName, end: z.number().int().nonnegative() }).nullable().optional(),
  object: z.object({
    key: z.string(),
    sizeBytes: z.number().int().nonnegative(),
    sha256: z.string().regex(/^[0-9a-f]{64}$/),
    compression: z.enum(['zstd', 'gzip', 'none']),
    rawSizeBytes: z.number().int().nonnegative(),
  }),
  capturedAt: z.iso.datetime(),
  agent: z.object({ version: z.string(), hostname: z.string() }),
});

export type SegmentManifest = z.infer<typeof segmentSchema>;

export interface SegmentRef {
  file: string;
  start: number;
  end: number;
  /** Key of the manifest. */
  key: string;
}

const pad = (n: number) => String(n).padStart(POS_DIGITS, '0');

export function binlogPrefix(database: string): string {
  return `${database}/binlog/`;
}

export function segmentBase(database: string, file: string, start: number, end: number): string {
  return `${binlogPrefix(database)}${file}/${pad(start)}-${pad(end)}`;
}

export function segmentManifestKey(database: string, file: string, start: number, end: number): string {
  return `${segmentBase(database, file, start, end)}.json`;
}

export function segmentDataKey(database: string, file: string, start: number, end: number, extension: string): string {
  return `${segmentBase(database, file, start, end)}.binlog${extension}`;
}

const SEGMENT_KEY = /^([^/]+)\/binlog\/([^/]+)\/(\d{12})-(\d{12})\.json$/;

/** A segment manifest key; undefined for any other key, and for one whose file part is not a binlog name. */
export function parseSegmentKey(key: string): (SegmentRef & { database: string }) | undefined {
  const m = SEGMENT_KEY.exec(key);
  if (!m || !isBinlogName(m[2] as string)) return undefined;
  return { database: m[1] as string, file: m[2] as string, start: Number(m[3]), end: Number(m[4]), key };
}

/** `mysql-bin.000042` → { base: 'mysql-bin', number: 42 }. */
export function splitBinlogName(file: string): { base: string; number: number } {
  const m = /^(.*)\.(\d+)$/.exec(file);
  if (!m) return { base: file, number: -1 };
  return { base: m[1] as string, number: Number(m[2]) };
}

export function compareFiles(a: string, b: string): number {
  const x = splitBinlogName(a);
  const y = splitBinlogName(b);
  if (x.base !== y.base) return x.base < y.base ? -1 : 1;
  return x.number - y.number;
}

export function compareSegments(a: SegmentRef, b: SegmentRef): number {
  return compareFiles(a.file, b.file) || a.start - b.start || a.end - b.end;
}

/**
 * Every committed segment of a database, in binlog order. A key shaped like a segment manifest
 * whose file part is not a binlog name is refused loudly: skipping it would hide a gap, using it
 * would let a name from the bucket reach the filesystem or argv.
 */
export async function listSegments(storage: StorageDriver, database: string): Promise<SegmentRef[]> {
  const refs: SegmentRef[] = [];
  for await (const object of storage.list(binlogPrefix(database))) {
    const parsed = parseSegmentKey(object.key);
    if (parsed && parsed.database === database) {
      refs.push({ file: parsed.file, start: parsed.start, end: parsed.end, key: parsed.key });
      continue;
    }
    const shaped = SEGMENT_KEY.exec(object.key);
    if (shaped && shaped[1] === database) throw new Error(`segment manifest ${object.key} is unreadable: ${describeBadName(shaped[2] as string)}`);
  }
  return refs.sort(compareSegments);
}

export async function readSegment(storage: StorageDriver, ref: SegmentRef): Promise<SegmentManifest> {
  const body = await text(await storage.get(ref.key));
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    throw new Error(`segment manifest ${ref.key} is not JSON: ${messageOf(err)}`);
  }
  const parsed = segmentSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`segment manifest ${ref.key} is invalid at ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'unknown'}`);
  }
  // The manifest must describe the range its key names: a copied or edited one would splice bytes.
  const m = parsed.data;
  if (m.file !== ref.file || m.start !== ref.start || m.end !== ref.end) {
    throw new Error(`segment manifest ${ref.key} is invalid: it describes ${m.file} ${m.start}–${m.end}, its key ${ref.file} ${ref.start}–${ref.end}`);
  }
  return m;
}

export async function commitSegment(storage: StorageDriver, manifest: SegmentManifest): Promise<void> {
  const key = segmentManifestKey(manifest.database, manifest.file, manifest.start, manifest.end);
  await storage.put(key, Readable.from([Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`)]), { contentType: 'application/json' });
}

export interface ArchiveGap {
  /** The last segment before the gap (undefined: the gap is at the archive's start). */
  after: SegmentRef;
  before: SegmentRef;
  reason: string;
}

/** A contiguous stretch of the archive: every byte from `first.start` to `last.end`, file after file. */
export interface ArchiveRun {
  segments: SegmentRef[];
}

/**
 * Splits the archive into contiguous runs. Within a file the next segment must start where the
 * previous ended; the next file must be the next number and start at 0 (the server continues in
 * the next file after a rotation, a restart or a crash). `factsOf` (optional) gives, per file, the
 * writing server (a different server is a gap) and where the capture came from when it started the
 * file: a capture that jumped past the end of the previous file (purged binlogs) leaves a gap even
 * between consecutive file numbers.
 */
export interface FileFacts {
  /** The server that wrote the file. */
  serverId?: number | undefined;
  /** From the file's first segment: what the capture had archived before it (see SegmentManifest.follows). */
  follows?: { file: string; end: number } | null | undefined;
}

export function findRuns(segments: readonly SegmentRef[], factsOf?: (file: string) => FileFacts | undefined): { runs: ArchiveRun[]; gaps: ArchiveGap[] } {
  const runs: ArchiveRun[] = [];
  const gaps: ArchiveGap[] = [];
  let current: SegmentRef[] = [];
  for (const segment of segments) {
    const previous = current.at(-1);
    const reason = previous ? gapBetween(previous, segment, factsOf) : undefined;
    if (previous && reason === undefined) {
      current.push(segment);
      continue;
    }
    if (previous && reason !== undefined) {
      gaps.push({ after: previous, before: segment, reason });
      runs.push({ segments: current });
    }
    current = [segment];
  }
  if (current.length > 0) runs.push({ segments: current });
  return { runs, gaps };
}

function gapBetween(a: SegmentRef, b: SegmentRef, factsOf?: (file: string) => FileFacts | undefined): string | undefined {
  if (a.file === b.file) {
    if (b.start === a.end) return undefined;
    if (b.start < a.end) return `segments of ${a.file} overlap (${a.start}–${a.end} and ${b.start}–${b.end})`;
    return `bytes ${a.end}–${b.start} of ${a.file} are missing`;
  }
  const x = splitBinlogName(a.file);
  const y = splitBinlogName(b.file);
  if (x.base !== y.base) return `the binlog base name changed from ${x.base} to ${y.base}`;
  if (y.number !== x.number + 1) return `binlog files between ${a.file} and ${b.file} are missing (purged before they were captured?)`;
  if (b.start !== 0) return `the beginning of ${b.file} (bytes 0–${b.start}) is missing`;
  const factsA = factsOf?.(a.file);
  const factsB = factsOf?.(b.file);
  if (factsA?.serverId !== undefined && factsB?.serverId !== undefined && factsA.serverId !== factsB.serverId) {
    return `${b.file} was written by server id ${factsB.serverId}, ${a.file} by server id ${factsA.serverId}: a different server`;
  }
  const follows = factsB?.follows;
  if (follows === null) return `the capture went on at ${b.file} without the end of ${a.file} (archived up to ${a.end}; purged before it was captured?)`;
  if (follows && (follows.file !== a.file || follows.end !== a.end)) return `the capture left ${follows.file} at ${follows.end}, but the archive holds ${a.file} up to ${a.end}`;
  return undefined;
}
