import { Archive } from '../binlog/archive.ts';
import { runBinlogCapture } from '../binlog/capture.ts';
import { withCompaction } from '../binlog/compaction-loop.ts';
import { compactArchive } from '../binlog/compactor.ts';
import { describeUnreadable } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { asBinlogWriter } from '../lease/binlog-writer.ts';
import { formatTime, renderTable } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';

/** The entries named by --database, else every entry with binlog.enabled. */
function captureTargets(ctx: CommandContext, names: readonly string[] | undefined): DatabaseConfig[] {
  if (names && names.length > 0) return ctx.databases(names);
  const enabled = ctx.config.databases.filter((d) => d.binlog.enabled);
  if (enabled.length === 0) {
    throw new AgentError('usage', 'no database entry has binlog.enabled: true', { hint: 'enable it in the configuration, or name one with --database' });
  }
  return enabled;
}

/**
 * `agent binlog capture`: stream the binlog of each entry into its archive, in the foreground,
 * until SIGINT/SIGTERM (then pending events are archived and it exits 0). The daemon runs the
 * same capture for entries with binlog.enabled.
 */
export async function binlogCapture(ctx: CommandContext, options: { database?: string[] }): Promise<void> {
  const targets = captureTargets(ctx, options.database);
  const results = await Promise.allSettled(
    targets.map(async (database) => {
      process.stderr.write(`capturing the binlog of ${database.name}…\n`);
      const storage = await ctx.storage(database);
      const log = ctx.logger.child({ database: database.name, type: 'binlog' });
      await asBinlogWriter({ storage, database: database.name, ttlMs: ctx.config.prune.lock_ttl, log, signal: ctx.signal }, (signal) =>
        withCompaction({ storage, database, log, signal }, (compaction) =>
          runBinlogCapture({ config: ctx.config, database, storage, logger: ctx.logger, signal, onSegment: () => compaction.notify() }),
        ),
      );
    }),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [{ name: targets[i]?.name ?? '?', error: r.reason as unknown }] : []));
  for (const f of failed) {
    process.stderr.write(`error: ${f.name}: ${messageOf(f.error)}\n`);
    if (f.error instanceof AgentError && f.error.hint) process.stderr.write(`hint: ${f.error.hint}\n`);
  }
  if (failed.length > 0) {
    // Every failure a held lease (another writer): exit 3, "busy", not a failure of this process.
    const locked = failed.every((f) => f.error instanceof AgentError && f.error.kind === 'locked');
    throw new AgentError(locked ? 'locked' : 'tool', `binlog capture failed for ${failed.map((f) => f.name).join(', ')}`, { reported: true });
  }
}

/** `agent binlog list`: the archive of each entry: runs, gaps, and the last recoverable time. */
export async function binlogList(ctx: CommandContext, options: { database?: string; json?: boolean }): Promise<void> {
  const databases = ctx.databases(options.database === undefined ? undefined : [options.database]);
  const summaries = [];
  for (const database of databases) {
    const storage = await ctx.storage(database);
    const [archive, { backups, unreadable }] = await Promise.all([Archive.load(storage, database.name), listBackups(storage, database.name, await ctx.catalog(database))]);
    // The last recoverable time counts only the bases that could be read: say which were not.
    for (const bad of unreadable) process.stderr.write(`warning: ${database.name}: ${describeUnreadable(bad)}\n`);
    summaries.push({ database: database.name, ...(await archive.summarize(backups)) });
  }
  if (options.json) {
    out(JSON.stringify(summaries, null, 2));
    return;
  }
  const tz = ctx.config.timezone;
  for (const s of summaries) {
    out(
      `${s.database}: ${s.segments} segment${s.segments === 1 ? '' : 's'}; last recoverable time: ${
        s.lastRecoverableAt ? `${formatTime(s.lastRecoverableAt, tz)} (from backup ${s.base})` : 'none (no backup inside the archived binlog)'
      }`,
    );
    if (s.runs.length > 0) {
      out(
        renderTable(
          ['FROM', 'TO', 'FIRST EVENT', 'LAST EVENT', 'SEGMENTS'],
          s.runs.map((r) => [`${r.from.file}:${r.from.position}`, `${r.to.file}:${r.to.position}`, formatTime(r.from.at, tz), formatTime(r.to.at, tz), String(r.segments)]),
        ),
      );
    }
    for (const g of s.gaps) out(`gap after ${g.after}, before ${g.before}: ${g.reason}`);
    if (s.completeThroughProblem) out(`complete-through marker not used: ${s.completeThroughProblem}`);
  }
}

/**
 * `agent binlog compact`: one compaction run over each entry's archive (what the capture does on
 * its own every few minutes), as the archive's one writer: with a capture running elsewhere it
 * exits 3 (locked), since that capture compacts.
 */
export async function binlogCompact(ctx: CommandContext, options: { database?: string[] }): Promise<void> {
  for (const database of ctx.databases(options.database)) {
    if (database.encryption) {
      out(`${database.name}: not compacted: its archive is encrypted (merging would need its plaintext)`);
      continue;
    }
    const storage = await ctx.storage(database);
    const log = ctx.logger.child({ database: database.name, type: 'binlog' });
    const result = await asBinlogWriter({ storage, database: database.name, ttlMs: ctx.config.prune.lock_ttl, log, signal: ctx.signal }, (signal) =>
      compactArchive({ storage, database: database.name, compression: database.compression, log, signal }),
    );
    out(`${database.name}: ${result.merged} object${result.merged === 1 ? '' : 's'} merged, ${result.removed} removed${result.nextDueAt ? `; next window closes ${new Date(result.nextDueAt).toISOString()}` : ''}`);
  }
}
