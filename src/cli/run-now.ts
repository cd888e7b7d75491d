import { backupPrefix } from '../catalog/keys.ts';
import { runBackup } from '../backup/run.ts';
import { readManifest } from '../catalog/catalog.ts';
import type { BackupType, Manifest } from '../catalog/manifest.ts';
import { formatBytes, formatDuration } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';
import { failuresError, forEachDatabase } from './each-database.ts';

export interface RunNowOptions {
  database?: string[];
  json?: boolean;
  type?: BackupType;
  /** Run in this process even when a daemon with the API is running. */
  local?: boolean;
}

/** `agent run-now`: a manual backup of each named database (all when none), one after another. */
export async function runNow(ctx: CommandContext, options: RunNowOptions): Promise<void> {
  const databases = ctx.databases(options.database);
  const done: Manifest[] = [];
  // A running daemon takes the backup itself, so it never overlaps one of its own (daemon-client.ts).
  const daemon = options.local ? undefined : await (await import('./daemon-client.ts')).connectDaemon(ctx.config);
  const type = options.type ?? 'dump';
  // A backup writes to the store anyway: a listing it makes (an incremental's parent) keeps the manifest pack fresh.
  ctx.packMode = 'refresh';
  const failed = await forEachDatabase(databases, ctx.signal, async (database) => {
    const storage = await ctx.storage(database);
    let manifest: Manifest;
    if (daemon) {
      const id = await daemon.backup(database.name, type, ctx.signal, (job) => {
        if (!options.json) process.stderr.write(`backing up ${database.name} in the running daemon (${daemon.url}, job ${job})…\n`);
      });
      manifest = await readManifest(storage, database.name, id);
    } else {
      if (!options.json) process.stderr.write(`backing up ${database.name}…\n`);
      manifest = await runBackup({ config: ctx.config, database, storage, trigger: 'manual', logger: ctx.logger, signal: ctx.signal, catalog: await ctx.catalog(database) }, type);
    }
    done.push(manifest);
    if (!options.json) {
      const ms = Date.parse(manifest.completedAt) - Date.parse(manifest.startedAt);
      const what = manifest.type === 'dump' ? 'of SQL' : manifest.physical?.parent ? `incremental on ${manifest.physical.parent}` : 'full';
      out(
        `${database.name}: ${manifest.type} backup ${manifest.id} completed in ${formatDuration(ms)}, ` +
          `${formatBytes(manifest.sizeBytes)} (${formatBytes(manifest.rawSizeBytes)} ${what}, ${manifest.compression.algorithm}) ` +
          `→ ${storage.location}/${backupPrefix(manifest.database, manifest.id, manifest.version)}`,
      );
    }
  });
  if (options.json) out(JSON.stringify(done, null, 2));
  if (failed.length > 0) {
    const message = `${failed.length} of ${databases.length} backups failed: ${failed.map((f) => f.name).join(', ')}`;
    // With one database its own error line says it all; with several, a summary line follows.
    throw failuresError(failed, message, { reported: databases.length === 1 });
  }
}
