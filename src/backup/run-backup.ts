import { hostname } from 'node:os';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Logger } from 'pino';
import { databasePrefix, dumpKey, newBackupId } from '../catalog/keys.ts';
import { commitManifest } from '../catalog/catalog.ts';
import { MANIFEST_FORMAT, MANIFEST_VERSION, type Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { buildDumpArgs } from '../capture/dump.ts';
import { CoordinatesScanner } from '../capture/dump-coordinates.ts';
import { listUserSchemas, readServerInfo, withConnection, type ServerInfo } from '../capture/server.ts';
import { startTool, ToolError } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { compressionExtension, createCompressor } from '../pipeline/compress.ts';
import { CountingStream, DigestStream } from '../pipeline/digest.ts';
import { ExitGate } from '../pipeline/exit-gate.ts';
import { Rechunk } from '../pipeline/rechunk.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { describeStorageError, storageHintOption } from '../storage/errors.ts';
import { AGENT_VERSION } from '../version.ts';

export interface BackupContext {
  config: Pick<AgentConfig, 'tools'>;
  database: DatabaseConfig;
  storage: StorageDriver;
  trigger: Manifest['trigger'];
  logger: Logger;
  signal?: AbortSignal;
  now?: () => Date;
}

async function resolveSchemas(database: DatabaseConfig, found: () => Promise<string[]>): Promise<string[]> {
  const schemas = database.schemas ?? (await found());
  if (schemas.length === 0) {
    throw new AgentError('database', `back up database ${database.name}: the server has no user schema to back up`, {
      hint: 'create a schema, or list the ones to back up under schemas:',
    });
  }
  const bad = schemas.find((s) => s.startsWith('-'));
  if (bad) throw new AgentError('config', `back up database ${database.name}: schema name "${bad}" cannot start with "-"`);
  return schemas;
}

/**
 * Takes one logical backup: mariadb-dump → count → coordinates scan → compress → exit gate →
 * SHA-256 → storage, all streaming; then commits the manifest. On any failure the data object is
 * removed and no manifest is written, so the backup never appears.
 */
export async function runLogicalBackup(ctx: BackupContext): Promise<Manifest> {
  const { database, storage } = ctx;
  const now = ctx.now ?? (() => new Date());
  const startedAt = now();
  const id = newBackupId(startedAt);
  const log = ctx.logger.child({ database: database.name, backup: id, type: 'dump' });
  const key = dumpKey(database.name, id, compressionExtension(database.compression.algorithm));

  const { server, schemas } = await withConnection(database.name, database.connection, async (db) => {
    const info: ServerInfo = await readServerInfo(db);
    return { server: info, schemas: await resolveSchemas(database, () => listUserSchemas(db, database.excludeSchemas)) };
  });
  const tool = await locateTool(ctx.config.tools.dump, ['mariadb-dump', 'mysqldump'], 'tools.dump');
  await checkStorage(storage, database.name);
  const wantCoordinates = database.dump.binlog_coordinates === 'auto' && server.binlogEnabled;
  log.info({ schemas, tool: tool.versionLine, server: server.version, storage: storage.location }, 'backup started');

  const stream = await withDefaultsFile(database.connection, tool.flavor, async (defaultsFile) => {
    const args = buildDumpArgs({
      defaultsFile,
      tool,
      schemas,
      binlogCoordinates: wantCoordinates,
      extraArgs: database.dump.extra_args,
    });
    return captureToStorage(ctx, tool.path, args, key, log);
  });

  const completedAt = now();
  const manifest: Manifest = {
    format: MANIFEST_FORMAT,
    version: MANIFEST_VERSION,
    id,
    database: database.name,
    type: 'dump',
    trigger: ctx.trigger,
    status: 'completed',
    startedAt: startedAt.toISOString(),
    completedAt: completedAt.toISOString(),
    sizeBytes: stream.sizeBytes,
    rawSizeBytes: stream.rawSizeBytes,
    compression: database.compression,
    encryption: null,
    schemas,
    objects: [
      {
        key,
        role: 'data',
        sizeBytes: stream.sizeBytes,
        sha256: stream.sha256,
        compression: database.compression.algorithm,
        rawSizeBytes: stream.rawSizeBytes,
      },
    ],
    binlog: stream.coordinates,
    server: { flavor: server.flavor, version: server.version, serverId: server.serverId, hostname: server.hostname },
    tool: { name: tool.name, version: tool.versionLine },
    agent: { version: AGENT_VERSION, hostname: hostname() },
  };
  if (wantCoordinates && !manifest.binlog) {
    log.warn('binary logging is on but the dump recorded no binlog coordinates');
  }

  try {
    await commitManifest(storage, manifest);
  } catch (err) {
    await removeQuietly(storage, key, log);
    throw new AgentError('storage', `commit manifest of backup ${id} to ${storage.location}: ${describeStorageError(err)}`, {
      ...storageHintOption(err),
      cause: err,
    });
  }
  log.info(
    { sizeBytes: manifest.sizeBytes, rawSizeBytes: manifest.rawSizeBytes, durationMs: completedAt.getTime() - startedAt.getTime() },
    'backup completed',
  );
  return manifest;
}

/**
 * Fails fast when the storage is unreachable, rejects the credentials or lacks the bucket, before
 * a dump of possibly hours starts (a store is otherwise first contacted when the first part fills).
 */
async function checkStorage(storage: StorageDriver, database: string): Promise<void> {
  try {
    for await (const _ of storage.list(databasePrefix(database))) break;
  } catch (err) {
    throw new AgentError('storage', `reach storage ${storage.location} of database ${database}: ${describeStorageError(err)}`, {
      ...storageHintOption(err),
      cause: err,
    });
  }
}

interface CapturedStream {
  sizeBytes: number;
  rawSizeBytes: number;
  sha256: string;
  coordinates: Manifest['binlog'];
}

async function removeQuietly(storage: StorageDriver, key: string, log: Logger): Promise<void> {
  try {
    await storage.delete(key);
  } catch (err) {
    log.error({ err, key }, 'could not remove the partial data object; it is not part of any backup');
  }
}

/** Runs the tool and streams its output into `key`. Success = stream stored AND tool exited 0. */
async function captureToStorage(
  ctx: BackupContext,
  file: string,
  args: string[],
  key: string,
  log: Logger,
): Promise<CapturedStream> {
  const cancel = new AbortController();
  const onOuterAbort = () => cancel.abort(ctx.signal?.reason);
  ctx.signal?.addEventListener('abort', onOuterAbort, { once: true });
  if (ctx.signal?.aborted) onOuterAbort();

  const tool = startTool(file, args, { signal: cancel.signal });
  const raw = new CountingStream();
  const scanner = new CoordinatesScanner();
  const digest = new DigestStream();
  const body = new PassThrough();
  const chain = pipeline(
    tool.stdout,
    // 1 MiB blocks first: every later stage then handles 16× fewer chunks.
    new Rechunk(),
    raw,
    scanner,
    createCompressor(ctx.database.compression),
    new ExitGate(tool.done),
    digest,
    body,
  );

  const put = ctx.storage.put(key, body, { signal: cancel.signal, contentType: 'application/octet-stream' }).catch((err: unknown) => {
    // The store gave up (or passed on the tool's failure): stop the tool and the chain so
    // nothing waits on a reader that is gone.
    cancel.abort(err);
    body.destroy(err instanceof Error ? err : new Error(String(err)));
    throw err;
  });

  const [toolResult, chainResult, putResult] = await Promise.allSettled([tool.done, chain, put]);
  ctx.signal?.removeEventListener('abort', onOuterAbort);
  if (toolResult.status === 'fulfilled' && chainResult.status === 'fulfilled' && putResult.status === 'fulfilled') {
    return { sizeBytes: digest.bytes, rawSizeBytes: raw.bytes, sha256: digest.sha256, coordinates: scanner.coordinates() };
  }

  await removeQuietly(ctx.storage, key, log);
  throw explainFailure(ctx, toolResult, chainResult, putResult);
}

/**
 * Reports the cause, not its echoes. The exit gate hands the tool's own error down the chain, so
 * the store may reject with it: that is a tool failure. A store failure of its own kills the tool
 * (SIGTERM), and then the store's error is the cause.
 */
function explainFailure(
  ctx: BackupContext,
  toolResult: PromiseSettledResult<void>,
  chainResult: PromiseSettledResult<void>,
  putResult: PromiseSettledResult<unknown>,
): AgentError {
  const name = ctx.database.name;
  if (ctx.signal?.aborted) {
    const reason: unknown = ctx.signal.reason;
    return new AgentError('internal', `backup of ${name} cancelled${reason === undefined ? '' : `: ${messageOf(reason)}`}`, { cause: reason });
  }
  const toolError = toolResult.status === 'rejected' ? (toolResult.reason as unknown) : undefined;
  const putError = putResult.status === 'rejected' ? (putResult.reason as unknown) : undefined;
  const storageFailed = putError !== undefined && !(putError instanceof ToolError);
  if (toolError !== undefined && !storageFailed) {
    return new AgentError('tool', `dump database ${name}: ${messageOf(toolError)}`, { hint: toolHint(toolError), cause: toolError });
  }
  const err = putError ?? (chainResult.status === 'rejected' ? chainResult.reason : undefined);
  return new AgentError('storage', `upload backup of ${name} to ${ctx.storage.location}: ${describeStorageError(err)}`, {
    ...storageHintOption(err),
    cause: err,
  });
}

function toolHint(err: unknown): string {
  const stderr = err instanceof ToolError ? err.stderr : '';
  if (/Access denied/i.test(stderr)) return 'check user and password of this database entry, and the grants listed in README';
  if (/Unknown database/i.test(stderr)) return 'a schema listed under schemas: does not exist on the server';
  return 'the output of the dump tool above says what went wrong';
}
