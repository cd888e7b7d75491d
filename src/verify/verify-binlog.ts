import type { Logger } from 'pino';
import { chooseCover } from '../binlog/cover.ts';
import { findRuns, listSegmentObjects, readSegment, type ArchiveGap, type FileFacts, type SegmentManifest, type SegmentRef } from '../binlog/segments.ts';
import { mapLimit } from '../catalog/map-limit.ts';
import { messageOf } from '../errors.ts';
import { describeRecipients, decryptStages, type Decryption } from '../restore/decrypt.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { BinlogSegmentScanner } from './binlog-segment.ts';
import { readObject } from './read-object.ts';
import { BINLOG_ARCHIVE_ID } from './record.ts';
import type { VerifyDepth, VerifyProblem } from './types.ts';
import type { VerifyReport } from './verify-backup.ts';

/**
 * Verifies the binlog archive of one database: every segment of the readers' cover (cover.ts)
 * has its data object listed in the store with the size and SHA-256 its segment manifest records
 * (objects), and its content decrypts, decompresses and is a clean sequence of events with valid
 * checksums and continuous positions (archive). The run/gap report is then computed again from
 * the segments whose objects passed: a gap the manifests hide (their data gone or damaged) is a
 * problem; a gap the manifests already show is reported as a note (`agent binlog list` shows it).
 */

export interface BinlogVerifyReport extends VerifyReport {
  segments: number;
  /** The runs and gaps computed from the objects that passed. */
  runs: { from: string; to: string; segments: number }[];
  gaps: string[];
}

const describeGap = (g: ArchiveGap) => `after ${g.after.file}:${g.after.end}, before ${g.before.file}:${g.before.start}: ${g.reason}`;

export async function verifyBinlogArchive(input: {
  storage: StorageDriver;
  database: string;
  depth: VerifyDepth;
  decryption: Decryption;
  logger: Logger;
  signal: AbortSignal;
  now?: () => Date;
}): Promise<BinlogVerifyReport> {
  const now = input.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const problems: VerifyProblem[] = [];
  const notes: string[] = [];
  const problem = (message: string, key?: string) => problems.push({ backupId: BINLOG_ARCHIVE_ID, ...(key === undefined ? {} : { key }), message });
  const listing = await listSegmentObjects(input.storage, input.database);
  const listed = new Map(listing.others.map((o) => [o.key, o]));
  const cover = chooseCover(listing.segments).cover;
  const manifests = await mapLimit(cover, 16, async (ref) => {
    try {
      return await readSegment(input.storage, ref);
    } catch (err) {
      problem(`segment manifest cannot be read: ${messageOf(err)}`, ref.key);
      return undefined;
    }
  });
  const facts = new Map<string, FileFacts>();
  cover.forEach((ref, i) => {
    const m = manifests[i];
    if (m && !facts.has(ref.file)) facts.set(ref.file, { serverId: m.serverId, follows: ref.start === 0 ? m.follows : undefined });
  });
  const before = findRuns(cover, (file) => facts.get(file));

  let depth: VerifyDepth = input.depth === 'restore' ? 'archive' : input.depth;
  if (input.depth === 'restore') notes.push('a binlog archive has no restore depth of its own (a restore test replays it from a backup): verified at depth archive');
  const encrypted = manifests.find((m) => m?.encryption)?.encryption;
  if (depth === 'archive' && encrypted && input.decryption.identityFile === undefined) {
    notes.push(`the archive depth could only check the stored bytes: the archive is encrypted with age to ${describeRecipients(encrypted)} and no identity is configured (encryption.identity_file or --identity); verified at depth objects`);
    depth = 'objects';
  }

  const good: SegmentRef[] = [];
  const checksumAlgOf = new Map<string, number>();
  let bytes = 0;
  for (const [i, ref] of cover.entries()) {
    const m = manifests[i] as SegmentManifest | undefined;
    if (!m) continue;
    const key = m.object.key;
    const before = problems.length;
    const info = listed.get(key);
    if (!info) {
      problem(`the segment's data object is not in the store (its manifest ${ref.key} names it)`, key);
      continue;
    }
    if (info.size !== m.object.sizeBytes) problem(`the store lists ${info.size} bytes, the segment manifest says ${m.object.sizeBytes}`, key);
    let scanner: BinlogSegmentScanner | undefined;
    let decrypt: Awaited<ReturnType<typeof decryptStages>> = [];
    if (depth === 'archive') {
      scanner = new BinlogSegmentScanner(ref.start, ref.end, checksumAlgOf.get(ref.file) ?? 1);
      try {
        decrypt = await decryptStages(m.encryption, input.decryption, `verify binlog segment ${key}`, input.signal);
      } catch (err) {
        problem(messageOf(err), key);
        continue;
      }
    }
    const reading = await readObject(input.storage, m.object, scanner ? { decrypt, sink: scanner } : undefined, input.signal);
    bytes += m.object.sizeBytes;
    for (const message of reading.stored) if (!(info.size !== m.object.sizeBytes && message.startsWith('size mismatch'))) problem(message, key);
    if (reading.decode !== undefined) problem(`the segment is not a clean run of binlog events: ${reading.decode}`, key);
    else if (scanner && reading.decoded) {
      checksumAlgOf.set(ref.file, scanner.checksumAlg);
      if (scanner.bytes !== m.object.rawSizeBytes) problem(`it decompresses to ${scanner.bytes} bytes, the segment manifest says ${m.object.rawSizeBytes}`, key);
    }
    if (problems.length === before) good.push(ref);
  }
  const after = findRuns(good, (file) => facts.get(file));
  const known = new Set(before.gaps.map(describeGap));
  for (const gap of after.gaps) {
    if (!known.has(describeGap(gap))) problem(`the archive's objects leave a gap the segment manifests do not show: ${describeGap(gap)}`);
  }
  for (const gap of before.gaps) notes.push(`known gap (agent binlog list shows it): ${describeGap(gap)}`);
  input.logger.child({ database: input.database, depth }).info({ segments: cover.length, problems: problems.length }, 'binlog archive verified');
  return {
    database: input.database,
    backupId: BINLOG_ARCHIVE_ID,
    depth,
    requestedDepth: input.depth,
    ok: problems.length === 0,
    problems,
    notes,
    objects: cover.length,
    bytes,
    segments: cover.length,
    runs: after.runs.map((r) => {
      const first = r.segments[0] as SegmentRef;
      const last = r.segments.at(-1) as SegmentRef;
      return { from: `${first.file}:${first.start}`, to: `${last.file}:${last.end}`, segments: r.segments.length };
    }),
    gaps: after.gaps.map(describeGap),
    startedAt,
    finishedAt: now().toISOString(),
  };
}
