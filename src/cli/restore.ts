import type { Manifest } from '../catalog/manifest.ts';
import type { ForeignMethod } from '../restore/foreign-format.ts';
import { AgentError, usageError } from '../errors.ts';
import { parseTarget } from '../restore/pitr.ts';
import { runRestore, type RestoreDestination, type RestoreOutcome } from '../restore/run-restore.ts';
import { formatBytes, formatDuration, formatTime } from '../ui/format.ts';
import { createProgress, type Progress } from '../ui/progress.ts';
import { out, type CommandContext, type StoredDatabase } from './context.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { archiveSource, fromFlags, storageFromFlags, type FromCliOptions, type FromFlags } from './from-location.ts';

export interface RestoreCliOptions extends FromCliOptions {
  /** Required unless --from names a store holding one database. */
  database?: string;
  backup?: string;
  target?: string;
  yes?: boolean;
  binlog?: boolean;
  datadir?: string;
  replaceDatadir?: boolean;
  verify?: boolean;
  toTime?: string;
  toGtid?: string;
  key?: string;
  method?: ForeignMethod;
  schema?: string;
  identity?: string;
  passphraseFile?: string;
}

/**
 * `agent restore`: a logical backup streamed into the server of --target (default: its own), or,
 * with --datadir, a physical chain restored into a datadir; with --to-time/--to-gtid, the binlog
 * replayed on top. Parses the flags, runs the restore engine (restore/run-restore.ts), prints.
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
  if (options.key !== undefined || options.method !== undefined || options.schema !== undefined) return restoreObject(ctx, options);
  const point = parseTarget(options.toTime, options.toGtid);
  if (point && options.datadir !== undefined && options.target !== undefined) {
    throw new AgentError('usage', '--target and --datadir: a point-in-time restore goes into one or the other');
  }
  const from = fromFlags(options);
  let source: StoredDatabase;
  if (from) source = await archiveSource(ctx, from, options.database);
  else if (options.database !== undefined) source = ctx.database(options.database);
  else throw usageError('--database is required: the database entry whose backup to restore', `the configuration names: ${ctx.config.databases.map((d) => d.name).join(', ')}`);
  const destination: RestoreDestination =
    options.datadir !== undefined
      ? { kind: 'datadir', path: options.datadir, replace: options.replaceDatadir ?? false, verify: options.verify ?? false }
      : {
          kind: 'server',
          target: restoreTarget(ctx, source, options.target, from !== undefined),
          overwrite: options.yes ?? false,
          skipBinlog: options.binlog === false,
        };
  const storage = await ctx.storage(source);
  let progress: Progress | undefined;
  let outcome: RestoreOutcome;
  try {
    outcome = await runRestore(
      { source, backup: options.backup, point, destination, identityFile: options.identity, passphraseFile: options.passphraseFile },
      {
        config: ctx.config,
        storage,
        logger: ctx.logger,
        signal: ctx.signal,
        catalog: await ctx.catalog(source),
        on: {
          selected: (base, from) => process.stderr.write(`${selectedLine(base, from, ctx.config.timezone)}\n`),
          progress: (bytes, total) => (progress ??= createProgress('restore', total)).update(bytes),
          movedAside: (path) => {
            progress?.stop();
            out(`moved the existing datadir aside to ${path}`);
          },
        },
      },
    );
  } finally {
    progress?.stop();
  }
  out(summary(outcome, point?.text, destination.kind, ctx.config.timezone));
  if (outcome.verification) report(outcome.into, outcome.verification);
}

/**
 * `agent restore --from URL --key OBJECT --method mysqldump|mariabackup`: an archive no manifest
 * describes (restore/foreign-restore.ts). The flags of the catalog's backups are refused with it.
 */
async function restoreObject(ctx: CommandContext, options: RestoreCliOptions): Promise<void> {
  const from = fromFlags(options);
  const need = (ok: boolean, message: string, hint?: string) => {
    if (!ok) throw usageError(message, hint);
  };
  need(options.key !== undefined, `${options.method !== undefined ? '--method' : '--schema'} needs --key: the object to restore`);
  need(from !== undefined, '--key needs --from: the store that holds the object', 'e.g. --from s3://BUCKET --key dumps/shop.sql.gz');
  need(options.method !== undefined, '--key needs --method mysqldump or --method mariabackup: what made the object');
  for (const [flag, set] of [
    ['--backup', options.backup],
    ['--to-time', options.toTime],
    ['--to-gtid', options.toGtid],
    ['--database', options.database],
  ] as const) {
    need(set === undefined, `${flag} does not go with --key: it names a backup of the agent's catalog`);
  }
  const key = options.key as string;
  const method = options.method as ForeignMethod;
  if (method === 'mariabackup') {
    need(options.datadir !== undefined, '--method mariabackup needs --datadir: the directory that receives the prepared datadir');
    need(options.target === undefined && options.schema === undefined, `${options.target !== undefined ? '--target' : '--schema'} does not go with --method mariabackup: it restores into --datadir`);
  } else {
    need(options.datadir === undefined, '--method mysqldump restores into a server: give --target ENTRY, not --datadir');
    need(options.target !== undefined, '--method mysqldump needs --target: the database entry whose server receives the dump', ctx.config.databases.length > 0 ? `the configuration names: ${ctx.config.databases.map((d) => d.name).join(', ')}` : 'give --config with that entry');
  }
  for (const [flag, set] of [
    ['--verify', options.verify],
    ['--replace-datadir', options.replaceDatadir],
  ] as const) {
    need(!set || options.datadir !== undefined, `${flag} needs --datadir: it applies to a restore into a datadir`);
  }
  const storage = await ctx.storage({ name: '', storage: storageFromFlags(from as FromFlags) });
  const { restoreForeign } = await import('../restore/foreign-restore.ts');
  // An age-encrypted archive: --identity / --passphrase-file, else the target entry's encryption: block.
  const configured = options.target !== undefined ? ctx.database(options.target, '--target').encryption : undefined;
  const decryption = { agePath: ctx.config.tools.age, identityFile: options.identity ?? configured?.identityFile, passphraseFile: options.passphraseFile ?? configured?.passphrase?.file };
  let progress: Progress | undefined;
  const started = Date.now();
  let outcome;
  try {
    outcome = await restoreForeign(
      {
        key,
        method,
        decryption,
        destination:
          options.datadir !== undefined
            ? { kind: 'datadir', path: options.datadir, replace: options.replaceDatadir ?? false }
            : { kind: 'server', target: ctx.database(options.target as string, '--target'), overwrite: options.yes ?? false, skipBinlog: options.binlog === false, schema: options.schema },
      },
      {
        config: ctx.config,
        storage,
        logger: ctx.logger,
        signal: ctx.signal,
        onProgress: (bytes, total) => (progress ??= createProgress('restore', total)).update(bytes),
        onMovedAside: (path) => out(`moved the existing datadir aside to ${path}`),
      },
    );
  } finally {
    progress?.stop();
  }
  const took = formatDuration(Date.now() - started);
  const what = `${outcome.content === 'sql' ? 'SQL dump' : `mariabackup ${outcome.content}`}${outcome.compression === 'none' ? '' : ` (${outcome.compression})`}`;
  const article = outcome.encrypted ? 'an age-encrypted' : 'a';
  if (outcome.unterminated) process.stderr.write(`warning: ${key} does not end with mysqldump's "-- Dump completed" line: if it was cut short, the restore is incomplete\n`);
  if (outcome.content === 'sql') {
    out(`restored ${key}, ${article} ${what} of ${formatBytes(outcome.bytes)}, into ${outcome.into} (${outcome.schemas.join(', ')}) in ${took}`);
    return;
  }
  out(`restored ${key}, ${article} ${what} of ${formatBytes(outcome.bytes)}, into ${outcome.into} in ${took}; prepared, ready for a server (chown -R mysql:mysql ${outcome.into} before starting one as mysql)`);
  if (options.verify) {
    const { verifyDatadir } = await import('../restore/verify-datadir.ts');
    report(outcome.into, await verifyDatadir(outcome.into));
  }
}

/**
 * The entry to restore into: --target, else the entry of the source's name. With --from, the
 * source is a store's folder, not an entry, so the entry of that name must exist or --target be given.
 */
function restoreTarget(ctx: CommandContext, source: StoredDatabase, target: string | undefined, fromStore: boolean): DatabaseConfig {
  if (target !== undefined) return ctx.database(target, '--target');
  if (!fromStore) return ctx.database(source.name);
  const same = ctx.config.databases.find((d) => d.name === source.name);
  if (same) return same;
  throw usageError(
    `--target is required: no database entry is named ${source.name}, the database of the --from store`,
    ctx.config.databases.length > 0 ? `the configuration names: ${ctx.config.databases.map((d) => d.name).join(', ')}; or restore a physical backup with --datadir DIR` : 'give --config with the entry to restore into, or restore a physical backup with --datadir DIR',
  );
}

function selectedLine(base: Manifest, from: { file: string; position: number } | undefined, timezone: string): string {
  const at = formatTime(base.startedAt, timezone);
  return from ? `Selected base ${base.type} ${base.id} (${at}), binlog from ${from.file}:${from.position}` : `Selected the most recent successful backup: ${base.id} (${at})`;
}

function summary(outcome: RestoreOutcome, pointText: string | undefined, kind: RestoreDestination['kind'], timezone: string): string {
  const base = outcome.restored[0];
  const took = formatDuration(outcome.durationMs);
  const ready = `ready for a server (chown -R mysql:mysql ${outcome.into} before starting one as mysql)`;
  const chain = outcome.restored.map((m) => `${m.type} ${m.id}`).join(' + ');
  if (outcome.replay && pointText !== undefined) {
    const { transactions, last } = outcome.replay;
    const landed = last
      ? `the last replayed transaction is ${last.gtid} at ${formatTime(last.at, timezone)} (${last.file}:${last.position})`
      : 'no transaction after the base was needed';
    const replayed = `then replayed ${transactions} transaction${transactions === 1 ? '' : 's'} of binlog up to ${pointText}; ${landed}`;
    return kind === 'datadir'
      ? `restored ${chain} of ${outcome.source} into ${outcome.into}, ${replayed}; in ${took}; ${ready}`
      : `restored ${chain} of ${outcome.source} into ${outcome.into}, ${replayed}; in ${took}`;
  }
  if (kind === 'datadir') return `restored ${chain} of ${outcome.source} (${formatBytes(outcome.bytes)}) into ${outcome.into} in ${took}; prepared, ${ready}`;
  return `restored backup ${base?.id} of ${outcome.source} (${base?.schemas.join(', ')}; ${formatBytes(outcome.bytes)}) into ${outcome.into} in ${took}`;
}

/** Prints the per-table figures, then fails (exit 1) naming everything that did not verify. */
function report(datadir: string, result: { lines: string[]; failures: string[] }): void {
  out(`verify: a throwaway server started on it; ${result.lines.length} tables, CHECK TABLE and CHECKSUM TABLE:`);
  for (const line of result.lines) out(`  ${line}`);
  if (result.failures.length > 0) {
    throw new AgentError('integrity', `verify ${datadir}: ${result.failures.join('; ')}`, {
      hint: 'the restored datadir is not usable as it is; the log of the throwaway server may say more',
    });
  }
  out(`verified: every table checks OK and has a checksum`);
}
