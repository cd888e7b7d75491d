import { isPassphraseRecord, type Manifest } from '../catalog/manifest.ts';
import { checkData, type DataState } from '../catalog/data-check.ts';
import { compareNewestFirst, listBackups, listDatabases, type UnreadableBackup } from '../catalog/listing.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { fromFlags, storageFromFlags, type FromCliOptions } from './from-location.ts';
import { Archive } from '../binlog/archive.ts';
import { backupPrefix } from '../catalog/keys.ts';
import { AgentError } from '../errors.ts';
import { describeRecipients } from '../restore/decrypt.ts';
import { formatBytes, formatTime, renderTable } from '../ui/format.ts';
import { writeJsonArray } from '../ui/json-array.ts';
import { out, type CommandContext, type StoredDatabase } from './context.ts';
import { newestRecords, verifiedCell, type RecordSummary } from '../verify/record.ts';
import { readRecord } from '../verify/record-store.ts';
import type { VerificationRecord } from '../verify/record.ts';

export interface ListCliOptions extends FromCliOptions {
  database?: string;
  json?: boolean;
}

/** `completed` when the data is there as the manifest says; `data missing` (absent or short) or `data unknown` (the store could not say) otherwise. */
export function listStatus(manifest: Manifest, data: DataState | undefined): string {
  if (data?.state === 'missing') return 'data missing';
  if (data?.state === 'unknown') return 'data unknown';
  return manifest.status;
}

/** The stable JSON shape of one backup in `agent list --json`. */
export function listEntry(manifest: Manifest, location: string, data?: DataState, verified?: ListedVerification) {
  return {
    id: manifest.id,
    database: manifest.database,
    type: manifest.type,
    trigger: manifest.trigger,
    status: listStatus(manifest, data),
    /** What is wrong with the data, when status is not `completed`; else null. */
    problem: data?.state === 'missing' ? data.problem : data?.state === 'unknown' ? data.error : null,
    createdAt: manifest.startedAt,
    completedAt: manifest.completedAt,
    sizeBytes: manifest.sizeBytes,
    rawSizeBytes: manifest.rawSizeBytes,
    compression: manifest.compression.algorithm,
    /** null: stored unencrypted; else age and the public recipients whose identities open it, or `passphrase: true` (scrypt). */
    encryption: manifest.encryption
      ? {
          format: manifest.encryption.format,
          recipients: manifest.encryption.recipients.flatMap((r) => (r.type === 'X25519' ? [r.recipient] : [])),
          passphrase: isPassphraseRecord(manifest.encryption),
        }
      : null,
    schemas: manifest.schemas,
    binlog: manifest.binlog,
    parent: manifest.physical?.parent ?? null,
    location: `${location}/${backupPrefix(manifest.database, manifest.id, manifest.version)}`,
    /** The newest verification record (agent verify), or null: depth, time, result; a failed one with its problems. */
    verified: verified ? { depth: verified.summary.depth, at: verified.summary.at, ok: verified.summary.ok, key: verified.summary.key, ...(verified.record ? { problems: verified.record.problems, notes: verified.record.notes, agent: verified.record.agent } : {}) } : null,
  };
}

/** A backup's newest verification: what its key says, and the record itself when it was read (a failed one, with --json). */
export interface ListedVerification {
  summary: RecordSummary;
  record?: VerificationRecord | undefined;
}

/** The configured entries to list, or the databases of the --from store (one with --database). */
async function listedDatabases(ctx: CommandContext, options: ListCliOptions): Promise<(StoredDatabase & { binlog?: DatabaseConfig['binlog'] })[]> {
  const from = fromFlags(options);
  if (!from) return ctx.databases(options.database === undefined ? undefined : [options.database]);
  const storage = storageFromFlags(from);
  if (options.database !== undefined) return [{ name: options.database, storage }];
  return (await listDatabases(await ctx.storage({ name: '', storage }))).map((name) => ({ name, storage }));
}

/** `agent list`: every backup of the configured databases, newest first. */
export async function list(ctx: CommandContext, options: ListCliOptions): Promise<void> {
  const databases = await listedDatabases(ctx, options);
  const rows: { manifest: Manifest; location: string; data: DataState | undefined; verified: ListedVerification | undefined }[] = [];
  const unreadable: UnreadableBackup[] = [];
  const archives: string[] = [];
  for (const database of databases) {
    const storage = await ctx.storage(database);
    // The manifest cache is read while the listing runs (listBackups takes the pending options).
    const listing = await listBackups(storage, database.name, ctx.catalog(database));
    // Judged from the listing (a stat only for what it did not show): a backup whose data is gone must not look restorable.
    const data = await checkData(storage, listing.backups, listing.objects);
    // Verification records sit in the backup folders the listing walked: their keys say depth, time and result.
    const records = newestRecords(listing.objects.keys());
    const verified = new Map<string, ListedVerification>();
    for (const [id, summary] of records) {
      // A failed record is read for its problems (--json only): a rare object, never one per backup.
      const record = options.json && !summary.ok
        ? await readRecord(storage, summary.key).catch((err: unknown) => {
            process.stderr.write(`warning: ${database.name}/${id}: verification record ${summary.key} cannot be read: ${(err as Error).message}\n`);
            return undefined;
          })
        : undefined;
      verified.set(id, { summary, record });
    }
    rows.push(...listing.backups.map((manifest) => ({ manifest, location: storage.location, data: data.get(manifest.id), verified: verified.get(manifest.id) })));
    unreadable.push(...listing.unreadable);
    // A --from store's databases say nothing of their binlog settings: their archive is summarised when it has segments.
    if ((database.binlog?.enabled ?? true) && !options.json) {
      const summary = await (await Archive.load(storage, database.name)).summarize(listing.backups);
      if (!database.binlog && summary.segments === 0) continue;
      const tz = ctx.config.timezone;
      archives.push(
        `${database.name}: binlog archive of ${summary.segments} segment${summary.segments === 1 ? '' : 's'}` +
          (summary.runs.length > 0 ? ` up to ${formatTime(summary.runs.at(-1)?.to.at ?? '', tz)}` : '') +
          `; last recoverable time: ${summary.lastRecoverableAt ? formatTime(summary.lastRecoverableAt, tz) : 'none'}` +
          (summary.gaps.length > 0 ? `; ${summary.gaps.length} gap${summary.gaps.length === 1 ? '' : 's'} (agent binlog list)` : ''),
      );
    }
  }
  rows.sort((a, b) => compareNewestFirst(a.manifest, b.manifest));

  if (options.json) {
    await writeJsonArray(process.stdout, rows, (r) => listEntry(r.manifest, r.location, r.data, r.verified));
  } else if (rows.length === 0 && unreadable.length === 0) {
    out(`no backups${options.database ? ` of ${options.database}` : ''}`);
  } else {
    const tz = ctx.config.timezone;
    out(
      renderTable(
        ['ID', 'DATABASE', 'TYPE', 'TRIGGER', 'CREATED AT', 'SIZE', 'STATUS', 'VERIFIED', 'PARENT', 'ENCRYPTED TO'],
        rows.map(({ manifest: m, data, verified }) => [
          m.id,
          m.database,
          m.type,
          m.trigger,
          formatTime(m.startedAt, tz),
          formatBytes(m.sizeBytes),
          listStatus(m, data),
          verifiedCell(verified?.summary, (iso) => formatTime(iso, tz)),
          m.physical?.parent ?? '-',
          m.encryption ? `age: ${describeRecipients(m.encryption)}` : '-',
        ]),
      ),
    );
  }
  if (archives.length > 0) {
    out('');
    for (const line of archives) out(line);
  }
  for (const bad of unreadable) {
    process.stderr.write(`warning: ${bad.database}/${bad.id}: unreadable manifest: ${bad.error}\n`);
  }
  const broken = rows.filter((r) => r.data && r.data.state !== 'present');
  for (const { manifest: m, data } of broken) {
    process.stderr.write(`warning: ${m.database}/${m.id}: ${data?.state === 'missing' ? `cannot be restored: ${data.problem}` : data?.state === 'unknown' ? `data not checked: ${data.error}` : ''}\n`);
  }
  const problems = [
    unreadable.length > 0 ? `${unreadable.length} manifest${unreadable.length > 1 ? 's' : ''} could not be read` : '',
    broken.length > 0 ? `${broken.length} backup${broken.length > 1 ? 's' : ''} with data missing or not checked` : '',
  ].filter(Boolean);
  if (problems.length > 0) throw new AgentError('integrity', problems.join('; '), { reported: true });
}
