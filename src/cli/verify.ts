import { findBackup } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf, usageError } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { storeRecord } from '../verify/record-store.ts';
import type { VerifyDepth } from '../verify/types.ts';
import { verifyBackup, type VerifyReport } from '../verify/verify-backup.ts';
import { verifyBinlogArchive } from '../verify/verify-binlog.ts';
import { chainFor, selectForVerify, type VerifySelection } from '../verify/verify-entry.ts';
import { formatBytes } from '../ui/format.ts';
import { out, type CommandContext, type StoredDatabase } from './context.ts';
import { archiveSource, fromFlags, type FromCliOptions } from './from-location.ts';

export interface VerifyCliOptions extends FromCliOptions {
  database?: string;
  backup?: string;
  all?: boolean;
  latest?: boolean;
  binlog?: boolean;
  depth?: VerifyDepth;
  replayBinlog?: boolean;
  identity?: string;
  passphraseFile?: string;
  json?: boolean;
}

/** The default depth: the content is proven whole in one streamed read, with no server needed. */
export const DEFAULT_DEPTH: VerifyDepth = 'archive';

type Selection = { kind: 'backup'; id: string } | { kind: 'all' } | { kind: 'latest' } | { kind: 'none' };

/** Pure: which backups the flags select; a usage error naming the flags that clash. */
export function selection(options: Pick<VerifyCliOptions, 'backup' | 'all' | 'latest' | 'binlog'>): Selection {
  const given = [options.backup !== undefined ? '--backup' : '', options.all ? '--all' : '', options.latest ? '--latest' : ''].filter(Boolean);
  if (given.length > 1) throw usageError(`${given.join(' and ')}: choose one`, '--backup ID verifies one backup, --all every backup, --latest (the default) the newest of each entry');
  if (options.backup !== undefined) return { kind: 'backup', id: options.backup };
  if (options.all) return { kind: 'all' };
  if (options.latest) return { kind: 'latest' };
  // --binlog alone: the archive only.
  return options.binlog ? { kind: 'none' } : { kind: 'latest' };
}

/** One line of the text output for a report. */
export function reportLine(r: VerifyReport): string {
  const what = r.backupId === 'binlog' ? `${r.database} binlog archive` : `${r.database}/${r.backupId}`;
  const size = `${r.objects} object${r.objects === 1 ? '' : 's'}, ${formatBytes(r.bytes)}`;
  return `${r.ok ? 'verified' : 'FAILED  '} ${what} at depth ${r.depth} (${size})`;
}

/** The --json shape of a report. */
export function reportJson(r: VerifyReport, record: string | undefined) {
  return { ...r, record: record ?? null };
}

interface Target {
  stored: StoredDatabase;
  config: DatabaseConfig | undefined;
}

/** `agent verify`: prove backups (and binlog archives) are whole, at a depth; records the result beside each backup. */
export async function verify(ctx: CommandContext, options: VerifyCliOptions): Promise<void> {
  const depth = options.depth ?? DEFAULT_DEPTH;
  const chosen = selection(options);
  const from = fromFlags(options);
  if (options.replayBinlog && depth !== 'restore') throw usageError(`--replay-binlog: the binlog is replayed only by a restore; add --depth restore (here --depth ${depth})`);
  if (from && depth === 'restore') throw usageError('--depth restore: needs a configured database entry (the restore test uses its tools); not available with --from', 'drop --from and name the entry with --database, or use --depth archive');
  let targets: Target[];
  if (from) {
    targets = [{ stored: await archiveSource(ctx, from, options.database), config: undefined }];
  } else if (chosen.kind === 'backup') {
    const entry = ctx.singleDatabase(options.database);
    targets = [{ stored: entry, config: entry }];
  } else {
    targets = ctx.databases(options.database === undefined ? undefined : [options.database]).map((d) => ({ stored: d, config: d }));
  }
  const reports: { report: VerifyReport; record: string | undefined }[] = [];
  const failures: string[] = [];
  const errors: unknown[] = [];
  const say = (line: string) => {
    if (!options.json) out(line);
  };
  for (const target of targets) {
    if (ctx.signal.aborted) throw new AgentError('internal', `verify cancelled: ${messageOf(ctx.signal.reason)}`);
    const storage = await ctx.storage(target.stored);
    const name = target.stored.name;
    const decryption = {
      agePath: ctx.config.tools.age,
      identityFile: options.identity ?? target.config?.encryption?.identityFile,
      passphraseFile: options.passphraseFile ?? target.config?.encryption?.passphrase?.file,
    };
    const run = async (work: () => Promise<VerifyReport>, layout: number, what: string) => {
      let report: VerifyReport;
      try {
        report = await work();
      } catch (err) {
        // The environment failed (a tool, the store, the disk), not the backup: reported, no record written.
        if (ctx.signal.aborted) throw err;
        process.stderr.write(`error: ${name}/${what}: verify: ${messageOf(err)}\n`);
        if (err instanceof AgentError && err.hint) process.stderr.write(`hint: ${err.hint}\n`);
        errors.push(err);
        return;
      }
      let record: string | undefined;
      // With --from the store may be another agent's, read with read-only credentials: no record.
      if (!from) {
        try {
          record = await storeRecord(storage, report, layout, ctx.signal);
        } catch (err) {
          failures.push(`${name}/${report.backupId}: verified, but the verification record could not be written to ${storage.location}: ${messageOf(err)}`);
        }
      }
      reports.push({ report, record });
      say(reportLine(report));
      for (const note of report.notes) process.stderr.write(`note: ${name}/${report.backupId}: ${note}\n`);
      for (const p of report.problems) {
        const line = `${name}/${p.backupId}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
        process.stderr.write(`error: ${line}\n`);
        failures.push(line);
      }
    };
    const backups = chosen.kind === 'none' ? [] : await selectBackups(ctx, target, storage, chosen, failures);
    for (const { manifest, chain } of backups) {
      await run(() => verifyBackup({ storage, database: target.config, manifest, chain, depth, replayBinlog: options.replayBinlog ?? false, decryption, config: ctx.config, logger: ctx.logger, signal: ctx.signal }), manifest.version, manifest.id);
    }
    if (options.binlog) await run(() => verifyBinlogArchive({ storage, database: name, depth, decryption, logger: ctx.logger, signal: ctx.signal }), 0, 'binlog');
    if (backups.length === 0 && !options.binlog && chosen.kind !== 'none') process.stderr.write(`note: ${name}: no backups to verify\n`);
  }
  if (options.json) out(JSON.stringify(reports.map((r) => reportJson(r.report, r.record)), null, 2));
  if (failures.length > 0) {
    throw new AgentError('integrity', `${failures.length} problem${failures.length === 1 ? '' : 's'} found by verify`, { reported: true });
  }
  if (errors.length > 0) {
    // Nothing found wrong with a backup, but some could not be verified: the kind of the first error sets the exit code.
    const [first] = errors;
    throw new AgentError(first instanceof AgentError ? first.kind : 'internal', `${errors.length} verification${errors.length === 1 ? '' : 's'} could not be run`, { reported: true });
  }
}

/** The manifests the selection names in one entry, each with its chain; unreadable ones and broken chains become failures. */
async function selectBackups(ctx: CommandContext, target: Target, storage: StorageDriver, chosen: Selection, failures: string[]): Promise<{ manifest: Manifest; chain: Manifest[] }[]> {
  const name = target.stored.name;
  const listOptions = await ctx.catalog(target.stored);
  const listing = await listBackups(storage, name, listOptions);
  let selected: VerifySelection;
  if (chosen.kind === 'backup') {
    const found = chainFor(await findBackup(storage, name, chosen.id, undefined, listOptions), listing);
    selected = 'chain' in found ? { chosen: [found], failures: [] } : { chosen: [], failures: [found] };
  } else {
    selected = selectForVerify(listing, listing.objects.keys(), { which: chosen.kind === 'all' ? 'all' : 'latest' });
  }
  for (const f of selected.failures) {
    const line = `${name}/${f.backupId}: ${f.message}`;
    process.stderr.write(`error: ${line}\n`);
    failures.push(line);
  }
  return selected.chosen;
}
