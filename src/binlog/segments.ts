import { text } from 'node:stream/consumers';
import { z } from 'zod';
import { encryptionSchema } from '../catalog/manifest.ts';
import { messageOf } from '../errors.ts';
import type { ObjectInfo, StorageDriver } from '../storage/driver.ts';
import { bufferBody } from '../storage/buffer-body.ts';
import { chooseCover } from './cover.ts';
import { describeBadName, isBinlogName } from './names.ts';

/**
 * The binlog archive of a database: segments, each a byte range [start, end) of one binlog file,
 * cut on event boundaries. Data first, then the segment's manifest, which commits it:
 *
 *   <database>/binlog/<file>/<start>-<end>.binlog[.zst][.age]   the bytes, compressed (then age-encrypted)
 *   <database>/binlog/<file>/<start>-<end>.json           the manifest (commit marker)
 *
 * Compaction (compaction.ts) merges contiguous segments of one file into level-n objects whose
 * key names their level and the capture window they cover (window start, UTC):
 *
 *   <database>/binlog/<file>/<start>-<end>.L<n>-<YYYYMMDDTHHMMSSZ>.binlog[.zst] / .json
 *
 * A crash of compaction can leave overlapping ranges: `listSegments` returns the cover (cover.ts),
 * `listSegmentObjects` everything.
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
/** Version of a merged (level ≥ 1) segment's manifest; level-0 segments stay at version 1. */
export const MERGED_SEGMENT_VERSION = 2;
/**
 * Version of an encrypted (level-0) segment's manifest: `encryption` is set. An agent that knows
 * only versions 1 and 2 refuses it rather than feed age ciphertext to a decompressor.
 */
export const ENCRYPTED_SEGMENT_VERSION = 3;
const POS_DIGITS = 12;

export const segmentSchema = z.object({
  format: z.literal(SEGMENT_FORMAT),
  version: z.union([z.literal(SEGMENT_VERSION), z.literal(MERGED_SEGMENT_VERSION), z.literal(ENCRYPTED_SEGMENT_VERSION)]),
  database: z.string(),
  /** Compaction level: absent or 0 for a captured segment, n ≥ 1 for a merged one (version 2). */
  level: z.number().int().min(0).max(9).optional(),
  /** Merged only: start of the capture window it covers, and how many objects it was merged from. */
  window: z.iso.datetime().optional(),
  sources: z.number().int().positive().optional(),
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
    /** Merged only: SHA-256 of the uncompressed bytes (the concatenation of its sources). */
    rawSha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  }),
  /** Set (version 3): the object is age-encrypted after compression, to these public recipients. */
  encryption: encryptionSchema.optional(),
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
  /** Compaction level (absent: 0, a captured segment). */
  level?: number;
  /** Merged only: start of the capture window it covers (ms since the epoch). */
  window?: number;
}

/** A level-n window start in a key: 20261130T231000Z. */
export function windowStamp(at: number): string {
  return new Date(at).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

function parseWindowStamp(stamp: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(stamp);
  return m ? Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])) : Number.NaN;
}

const pad = (n: number) => String(n).padStart(POS_DIGITS, '0');

export function binlogPrefix(database: string): string {
  return `${database}/binlog/`;
}

/** Where a merged segment sits: its level (≥ 1) and the start of its capture window. */
export interface MergedPlace {
  level: number;
  window: number;
}

export function segmentBase(database: string, file: string, start: number, end: number, merged?: MergedPlace): string {
  const suffix = merged ? `.L${merged.level}-${windowStamp(merged.window)}` : '';
  return `${binlogPrefix(database)}${file}/${pad(start)}-${pad(end)}${suffix}`;
}

export function segmentManifestKey(database: string, file: string, start: number, end: number, merged?: MergedPlace): string {
  return `${segmentBase(database, file, start, end, merged)}.json`;
}

export function segmentDataKey(database: string, file: string, start: number, end: number, extension: string, merged?: MergedPlace): string {
  return `${segmentBase(database, file, start, end, merged)}.binlog${extension}`;
}

const SEGMENT_KEY = /^([^/]+)\/binlog\/([^/]+)\/(\d{12})-(\d{12})(?:\.L([1-9])-(\d{8}T\d{6}Z))?\.json$/;
/** A segment's data key (any level): group 1 is its base, shared with the manifest key. */
export const SEGMENT_DATA_KEY = /^(.*\/binlog\/[^/]+\/\d{12}-\d{12}(?:\.L[1-9]-\d{8}T\d{6}Z)?)\.binlog((?:\.[a-z]+){0,2})$/;

/** A segment manifest key (any level); undefined for any other key, and for one whose file part is not a binlog name. */
export function parseSegmentKey(key: string): (SegmentRef & { database: string }) | undefined {
  const m = SEGMENT_KEY.exec(key);
  if (!m || !isBinlogName(m[2] as string)) return undefined;
  const ref: SegmentRef & { database: string } = { database: m[1] as string, file: m[2] as string, start: Number(m[3]), end: Number(m[4]), key };
  if (m[5] !== undefined) {
    const window = parseWindowStamp(m[6] as string);
    if (Number.isNaN(window)) return undefined;
    ref.level = Number(m[5]);
    ref.window = window;
  }
  return ref;
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
  return compareFiles(a.file, b.file) || a.start - b.start || a.end - b.end || (a.level ?? 0) - (b.level ?? 0);
}

/** A listed segment manifest, with when the store last modified it (compaction windows of level 0). */
export interface ListedSegment extends SegmentRef {
  modifiedAt: Date;
}

/** Everything a listing of `<database>/binlog/` holds: every segment manifest (all levels, overlaps kept) and every other key. */
export interface SegmentListing {
  segments: ListedSegment[];
  others: ObjectInfo[];
}

/**
 * Every committed segment of a database at every level, overlaps included, in binlog order. A key
 * shaped like a segment manifest whose file part is not a binlog name is refused loudly: skipping
 * it would hide a gap, using it would let a name from the bucket reach the filesystem or argv.
 */
export async function listSegmentObjects(storage: StorageDriver, database: string, prefix = binlogPrefix(database)): Promise<SegmentListing> {
  const segments: ListedSegment[] = [];
  const others: ObjectInfo[] = [];
  for await (const object of storage.list(prefix)) {
    const parsed = parseSegmentKey(object.key);
    if (parsed && parsed.database === database) {
      const { database: _, ...ref } = parsed;
      segments.push({ ...ref, modifiedAt: object.modifiedAt });
      continue;
    }
    const shaped = SEGMENT_KEY.exec(object.key);
    if (shaped && shaped[1] === database) throw new Error(`segment manifest ${object.key} is unreadable: ${describeBadName(shaped[2] as string)}`);
    others.push(object);
  }
  return { segments: segments.sort(compareSegments), others };
}

/**
 * The segments a reader uses, in binlog order: one non-overlapping cover of the archive that
 * prefers the highest compaction level (see cover.ts), so an interrupted compaction never shows.
 */
export async function listSegments(storage: StorageDriver, database: string): Promise<SegmentRef[]> {
  return chooseCover((await listSegmentObjects(storage, database)).segments).cover;
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
  if (m.file !== ref.file || m.start !== ref.start || m.end !== ref.end || (m.level ?? 0) !== (ref.level ?? 0)) {
    const level = (m.level ?? 0) === (ref.level ?? 0) ? ['', ''] : [` level ${m.level ?? 0}`, ` level ${ref.level ?? 0}`];
    throw new Error(`segment manifest ${ref.key} is invalid: it describes ${m.file} ${m.start}–${m.end}${level[0]}, its key ${ref.file} ${ref.start}–${ref.end}${level[1]}`);
  }
  return m;
}

export async function commitSegment(storage: StorageDriver, manifest: SegmentManifest): Promise<void> {
  const merged = manifest.level && manifest.window ? { level: manifest.level, window: Date.parse(manifest.window) } : undefined;
  const key = segmentManifestKey(manifest.database, manifest.file, manifest.start, manifest.end, merged);
  await storage.put(key, bufferBody(`${JSON.stringify(manifest, null, 2)}\n`), { contentType: 'application/json' });
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
