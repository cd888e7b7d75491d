import { findBackup } from '../catalog/catalog.ts';
import { dataObject } from '../restore/download.ts';
import { restoreLogical } from '../restore/logical-restore.ts';
import { formatBytes, formatDuration, formatTime } from '../ui/format.ts';
import { createProgress } from '../ui/progress.ts';
import { out, type CommandContext } from './context.ts';

export interface RestoreCliOptions {
  database: string;
  backup?: string;
  target?: string;
  yes?: boolean;
  binlog?: boolean;
}

/** `agent restore`: a logical backup streamed into the server of --target (default: its own). */
export async function restore(ctx: CommandContext, options: RestoreCliOptions): Promise<void> {
  const source = ctx.database(options.database);
  const target = options.target === undefined ? source : ctx.database(options.target, '--target');
  const storage = await ctx.storage(source);
  const manifest = await findBackup(storage, source.name, options.backup);
  if (options.backup === undefined) {
    process.stderr.write(
      `Selected the most recent successful backup: ${manifest.id} (${formatTime(manifest.startedAt, ctx.config.timezone)})\n`,
    );
  }
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
