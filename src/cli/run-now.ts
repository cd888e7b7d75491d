import { runLogicalBackup } from '../backup/run-backup.ts';
import type { Manifest } from '../catalog/manifest.ts';
import { AgentError, messageOf } from '../errors.ts';
import { formatBytes, formatDuration } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';

export interface RunNowOptions {
  database?: string[];
  json?: boolean;
}

/** `agent run-now`: a manual backup of each named database (all when none), one after another. */
export async function runNow(ctx: CommandContext, options: RunNowOptions): Promise<void> {
  const databases = ctx.databases(options.database);
  const done: Manifest[] = [];
  const failed: { name: string; error: unknown }[] = [];
  for (const database of databases) {
    if (ctx.signal.aborted) break;
    if (!options.json) process.stderr.write(`backing up ${database.name}…\n`);
    try {
      const storage = await ctx.storage(database);
      const manifest = await runLogicalBackup({
        config: ctx.config,
        database,
        storage,
        trigger: 'manual',
        logger: ctx.logger,
        signal: ctx.signal,
      });
      done.push(manifest);
      if (!options.json) {
        const ms = Date.parse(manifest.completedAt) - Date.parse(manifest.startedAt);
        out(
          `${database.name}: backup ${manifest.id} completed in ${formatDuration(ms)}, ` +
            `${formatBytes(manifest.sizeBytes)} (${formatBytes(manifest.rawSizeBytes)} of SQL, ${manifest.compression.algorithm}) ` +
            `→ ${storage.location}/${database.name}/${manifest.id}/`,
        );
      }
    } catch (error) {
      failed.push({ name: database.name, error });
      process.stderr.write(`error: ${database.name}: ${messageOf(error)}\n`);
      if (error instanceof AgentError && error.hint) process.stderr.write(`hint: ${error.hint}\n`);
    }
  }
  if (options.json) out(JSON.stringify(done, null, 2));
  if (failed.length > 0) {
    const first = failed[0]?.error;
    throw new AgentError(
      first instanceof AgentError ? first.kind : 'internal',
      `${failed.length} of ${databases.length} backups failed: ${failed.map((f) => f.name).join(', ')}`,
      { cause: first, reported: databases.length === 1 },
    );
  }
}
