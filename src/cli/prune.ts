import type { Manifest } from '../catalog/manifest.ts';
import { familyOf, prune as pruneDatabase, type PruneOutcome, type PrunePlan } from '../retention/prune.ts';
import type { Family } from '../retention/policy.ts';
import { formatBytes, formatTime, renderTable } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';
import { failuresError, forEachDatabase } from './each-database.ts';

export interface PruneCliOptions {
  database?: string;
  dryRun?: boolean;
  json?: boolean;
}

const brief = (m: Manifest) => ({ id: m.id, trigger: m.trigger, type: m.type, family: familyOf(m.type), createdAt: m.startedAt, sizeBytes: m.sizeBytes });

/** What a prune removed (or, in a dry run, would remove), by kind. Unfinished uploads are only known when they are removed. */
export function removedCounts(plan: PrunePlan, outcome: PruneOutcome | undefined) {
  if (!outcome) return { backups: plan.remove.length, binlogFiles: plan.binlog.remove.length, orphans: plan.orphans.length, uploads: 0 };
  return { backups: outcome.removed.length, binlogFiles: outcome.binlogFilesRemoved.length, orphans: outcome.orphansRemoved.length, uploads: outcome.uploadsAborted.length };
}

/** The stable JSON shape of `agent prune --json`, one entry per database. */
export function pruneReport(plan: PrunePlan, outcome: PruneOutcome | undefined, dryRun: boolean) {
  return {
    database: plan.database,
    dryRun,
    keep: plan.keep.map((k) => ({ ...brief(k.manifest), reasons: k.reasons })),
    remove: plan.remove.map(brief),
    families: plan.families.map((f) => ({ family: f.family, keep: f.keep.map((k) => k.manifest.id), remove: f.remove.map((m) => m.id) })),
    unrestorable: plan.unrestorable.map((u) => ({ ...brief(u.manifest), problem: u.problem })),
    orphans: plan.orphans.map((o) => ({ key: o.key, sizeBytes: o.size, modifiedAt: o.modifiedAt.toISOString() })),
    removed: outcome?.removed ?? [],
    orphansRemoved: outcome?.orphansRemoved ?? [],
    uploadsAborted: outcome?.uploadsAborted ?? [],
    binlog: { keepFrom: plan.binlog.keepFrom, reason: plan.binlog.reason, remove: plan.binlog.remove, removed: outcome?.binlogFilesRemoved ?? [] },
    /** Counts of what was removed (dry run: would be), by kind. */
    summary: removedCounts(plan, outcome),
  };
}

/** `agent prune`: apply each database's retention policy; every kept backup says why. */
export async function prune(ctx: CommandContext, options: PruneCliOptions): Promise<void> {
  const databases = ctx.databases(options.database === undefined ? undefined : [options.database]);
  const dryRun = options.dryRun ?? false;
  // A prune writes to the store anyway: its listing keeps the manifest pack fresh (a dry run only reads it).
  if (!dryRun) ctx.packMode = 'refresh';
  const reports: ReturnType<typeof pruneReport>[] = [];
  const failed = await forEachDatabase(databases, ctx.signal, async (database) => {
    const storage = await ctx.storage(database);
    const { plan, outcome } = await pruneDatabase(storage, database, {
      timeZone: ctx.config.timezone,
      orphanGraceMs: ctx.config.prune.orphan_grace,
      lockTtlMs: ctx.config.prune.lock_ttl,
      dryRun,
      logger: ctx.logger,
      signal: ctx.signal,
      cache: (await ctx.catalog(database)).cache,
      pack: ctx.packMode,
    });
    reports.push(pruneReport(plan, outcome, dryRun));
    if (!options.json) printPlan(plan, outcome, dryRun, ctx.config.timezone);
  });
  if (options.json) out(JSON.stringify(reports, null, 2));
  // All locked: exit 3, so a caller can tell "busy, try later" from a failure.
  if (failed.length > 0) throw failuresError(failed, `prune failed for ${failed.map((f) => f.name).join(', ')}`, { reported: true });
}

const FAMILY_TITLE: Record<Family, string> = { logical: 'logical backups (dump)', physical: 'physical backups (full + incremental)' };

const count = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** "shop: keeping 4; removed 3 backups, 2 binlog files, 1 unfinished upload": every kind removed is counted. */
export function summaryLine(plan: PrunePlan, outcome: PruneOutcome | undefined, dryRun: boolean): string {
  const c = removedCounts(plan, outcome);
  const removed = [
    c.backups > 0 ? count(c.backups, 'backup') : '',
    c.binlogFiles > 0 ? count(c.binlogFiles, 'binlog file') : '',
    c.orphans > 0 ? count(c.orphans, 'orphaned object') : '',
    c.uploads > 0 ? count(c.uploads, 'unfinished upload') : '',
  ].filter(Boolean);
  const verb = dryRun ? 'would remove' : 'removed';
  const broken = plan.unrestorable.length > 0 ? ` (${plan.unrestorable.length} of them cannot be restored)` : '';
  return `${plan.database}: keeping ${count(plan.keep.length, 'backup')}${broken}; ${verb} ${removed.length > 0 ? removed.join(', ') : 'nothing'}${dryRun ? ' (dry run)' : ''}`;
}

function printPlan(plan: PrunePlan, outcome: PruneOutcome | undefined, dryRun: boolean, timeZone: string): void {
  const verb = dryRun ? 'would remove' : 'removed';
  out(summaryLine(plan, outcome, dryRun));
  const header = ['ACTION', 'ID', 'TYPE', 'TRIGGER', 'CREATED AT', 'SIZE', 'KEPT BECAUSE'];
  const row = (action: string, m: Manifest, why: string) => [action, m.id, m.type, m.trigger, formatTime(m.startedAt, timeZone), formatBytes(m.sizeBytes), why];
  for (const family of plan.families) {
    out(`${FAMILY_TITLE[family.family]}: keeping ${family.keep.length}, ${verb} ${family.remove.length}`);
    out(renderTable(header, [...family.keep.map((k) => row('keep', k.manifest, k.reasons.join(', '))), ...family.remove.map((m) => row('remove', m, ''))]));
  }
  if (plan.orphans.length > 0) {
    out(`orphaned objects: ${verb} ${plan.orphans.length}`);
    out(renderTable(['KEY', 'MODIFIED AT', 'SIZE', 'WHY'], plan.orphans.map((o) => [o.key, formatTime(o.modifiedAt, timeZone), formatBytes(o.size), 'no manifest (failed or abandoned upload)'])));
  }
  if (plan.binlog.keepFrom !== null || plan.binlog.remove.length > 0) {
    const files = plan.binlog.remove;
    out(
      `binlog: keeping ${plan.binlog.reason.replace(/^binlog /, '')}` +
        (files.length > 0 ? `; ${verb} ${files.reduce((n, f) => n + f.segments, 0)} segments of ${files.length} earlier file${files.length === 1 ? '' : 's'} (${files[0]?.file}${files.length > 1 ? ` … ${files.at(-1)?.file}` : ''})` : ''),
    );
  }
  out('');
}
