import type { Manifest } from '../catalog/manifest.ts';
import { AgentError } from '../errors.ts';
import { parseTarget } from '../restore/pitr.ts';
import { runRestore, type RestoreDestination, type RestoreOutcome } from '../restore/run-restore.ts';
import { formatBytes, formatDuration, formatTime } from '../ui/format.ts';
import { createProgress, type Progress } from '../ui/progress.ts';
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
  identity?: string;
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
  const point = parseTarget(options.toTime, options.toGtid);
  if (point && options.datadir !== undefined && options.target !== undefined) {
    throw new AgentError('usage', '--target and --datadir: a point-in-time restore goes into one or the other');
  }
  const source = ctx.database(options.database);
  const destination: RestoreDestination =
    options.datadir !== undefined
      ? { kind: 'datadir', path: options.datadir, replace: options.replaceDatadir ?? false, verify: options.verify ?? false }
      : {
          kind: 'server',
          target: options.target === undefined ? source : ctx.database(options.target, '--target'),
          overwrite: options.yes ?? false,
          skipBinlog: options.binlog === false,
        };
  const storage = await ctx.storage(source);
  let progress: Progress | undefined;
  let outcome: RestoreOutcome;
  try {
    outcome = await runRestore(
      { source, backup: options.backup, point, destination, identityFile: options.identity },
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
