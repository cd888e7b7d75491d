import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import type { CommandContext, GlobalOptions } from './context.ts';
import type { RestoreCliOptions } from './restore.ts';
import type { ListCliOptions } from './list.ts';
import type { DownloadCliOptions } from './download.ts';
import type { VerifyCliOptions } from './verify.ts';
import { isBackupId } from '../catalog/keys.ts';
// The backup types from the leaf module, which loads nothing (not zod).
import { BACKUP_TYPES, type BackupType } from '../domain/backup.ts';
import { AgentError, ExitCode, messageOf } from '../errors.ts';
import { AGENT_VERSION } from '../version.ts';

/** The depths of `agent verify` (verify/types.ts; repeated here so --help loads nothing of it). */
const VERIFY_DEPTH_CHOICES = ['objects', 'archive', 'restore'];

/**
 * argv → one command. The only place that turns errors into `error: …` (+ `hint: …`) on stderr and
 * an exit code (0 ok, 1 failure, 2 usage/config, 3 locked); main.ts exits with it once the output
 * is flushed.
 *
 * Start-up time is part of every command (`agent --version` ≤ 0.15 s, `agent list` ≤ 0.25 s): each
 * command's module, and with it its SDKs, drivers and engines, is imported only when that command
 * runs. `--version` and `--help` load commander and nothing else of weight.
 */

const collect = (value: string, previous: string[] = []) => [...previous, value];

/**
 * --backup takes only an ID as the agent makes them: it becomes part of object keys and file
 * paths, so `../../etc` must be refused here (a usage error) before it reaches any storage.
 */
function backupId(value: string): string {
  if (!isBackupId(value)) throw new InvalidArgumentError('not a backup ID (IDs look like 20240131T021500.000Z-1a2b3c; `agent list` shows them)');
  return value;
}

/**
 * `--from URL` and its companions: list, download and restore read any store named on the command
 * line (cli/from-location.ts) instead of the configured one; no configuration file is needed then.
 */
function addFromOptions(command: Command): Command {
  return command
    .option('--from <url>', 'read this store instead of the configured one: s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or a directory')
    .option('--endpoint <url>', 'with --from s3://: an S3-compatible endpoint (MinIO, Ceph, R2…); path-style addressing')
    .option('--region <region>', 'with --from s3://: the bucket region (default us-east-1)')
    .option('--profile <name>', 'with --from s3://: a profile of the AWS shared config and credentials files')
    .option('--credentials-file <path>', 'with --from: an AWS shared credentials file (s3://) or a service-account JSON key (gs://); default: the SDK credential chain (environment, ~/.aws, instance role)')
    .option('--from-option <key=value>', 'with --from: any other storage option of the configuration, e.g. delimiter_listing=false (repeatable)', collect);
}

/** Whether a command's options name a store of their own: then the configuration file may be absent. */
const usesFrom = (opts: { from?: string }) => opts.from !== undefined;

type Run = (action: (ctx: CommandContext) => Promise<void> | void, configOptional?: boolean) => Promise<void>;

function buildProgram(
  run: Run,
  serve: (options: GlobalOptions) => Promise<void>,
): Command {
  const program = new Command('agent')
    .description('Backups of MySQL and MariaDB databases to a local directory, S3 or GCS.')
    .version(AGENT_VERSION, '-V, --version')
    .option('-c, --config <path>', 'configuration file (default: $AGENT_CONFIG, else /etc/backup-agent/agent.yaml)')
    .addOption(new Option('--log-level <level>', 'log level of the JSON logs on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'silent']).default('warn'))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  program
    .command('run-now')
    .description('take a manual backup now of the named databases (all when none is named)')
    .option('-d, --database <name>', 'database entry to back up (repeatable)', collect)
    .addOption(new Option('-t, --type <type>', 'backup type: dump (logical), full or incremental (physical, mariadb-backup)').choices(BACKUP_TYPES).default('dump'))
    .option('--json', 'print the manifests as JSON')
    .option('--local', 'run the backup in this process even when a daemon with the API runs (by default it runs there, never beside its own)')
    .action((opts: { database?: string[]; json?: boolean; type?: BackupType; local?: boolean }) => run(async (ctx) => (await import('./run-now.ts')).runNow(ctx, opts)));

  addFromOptions(
    program
      .command('list')
      .description('list backups, newest first')
      .option('-d, --database <name>', 'only this database entry (with --from: this database of that store)')
      .option('--json', 'print a JSON array'),
  ).action((opts: ListCliOptions) => run(async (ctx) => (await import('./list.ts')).list(ctx, opts), usesFrom(opts)));

  addFromOptions(
    program
      .command('download')
      .description('download a backup file, still compressed (default: the most recent successful one)')
      .option('-d, --database <name>', 'database entry (needed when the configuration, or the --from store, holds several)')
      .option('-b, --backup <id>', 'backup ID (default: the most recent successful backup)', backupId)
      .option('-o, --output <dir>', 'directory to write into', '.')
      .option('--decrypt', 'an encrypted backup: write it decrypted (still compressed), with the age identity (or passphrase) of the entry, --identity or --passphrase-file')
      .option('--identity <file>', 'age identity (key) file for --decrypt (default: encryption.identity_file of the entry)')
      .option('--passphrase-file <file>', 'file holding the passphrase of a passphrase-encrypted backup, for --decrypt (default: encryption.passphrase_file of the entry)'),
  ).action((opts: DownloadCliOptions) => run(async (ctx) => (await import('./download.ts')).download(ctx, opts), usesFrom(opts)));

  const restoreCommand = program
    .command('restore')
    .description('restore a backup into the server of a database entry')
    .option('-d, --database <name>', 'database entry whose backup to restore (with --from: that database of the store, default the only one)')
    .option('-b, --backup <id>', 'backup ID (default: the most recent successful backup)', backupId)
    .option('-t, --target <name>', 'database entry to restore into (default: the entry named like --database)')
    .option('-y, --yes', 'restore even into schemas that already hold data (tables, views, routines, triggers, events)')
    .option('--no-binlog', 'do not write the restored data to the target binary log (SET sql_log_bin=0)')
    .option('--datadir <dir>', 'restore a physical backup (and its chain) into this datadir, prepared for a server')
    .option('--replace-datadir', 'with --datadir: restore over a non-empty datadir, moving it aside first')
    .option('--verify', 'with --datadir: start a throwaway server on the result, run CHECK TABLE and CHECKSUM TABLE, fail on any problem')
    .option('--to-time <time>', 'point-in-time recovery: a base backup, then the archived binlog up to this ISO 8601 time (with zone)')
    .option('--to-gtid <gtid>', 'point-in-time recovery: a base backup, then the archived binlog up to and including this GTID')
    .option('--key <object>', 'with --from: restore this object, made by plain mysqldump or mariabackup (no manifest), instead of a backup of the agent')
    .addOption(new Option('--method <tool>', 'with --key: what made the object').choices(['mysqldump', 'mariabackup']))
    .option('--schema <name>', 'with --key and a dump made without --databases: the schema that receives it')
    .option('--identity <file>', 'age identity (key) file for encrypted backups (default: encryption.identity_file of the entry)')
    .option('--passphrase-file <file>', 'file holding the passphrase of passphrase-encrypted backups (default: encryption.passphrase_file of the entry)');
  addFromOptions(restoreCommand);
  restoreCommand.action((opts: RestoreCliOptions) => run(async (ctx) => (await import('./restore.ts')).restore(ctx, opts), usesFrom(opts)));

  addFromOptions(
    program
      .command('verify')
      .description('prove backups are whole: every object with its size and SHA-256 (objects), the content decoded to its end and well formed (archive, the default), or restored into a throwaway server (restore)')
      .option('-d, --database <name>', 'only this database entry (with --from: this database of that store)')
      .option('-b, --backup <id>', 'verify this backup', backupId)
      .option('--all', 'verify every backup')
      .option('--latest', 'verify the newest backup of each entry (the default)')
      .option('--binlog', 'verify the binlog archive too (alone: only the archive)')
      .addOption(new Option('--depth <depth>', 'how deep: objects, archive or restore').choices(VERIFY_DEPTH_CHOICES).default('archive'))
      .option('--replay-binlog', 'with --depth restore: replay the archived binlog past the backup up to the last recoverable time before checking the tables')
      .option('--identity <file>', 'age identity (key) file for encrypted backups (default: encryption.identity_file of the entry)')
      .option('--passphrase-file <file>', 'file holding the passphrase of passphrase-encrypted backups (default: encryption.passphrase_file of the entry)')
      .option('--json', 'print JSON'),
  ).action((opts: VerifyCliOptions) => run(async (ctx) => (await import('./verify.ts')).verify(ctx, opts), usesFrom(opts)));

  const binlog = program.command('binlog').description('binlog archiving for point-in-time recovery');
  binlog
    .command('capture')
    .description('stream the binlog of the named entries (default: those with binlog.enabled) into the archive, until stopped')
    .option('-d, --database <name>', 'database entry (repeatable)', collect)
    .action((opts: { database?: string[] }) => run(async (ctx) => (await import('./binlog.ts')).binlogCapture(ctx, opts)));
  binlog
    .command('list')
    .description('the binlog archive: contiguous runs, gaps, and the last recoverable time')
    .option('-d, --database <name>', 'only this database entry')
    .option('--json', 'print JSON')
    .action((opts: { database?: string; json?: boolean }) => run(async (ctx) => (await import('./binlog.ts')).binlogList(ctx, opts)));
  binlog
    .command('compact')
    .description('merge small binlog segments into hourly and daily objects now (a running capture does this on its own)')
    .option('-d, --database <name>', 'database entry (repeatable)', collect)
    .action((opts: { database?: string[] }) => run(async (ctx) => (await import('./binlog.ts')).binlogCompact(ctx, opts)));

  program
    .command('prune')
    .description('apply the retention policy: what is kept (and why) and what is removed')
    .option('-d, --database <name>', 'only this database entry')
    .option('-n, --dry-run', 'show what would be removed, remove nothing')
    .option('--json', 'print JSON')
    .action((opts: { database?: string; dryRun?: boolean; json?: boolean }) => run(async (ctx) => (await import('./prune.ts')).prune(ctx, opts)));

  program
    .command('daemon')
    .description('run as a service: periodic backups on their schedules, health and metrics over HTTP')
    .action(() => serve(program.opts<GlobalOptions>()));

  program
    .command('status')
    .description('per database and type: the last result, the next run, and whether the daemon is running')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => run(async (ctx) => (await import('./status.ts')).status(ctx, opts)));

  const config = program.command('config').description('configuration commands');
  config
    .command('validate')
    .description('check the configuration and print it normalised, secrets redacted')
    .option('--json', 'print JSON instead of YAML')
    .action((opts: { json?: boolean }) => run(async (ctx) => (await import('./config-validate.ts')).configValidate(ctx, opts)));

  program
    .command('demo')
    .description('start a throwaway MariaDB with sample data, back it up to a local directory, list and restore it')
    .option('--dir <dir>', 'working directory for the demo (default: a new temporary directory)')
    .option('--keep', 'keep the demo directory afterwards')
    .action(async (opts: { dir?: string; keep?: boolean }) => (await import('./demo.ts')).demo(opts));

  return program;
}

function report(err: unknown): ExitCode {
  if (err instanceof CommanderError) {
    // commander already printed its message; help and version are not errors.
    return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
  }
  if (err instanceof AgentError) {
    if (!err.reported) {
      process.stderr.write(`error: ${err.message}\n`);
      if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
    }
    return err.exitCode;
  }
  process.stderr.write(`error: ${messageOf(err)}\n`);
  if (process.env['AGENT_DEBUG'] && err instanceof Error) process.stderr.write(`${err.stack ?? ''}\n`);
  return ExitCode.failure;
}

/**
 * The first SIGINT/SIGTERM cancels the running operation: tools are killed, partial uploads
 * aborted, temp files and the credentials file removed, no manifest written. A second one exits
 * at once, after killing the tools and removing the credentials files synchronously (a partial
 * object may stay: prune removes it as an orphan).
 */
function cancelOnSignals(forceCleanup: () => void): AbortSignal {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) {
      forceCleanup();
      process.stderr.write(`received ${name} again: exiting now\n`);
      process.exit(ExitCode.failure);
    }
    process.stderr.write(`received ${name}: cancelling (send it again to exit at once)\n`);
    controller.abort(new AgentError('internal', `cancelled by ${name}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

export async function main(argv: string[]): Promise<ExitCode> {
  let program: Command | undefined;
  let exitCode: ExitCode = ExitCode.ok;
  const run: Run = async (action, configOptional = false) => {
    // Loaded before the signal handlers go in: a second signal cleans up synchronously.
    const [{ CommandContext }, { killTools }, { removeDefaultsFiles }, { sweepTempDirs }] = await Promise.all([
      import('./context.ts'),
      import('../capture/running-tools.ts'),
      import('../capture/defaults-file.ts'),
      import('../capture/private-temp.ts'),
    ]);
    // What an agent killed with SIGKILL left in TMPDIR (a spool, a verify server's directory).
    await sweepTempDirs();
    const forceCleanup = () => {
      killTools();
      removeDefaultsFiles();
    };
    const ctx = CommandContext.load(program?.opts<GlobalOptions>() ?? {}, cancelOnSignals(forceCleanup), process.env, configOptional);
    try {
      await action(ctx);
    } finally {
      await ctx.close();
    }
  };
  // The daemon handles its own signals (graceful stop, reload).
  const serve = async (options: GlobalOptions) => {
    const [{ daemon }, { sweepTempDirs }] = await Promise.all([import('./daemon.ts'), import('../capture/private-temp.ts')]);
    await sweepTempDirs();
    exitCode = (await daemon(options)) === 0 ? ExitCode.ok : ExitCode.failure;
  };
  program = buildProgram(run, serve);
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    return report(err);
  }
}

