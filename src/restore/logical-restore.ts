import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import type { Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { countTables, withConnection } from '../capture/server.ts';
import { startTool } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { createDecompressor } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { dataObject } from './download.ts';
import { openVerified } from './fetch.ts';

export interface RestoreOptions {
  config: Pick<AgentConfig, 'tools'>;
  storage: StorageDriver;
  manifest: Manifest;
  /** The database entry whose server receives the data. */
  target: DatabaseConfig;
  /** Allow writing into schemas that already hold tables. */
  overwrite: boolean;
  /** Do not write the restored statements to the target's binary log (needs SUPER/BINLOG ADMIN). */
  skipBinlog: boolean;
  logger: Logger;
  onProgress?: (bytes: number) => void;
  signal?: AbortSignal;
}

/** Pure: the schemas of a backup that already hold tables on the target. */
export function nonEmptySchemas(schemas: readonly string[], tableCounts: ReadonlyMap<string, number>): string[] {
  return schemas.filter((s) => (tableCounts.get(s) ?? 0) > 0);
}

/**
 * Streams a logical backup from storage through decompression into the SQL client connected to
 * the target server. Refuses to write into non-empty schemas unless `overwrite` is set.
 */
export async function restoreLogical(options: RestoreOptions): Promise<void> {
  const { manifest, target, storage } = options;
  const log = options.logger.child({ database: manifest.database, backup: manifest.id, target: target.name });
  const object = dataObject(manifest);

  const occupied = await withConnection(target.name, target.connection, async (db) =>
    nonEmptySchemas(manifest.schemas, await countTables(db, manifest.schemas)),
  );
  if (occupied.length > 0 && !options.overwrite) {
    throw new AgentError(
      'refused',
      `restore into ${target.name}: schema${occupied.length > 1 ? 's' : ''} ${occupied.join(', ')} already hold${occupied.length > 1 ? '' : 's'} tables`,
      { hint: 'pass --yes to restore over them (tables in the backup are dropped and recreated), or --target another database entry' },
    );
  }

  const client = await locateTool(options.config.tools.client, ['mariadb', 'mysql'], 'tools.client');
  log.info({ schemas: manifest.schemas, sizeBytes: object.sizeBytes }, 'restore started');
  await withDefaultsFile(target.connection, client.flavor, async (defaultsFile) => {
    const args = [`--defaults-file=${defaultsFile}`, '--batch', '--max-allowed-packet=1G', '--default-character-set=utf8mb4'];
    if (options.skipBinlog) args.push('--init-command=SET sql_log_bin=0');
    const cancel = new AbortController();
    options.signal?.addEventListener('abort', () => cancel.abort(options.signal?.reason), { once: true });
    const tool = startTool(client.path, args, { stdin: 'pipe', stdout: 'ignore', signal: cancel.signal });
    const source = await openVerified(storage, object, {
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      signal: cancel.signal,
    }).catch((err: unknown) => {
      cancel.abort(err);
      throw err;
    });
    const feed = pipeline(source, createDecompressor(object.compression), tool.stdin).catch((err: unknown) => {
      // The client died or the read failed: stop the other side.
      cancel.abort(err);
      throw err;
    });
    const [fed, exited] = await Promise.allSettled([feed, tool.done]);
    if (exited.status === 'rejected' && (fed.status === 'fulfilled' || isBrokenPipe(fed.reason))) {
      throw new AgentError('tool', `restore into ${target.name}: ${messageOf(exited.reason)}`, {
        hint: 'the SQL client stopped at the statement above; the schema may be partly restored',
        cause: exited.reason,
      });
    }
    if (fed.status === 'rejected') {
      const err = fed.reason as unknown;
      if (err instanceof AgentError) throw err;
      throw new AgentError('storage', `restore into ${target.name}: read backup ${manifest.id}: ${messageOf(err)}`, { cause: err });
    }
  });
  log.info('restore completed');
}

function isBrokenPipe(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  return code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE';
}
