import type { Manifest } from '../catalog/manifest.ts';
import { prune as pruneDatabase, type PruneOutcome, type PrunePlan } from '../retention/prune.ts';
import { formatBytes, formatTime, renderTable } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';
import { failuresError, forEachDatabase } from './each-database.ts';

export interface PruneCliOptions {
  database?: string;
  dryRun?: boolean;
  json?: boolean;
}

const brief = (m: Manifest) => ({ id: m.id, trigger: m.trigger, type: m.type, createdAt: m.startedAt, sizeBytes: m.sizeBytes });

/** The stable JSON shape of `agent prune --json`, one entry per database. */
export function pruneReport(plan: PrunePlan, outcome: PruneOutcome | undefined, dryRun: boolean) {
  return {
    database: plan.database,
    dryRun,
    keep: plan.keep.map((k) => ({ ...brief(k.manifest), reasons: k.reasons })),
    remove: plan.remove.map(brief),
    orphans: plan.orphans.map((o) => ({ key: o.key, sizeBytes: o.size, modifiedAt: o.modifiedAt.toISOString() })),
    removed: outcome?.removed ?? [],
    orphansRemoved: outcome?.orphansRemoved ?? [],
    uploadsAborted: outcome?.uploadsAborted ?? [],
    binlog: { keepFrom: plan.binlog.keepFrom, reason: plan.binlog.reason, remove: plan.binlog.remove, removed: outcome?.binlogFilesRemoved ?? [] },
  };
}

/** `agent prune`: apply each database's retention policy; every kept backup says why. */
export async function prune(ctx: CommandContext, options: PruneCliOptions): Promise<void> {
  const databases = ctx.databases(options.database === undefined ? undefined : [options.database]);
  const dryRun = options.dryRun ?? false;
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
    });
    reports.push(pruneReport(plan, outcome, dryRun));
    if (!options.json) printPlan(plan, dryRun, ctx.config.timezone);
  });
  if (options.json) out(JSON.stringify(reports, null, 2));
  // All locked: exit 3, so a caller can tell "busy, try later" from a failure.
  if (failed.length > 0) throw failuresError(failed, `prune failed for ${failed.map((f) => f.name).join(', ')}`, { reported: true });
}

function printPlan(plan: PrunePlan, dryRun: boolean, timeZone: string): void {
  const verb = dryRun ? 'would remove' : 'removed';
  out(`${plan.database}: keeping ${plan.keep.length}, ${verb} ${plan.remove.length}${plan.orphans.length ? ` and ${plan.orphans.length} orphaned object(s)` : ''}${dryRun ? ' (dry run)' : ''}`);
  const rows = [
    ...plan.keep.map((k) => ['keep', k.manifest.id, k.manifest.trigger, formatTime(k.manifest.startedAt, timeZone), formatBytes(k.manifest.sizeBytes), k.reasons.join(', ')]),
    ...plan.remove.map((m) => ['remove', m.id, m.trigger, formatTime(m.startedAt, timeZone), formatBytes(m.sizeBytes), '']),
    ...plan.orphans.map((o) => ['orphan', o.key, '-', formatTime(o.modifiedAt, timeZone), formatBytes(o.size), 'no manifest (failed or abandoned upload)']),
  ];
  if (rows.length > 0) out(renderTable(['ACTION', 'ID', 'TRIGGER', 'CREATED AT', 'SIZE', 'KEPT BECAUSE'], rows));
  if (plan.binlog.keepFrom !== null || plan.binlog.remove.length > 0) {
    const files = plan.binlog.remove;
    out(
      `binlog: keeping ${plan.binlog.reason.replace(/^binlog /, '')}` +
        (files.length > 0 ? `; ${verb} ${files.reduce((n, f) => n + f.segments, 0)} segments of ${files.length} earlier file${files.length === 1 ? '' : 's'} (${files[0]?.file}${files.length > 1 ? ` … ${files.at(-1)?.file}` : ''})` : ''),
    );
  }
  out('');
}
