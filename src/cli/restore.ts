import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findBackup } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import { restoreChain } from '../restore/chain.ts';
import { dataObject } from '../restore/download.ts';
import { restoreLogical } from '../restore/logical-restore.ts';
import { restorePhysical } from '../restore/physical-restore.ts';
import { verifyDatadir } from '../restore/verify-datadir.ts';
import { startSandbox } from '../sandbox/mariadb-sandbox.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { chooseBase, parseTarget, planReplay, replayBinlog, type PitrTarget } from '../restore/pitr.ts';
import { verifyReplay } from '../restore/replay-verify.ts';
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
  // Flags that only mean something with --datadir are refused, not silently ignored.
  for (const [flag, set] of [
    ['--verify', options.verify],
    ['--replace-datadir', options.replaceDatadir],
  ] as const) {
    if (set && options.datadir === undefined) {
      throw new AgentError('usage', `${flag} needs --datadir: it applies to a restore into a datadir`, { hint: `add --datadir DIR, or drop ${flag}` });
    }
  }
  const pitr = parseTarget(options.toTime, options.toGtid);
  if (pitr) return restoreToPoint(ctx, options, pitr);
  const source = ctx.database(options.database);
  const storage = await ctx.storage(source);
  const physical = options.datadir !== undefined;
  const manifest = await findBackup(storage, source.name, options.backup, physical ? ['full', 'incremental'] : ['dump'], await ctx.catalog(source));
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
  const chain = restoreChain(manifest, (await listBackups(storage, source.name, await ctx.catalog(source))).backups);
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
  if (options.verify) await verifyAndReport(result.datadir, manifest.schemas);
}

/**
 * `restore --to-time/--to-gtid`: the newest base before the target, restored, then the archived
 * binlog replayed from the base's exact position to the target.
 */
async function restoreToPoint(ctx: CommandContext, options: RestoreCliOptions, target: PitrTarget): Promise<void> {
  if (options.backup !== undefined) throw new AgentError('usage', '--backup cannot be combined with --to-time/--to-gtid: the base is chosen for the target');
  const source = ctx.database(options.database);
  const storage = await ctx.storage(source);
  const physical = options.datadir !== undefined;
  if (physical && options.target !== undefined) throw new AgentError('usage', '--target and --datadir: a point-in-time restore goes into one or the other');
  const targetEntry = options.target === undefined ? source : ctx.database(options.target, '--target');
  const [{ backups }, archive] = await Promise.all([listBackups(storage, source.name, await ctx.catalog(source)), Archive.load(storage, source.name)]);
  const summary = await archive.summarize(backups);
  const base = chooseBase(backups, target, physical ? ['full', 'incremental'] : ['dump']);
  if (!base) {
    throw new AgentError('refused', `point-in-time restore of ${source.name} to ${target.text}: no ${physical ? 'physical backup' : 'dump'} with binlog coordinates was taken before it`, {
      hint: summary.lastRecoverableAt ? `the last recoverable time is ${summary.lastRecoverableAt}` : 'take a dump while binlog capture runs',
    });
  }
  const plan = await planReplay(archive, base, target, summary.lastRecoverableAt);
  process.stderr.write(`Selected base ${base.type} ${base.id} (${formatTime(base.startedAt, ctx.config.timezone)}), binlog from ${plan.from.file}:${plan.from.position}\n`);
  const started = Date.now();
  if (physical) return restoreDatadirToPoint(ctx, options, { base, plan, archive, target, storage, started });
  await restoreLogical({
    config: ctx.config,
    storage,
    manifest: base,
    target: targetEntry,
    overwrite: options.yes ?? false,
    skipBinlog: options.binlog === false,
    replay: true,
    // The binlog the replay needs is read and checked before the base is written.
    beforeWrite: async () => {
      const checked = await verifyReplay(storage, archive, plan, target, ctx.signal);
      ctx.logger.info(checked, 'binlog for the replay verified');
      return { largestStatement: checked.largestStatement };
    },
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
    // A dump holds only its schemas: writes to any other (and to mysql.*) are not replayed.
    schemas: new Set(base.schemas),
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

/**
 * Point-in-time restore into a datadir: the physical chain of the base restored and prepared,
 * then a private server started on it (socket only, no grant checks, no binlog), the binlog
 * replayed into it, and the server shut down cleanly: the datadir is then at the target.
 */
async function restoreDatadirToPoint(
  ctx: CommandContext,
  options: RestoreCliOptions,
  job: { base: Manifest; plan: Awaited<ReturnType<typeof planReplay>>; archive: Archive; target: PitrTarget; storage: StorageDriver; started: number },
): Promise<void> {
  const source = ctx.database(options.database);
  const chain = restoreChain(job.base, (await listBackups(job.storage, source.name, await ctx.catalog(source))).backups);
  // The binlog is checked before the datadir is touched (the chain is checked by restorePhysical).
  const checked = await verifyReplay(job.storage, job.archive, job.plan, job.target, ctx.signal);
  ctx.logger.info(checked, 'binlog for the replay verified');
  const restored = await restorePhysical({
    config: ctx.config,
    storage: job.storage,
    chain,
    datadir: options.datadir ?? '',
    replace: options.replaceDatadir ?? false,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  if (restored.movedAside) out(`moved the existing datadir aside to ${restored.movedAside}`);
  const dir = await mkdtemp(join(tmpdir(), 'backup-agent-pitr-'));
  let result;
  try {
    const server = await startSandbox({ dir, port: 0, existingDatadir: restored.datadir, serverId: 4243, private: true });
    try {
      result = await replayBinlog({
        config: ctx.config,
        storage: job.storage,
        archive: job.archive,
        plan: job.plan,
        target: job.target,
        connection: { host: undefined, port: 0, socket: server.socket, user: 'root', password: undefined, tls: undefined },
        targetName: restored.datadir,
        skipBinlog: false,
        // Started without grant checks; loading them lets replayed account statements run.
        preamble: 'FLUSH PRIVILEGES;\n',
        logger: ctx.logger,
        signal: ctx.signal,
      });
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  const landed = result.last
    ? `the last replayed transaction is ${result.last.gtid} at ${formatTime(result.last.at, ctx.config.timezone)} (${result.last.file}:${result.last.position})`
    : 'no transaction after the base was needed';
  out(
    `restored ${chain.map((m) => `${m.type} ${m.id}`).join(' + ')} of ${source.name} into ${restored.datadir}, then replayed ${result.transactions} ` +
      `transaction${result.transactions === 1 ? '' : 's'} of binlog up to ${job.target.text}; ${landed}; in ${formatDuration(Date.now() - job.started)}; ` +
      `ready for a server (chown -R mysql:mysql ${restored.datadir} before starting one as mysql)`,
  );
  if (options.verify) await verifyAndReport(restored.datadir, job.base.schemas);
}

/** Prints the per-table figures, then fails (exit 1) naming everything that did not verify. */
async function verifyAndReport(datadir: string, schemas: readonly string[]): Promise<void> {
  const result = await verifyDatadir(datadir, { schemas });
  out(`verify: a throwaway server started on it; ${result.lines.length} tables, CHECK TABLE and CHECKSUM TABLE:`);
  for (const line of result.lines) out(`  ${line}`);
  if (result.failures.length > 0) {
    throw new AgentError('integrity', `verify ${datadir}: ${result.failures.join('; ')}`, {
      hint: 'the restored datadir is not usable as it is; the log of the throwaway server may say more',
    });
  }
  out(`verified: every table checks OK and has a checksum`);
}
