import { resolve } from 'node:path';
import { findBackup } from '../catalog/catalog.ts';
import { dataObject, downloadBackup } from '../restore/download.ts';
import { formatBytes, formatTime } from '../ui/format.ts';
import { createProgress } from '../ui/progress.ts';
import { out, type CommandContext } from './context.ts';
import { archiveSource, fromFlags, type FromCliOptions } from './from-location.ts';

export interface DownloadCliOptions extends FromCliOptions {
  database?: string;
  backup?: string;
  output?: string;
}

/** `agent download`: one backup's data file, still compressed, verified against its manifest. */
export async function download(ctx: CommandContext, options: DownloadCliOptions): Promise<void> {
  const from = fromFlags(options);
  const database = from ? await archiveSource(ctx, from, options.database) : ctx.singleDatabase(options.database);
  const storage = await ctx.storage(database);
  const manifest = await findBackup(storage, database.name, options.backup, undefined, await ctx.catalog(database));
  if (options.backup === undefined) {
    process.stderr.write(
      `Selected the most recent successful backup: ${manifest.id} (${formatTime(manifest.startedAt, ctx.config.timezone)})\n`,
    );
  }
  const object = dataObject(manifest);
  const progress = createProgress('download', object.sizeBytes);
  try {
    const result = await downloadBackup(storage, manifest, resolve(options.output ?? '.'), { onProgress: progress.update, signal: ctx.signal });
    progress.update(object.sizeBytes);
    progress.stop();
    out(`${result.path} (${formatBytes(result.sizeBytes)}, SHA-256 verified)`);
  } finally {
    progress.stop();
  }
}
