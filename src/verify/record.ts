import { z } from 'zod';
import { backupPrefix, parseBackupKey } from '../catalog/keys.ts';
import { binlogPrefix } from '../binlog/segments.ts';
import { VERIFY_DEPTHS, type VerifyDepth, type VerifyOutcome } from './types.ts';

/**
 * The verification record (docs/FORMAT.md): what one `agent verify` run found about one backup,
 * stored in the backup's own folder, beside its manifest:
 *
 *   <database>/backups/<backup-id>/verify/<YYYYMMDDTHHMMSS.mmmZ>-<depth>-<ok|failed>.json
 *   <database>/binlog/verify/<YYYYMMDDTHHMMSS.mmmZ>-<depth>-<ok|failed>.json   (the binlog archive)
 *
 * Why there, and why the outcome is in the key:
 * - `agent list` already walks every key of the backup folders (catalog/listing.ts): it sees the
 *   records in that listing and reads the depth, time and result from their keys, without one
 *   more request per backup (issue 11 cares about list cost on big catalogs).
 * - A new key per run, never overwritten: each record is immutable like a manifest, so two
 *   verifiers never race on one object and a cache never holds a stale one. After a record is
 *   written, the older records of the same depth of that backup are deleted: one record per depth
 *   stays, so a weekly `restore` proof is not hidden by the daily `archive` check that follows it.
 * - It lives and dies with its backup: prune deletes the folder's records after the manifest and
 *   data; one whose manifest is gone is an orphan in a backup folder, which prune's orphan sweep
 *   removes after `prune.orphan_grace`, as it does data without a manifest.
 * - Its name is not `manifest.json`, so no reader takes it for a backup; the manifest cache and
 *   the backup's own objects are untouched.
 */

export const RECORD_FORMAT = 'backup-agent/verification';
export const RECORD_VERSION = 1;
export const RECORD_FOLDER = 'verify/';
/** What `backupId` says in the record of a binlog archive. */
export const BINLOG_ARCHIVE_ID = 'binlog';

export const recordSchema = z.object({
  format: z.literal(RECORD_FORMAT),
  version: z.literal(RECORD_VERSION),
  database: z.string(),
  backupId: z.string(),
  depth: z.enum(['objects', 'archive', 'restore']),
  ok: z.boolean(),
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime(),
  problems: z.array(z.object({ backupId: z.string(), key: z.string().optional(), message: z.string() })),
  notes: z.array(z.string()).default([]),
  agent: z.object({ version: z.string(), hostname: z.string() }),
});

export type VerificationRecord = z.infer<typeof recordSchema>;

/** What a record's key says: enough for a listing column, without reading it. */
export interface RecordSummary {
  key: string;
  depth: VerifyDepth;
  ok: boolean;
  /** When the verification finished (ISO 8601, UTC, milliseconds). */
  at: string;
}

/** The folder of the records of backup `id` in the layout of manifest version `version`. */
export function recordFolder(database: string, id: string, version: number): string {
  return id === BINLOG_ARCHIVE_ID ? `${binlogPrefix(database)}${RECORD_FOLDER}` : `${backupPrefix(database, id, version)}${RECORD_FOLDER}`;
}

const stamp = (iso: string) => iso.replace(/[-:]/g, '');

/** The key of `outcome`'s record (backups: in the folder of layout `version`). */
export function recordKey(outcome: Pick<VerifyOutcome, 'database' | 'backupId' | 'depth' | 'ok' | 'finishedAt'>, version: number): string {
  return `${recordFolder(outcome.database, outcome.backupId, version)}${stamp(outcome.finishedAt)}-${outcome.depth}-${outcome.ok ? 'ok' : 'failed'}.json`;
}

const NAME = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})\.(\d{3})Z-(objects|archive|restore)-(ok|failed)\.json$/;

/** The summary in a record's file name (the part after `verify/`); undefined for any other name. */
export function parseRecordName(key: string, name: string): RecordSummary | undefined {
  const m = NAME.exec(name);
  if (!m) return undefined;
  const at = `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`;
  if (Number.isNaN(Date.parse(at))) return undefined;
  return { key, depth: m[8] as VerifyDepth, ok: m[9] === 'ok', at };
}

/** A record key inside a backup folder (either layout): its database, backup and summary; undefined for any other key. */
export function parseRecordKey(key: string): (RecordSummary & { database: string; backupId: string }) | undefined {
  const backup = parseBackupKey(key);
  if (backup) {
    if (!backup.name.startsWith(RECORD_FOLDER)) return undefined;
    const summary = parseRecordName(key, backup.name.slice(RECORD_FOLDER.length));
    return summary && { ...summary, database: backup.database, backupId: backup.id };
  }
  const m = /^([^/]+)\/binlog\/verify\/([^/]+)$/.exec(key);
  const summary = m ? parseRecordName(key, m[2] as string) : undefined;
  return summary && m ? { ...summary, database: m[1] as string, backupId: BINLOG_ARCHIVE_ID } : undefined;
}

/** Pure: the newest record of each backup among `keys` (by finish time; on a tie the deeper depth). */
export function newestRecords(keys: Iterable<string>): Map<string, RecordSummary> {
  const newest = new Map<string, RecordSummary>();
  for (const key of keys) {
    const parsed = parseRecordKey(key);
    if (!parsed) continue;
    const { database: _, backupId, ...summary } = parsed;
    const before = newest.get(backupId);
    if (!before || summary.at > before.at || (summary.at === before.at && VERIFY_DEPTHS.indexOf(summary.depth) > VERIFY_DEPTHS.indexOf(before.depth))) newest.set(backupId, summary);
  }
  return newest;
}

/**
 * Pure: the backups among `keys` that passed a verification at `depth` or deeper (an `ok` record);
 * a daemon's `backups: new` schedule verifies the others. A failed record does not count: that
 * backup is verified again, and fails loudly again, until it passes or is pruned.
 */
export function passedAtLeast(keys: Iterable<string>, depth: VerifyDepth): Set<string> {
  const passed = new Set<string>();
  for (const key of keys) {
    const parsed = parseRecordKey(key);
    if (parsed?.ok && VERIFY_DEPTHS.indexOf(parsed.depth) >= VERIFY_DEPTHS.indexOf(depth)) passed.add(parsed.backupId);
  }
  return passed;
}

/**
 * Pure: per database, the newest passed verification at each depth among `keys` (its time and
 * backup): what a daemon seeds its last-verified metric and status with at start-up, so both tell
 * the truth before its own first verify run.
 */
export function newestPassedByDepth(keys: Iterable<string>): Map<string, Map<VerifyDepth, { at: string; backupId: string }>> {
  const found = new Map<string, Map<VerifyDepth, { at: string; backupId: string }>>();
  for (const key of keys) {
    const parsed = parseRecordKey(key);
    if (!parsed?.ok) continue;
    let byDepth = found.get(parsed.database);
    if (!byDepth) found.set(parsed.database, (byDepth = new Map()));
    const before = byDepth.get(parsed.depth);
    if (!before || parsed.at > before.at) byDepth.set(parsed.depth, { at: parsed.at, backupId: parsed.backupId });
  }
  return found;
}

/** Pure: the records among `keys` that a new record `written` makes redundant: same backup, same depth, older. */
export function supersededRecords(keys: Iterable<string>, written: string): string[] {
  const mine = parseRecordKey(written);
  if (!mine) return [];
  const folder = written.slice(0, written.lastIndexOf('/') + 1);
  return [...keys].filter((k) => {
    if (k === written || !k.startsWith(folder)) return false;
    const other = parseRecordKey(k);
    return other !== undefined && other.depth === mine.depth && other.at <= mine.at;
  });
}

/** Pure: the VERIFIED cell of `agent list`: `archive 2026-12-01 10:00`, `FAILED archive …`, or `-`. */
export function verifiedCell(summary: RecordSummary | undefined, formatTime: (iso: string) => string): string {
  if (!summary) return '-';
  return `${summary.ok ? '' : 'FAILED '}${summary.depth} ${formatTime(summary.at)}`;
}

/** Pure: the record of `outcome`. */
export function buildRecord(outcome: VerifyOutcome, notes: readonly string[], agent: { version: string; hostname: string }): VerificationRecord {
  return {
    format: RECORD_FORMAT,
    version: RECORD_VERSION,
    database: outcome.database,
    backupId: outcome.backupId,
    depth: outcome.depth,
    ok: outcome.ok,
    startedAt: outcome.startedAt,
    finishedAt: outcome.finishedAt,
    problems: outcome.problems.map((p) => ({ backupId: p.backupId, ...(p.key === undefined ? {} : { key: p.key }), message: p.message })),
    notes: [...notes],
    agent: { ...agent },
  };
}

export function serializeRecord(record: VerificationRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

export function parseRecord(text: string, key: string): VerificationRecord {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`verification record ${key} is not JSON: ${(err as Error).message}`);
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`verification record ${key} is invalid at ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'unknown'}`);
  }
  return parsed.data;
}
