import { findBackup, listBackups } from '../catalog/catalog.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import { restoreChain } from '../restore/chain.ts';
import { dataObject } from '../restore/download.ts';
import { restoreLogical } from '../restore/logical-restore.ts';
import { restorePhysical } from '../restore/physical-restore.ts';
import { verifyDatadir } from '../restore/verify-datadir.ts';
import { chooseBase, parseTarget, planReplay, replayBinlog, type PitrTarget } from '../restore/pitr.ts';
import { Archive } from '../binlog/archive.ts';
import { formatBytes, formatDuration, formatTime } from '../ui/format.ts';
import { createProgress } from '../ui/progress.ts';
import { out, type CommandContext } from './context.ts';

export interface RestoreCliOptions {
  database: string;
  backup?: string;
  target?: string;
  yes?: boolean;
  binlog?: boolean;
  datadir?: string;
  replaceDatadir?: boolean;
  verify?: boolean;
  toTime?: string;
  toGtid?: string;
}

/**
 * `agent restore`: a logical backup streamed into the server of --target (default: its own), or,
 * with --datadir, a physical chain restored into a datadir.
 */
export async function restore(ctx: CommandContext, options: RestoreCliOptions): Promise<void> {
  const pitr = parseTarget(options.toTime, options.toGtid);
  if (pitr) return restoreToPoint(ctx, options, pitr);
  const source = ctx.database(options.database);
  const storage = await ctx.storage(source);
  const physical = options.datadir !== undefined;
  const manifest = await findBackup(storage, source.name, options.backup, physical ? ['full', 'incremental'] : ['dump']);
  if (options.backup === undefined) {
    process.stderr.write(`Selected the most recent successful backup: ${manifest.id} (${formatTime(manifest.startedAt, ctx.config.timezone)})\n`);
  }
  if (physical) return restoreDatadir(ctx, options, manifest);
  if (manifest.type !== 'dump') {
    throw new AgentError('usage', `backup ${manifest.id} is a physical (${manifest.type}) backup`, { hint: 'restore it into a datadir with --datadir DIR' });
  }

  const target = options.target === undefined ? source : ctx.database(options.target, '--target');
  const object = dataObject(manifest);
  const started = Date.now();
  const progress = createProgress('restore', object.sizeBytes);
  try {
    await restoreLogical({
      config: ctx.config,
      storage,
      manifest,
      target,
      overwrite: options.yes ?? false,
      skipBinlog: options.binlog === false,
      logger: ctx.logger,
      onProgress: progress.update,
      signal: ctx.signal,
    });
    progress.update(object.sizeBytes);
  } finally {
    progress.stop();
  }
  out(
    `restored backup ${manifest.id} of ${source.name} (${manifest.schemas.join(', ')}; ${formatBytes(object.sizeBytes)}) ` +
      `into ${target.name} in ${formatDuration(Date.now() - started)}`,
  );
}

async function restoreDatadir(ctx: CommandContext, options: RestoreCliOptions, manifest: Manifest): Promise<void> {
  const source = ctx.database(options.database);
  const storage = await ctx.storage(source);
  const chain = restoreChain(manifest, (await listBackups(storage, source.name)).backups);
  const total = chain.reduce((sum, m) => sum + dataObject(m).sizeBytes, 0);
  const started = Date.now();
  const progress = createProgress('restore', total);
  let result;
  try {
    result = await restorePhysical({
      config: ctx.config,
      storage,
      chain,
      datadir: options.datadir ?? '',
      replace: options.replaceDatadir ?? false,
      logger: ctx.logger,
      onProgress: progress.update,
      signal: ctx.signal,
    });
    progress.update(total);
  } finally {
    progress.stop();
  }
  if (result.movedAside) out(`moved the existing datadir aside to ${result.movedAside}`);
  out(
    `restored ${chain.map((m) => `${m.type} ${m.id}`).join(' + ')} of ${source.name} (${formatBytes(total)}) ` +
      `into ${result.datadir} in ${formatDuration(Date.now() - started)}; prepared, ready for a server ` +
      `(chown -R mysql:mysql ${result.datadir} before starting one as mysql)`,
  );
  if (options.verify) {
    const checks = await verifyDatadir(result.datadir);
    out(`verified: a throwaway server started on it; ${checks.length} tables, CHECKSUM TABLE:`);
    for (const line of checks) out(`  ${line}`);
  }
}

/**
 * `restore --to-time/--to-gtid`: the newest base before the target, restored, then the archived
 * binlog replayed from the base's exact position to the target.
 */
async function restoreToPoint(ctx: CommandContext, options: RestoreCliOptions, target: PitrTarget): Promise<void> {
  if (options.backup !== undefined) throw new AgentError('usage', '--backup cannot be combined with --to-time/--to-gtid: the base is chosen for the target');
  if (options.datadir !== undefined) {
    throw new AgentError('usage', 'point-in-time recovery restores into a server (--target), not a datadir', {
      hint: 'restore a physical base into a datadir, start a server on it, then replay with --to-time --target',
    });
  }
  const source = ctx.database(options.database);
  const storage = await ctx.storage(source);
  const targetEntry = options.target === undefined ? source : ctx.database(options.target, '--target');
  const [{ backups }, archive] = await Promise.all([listBackups(storage, source.name), Archive.load(storage, source.name)]);
  const summary = await archive.summarize(backups);
  const base = chooseBase(backups, target, ['dump']);
  if (!base) {
    throw new AgentError('refused', `point-in-time restore of ${source.name} to ${target.text}: no dump with binlog coordinates was taken before it`, {
      hint: summary.lastRecoverableAt ? `the last recoverable time is ${summary.lastRecoverableAt}` : 'take a dump while binlog capture runs',
    });
  }
  const plan = await planReplay(archive, base, target, summary.lastRecoverableAt);
  process.stderr.write(`Selected base ${base.type} ${base.id} (${formatTime(base.startedAt, ctx.config.timezone)}), binlog from ${plan.from.file}:${plan.from.position}\n`);
  const started = Date.now();
  await restoreLogical({
    config: ctx.config,
    storage,
    manifest: base,
    target: targetEntry,
    overwrite: options.yes ?? false,
    skipBinlog: options.binlog === false,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  const result = await replayBinlog({
    config: ctx.config,
    storage,
    archive,
    plan,
    target,
    connection: targetEntry.connection,
    targetName: targetEntry.name,
    skipBinlog: options.binlog === false,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  const landed = result.last
    ? `the last replayed transaction is ${result.last.gtid} at ${formatTime(result.last.at, ctx.config.timezone)} (${result.last.file}:${result.last.position})`
    : 'no transaction after the base was needed';
  out(
    `restored ${base.type} ${base.id} of ${source.name} into ${targetEntry.name}, then replayed ${result.transactions} transaction${result.transactions === 1 ? '' : 's'} ` +
      `of binlog up to ${target.text}; ${landed}; in ${formatDuration(Date.now() - started)}`,
  );
}
