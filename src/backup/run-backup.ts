import type { RowDataPacket } from 'mysql2/promise';
import type { Logger } from 'pino';
import { dumpKey, newBackupId } from '../catalog/keys.ts';
import type { BinlogCoordinates, Manifest } from '../catalog/manifest.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { buildDumpArgs } from '../capture/dump.ts';
import { COORDINATES_HEAD_BYTES, CoordinatesScanner } from '../capture/dump-coordinates.ts';
import { listUserSchemas, readServerInfo, withConnection, type ServerInfo } from '../capture/server.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError } from '../errors.ts';
import type { ListOptions } from '../catalog/listing.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { takeBackupLease } from './backup-lease.ts';
import { buildManifest, captureToStorage, checkStorage, commitOrRemove } from './capture.ts';
import { dataExtension, encryptionOf, recordOf } from '../pipeline/encryption.ts';
import { takeTableFigures, type FiguresResult } from './table-figures.ts';

export interface BackupContext {
  /** prune.lock_ttl is also the TTL of the backup's lease. */
  config: Pick<AgentConfig, 'tools' | 'prune'>;
  database: DatabaseConfig;
  storage: StorageDriver;
  trigger: Manifest['trigger'];
  logger: Logger;
  signal?: AbortSignal;
  now?: () => Date;
  /** How to read the catalog (an incremental's parent): the manifest cache, when there is one. */
  catalog?: ListOptions;
}

async function resolveSchemas(database: DatabaseConfig, found: () => Promise<string[]>): Promise<string[]> {
  const schemas = database.schemas ?? (await found());
  if (schemas.length === 0) {
    throw new AgentError('database', `back up database ${database.name}: the server has no user schema to back up`, {
      hint: 'create a schema, or list the ones to back up under schemas:',
    });
  }
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

  // Independent checks, side by side: each is a round trip (server, `--version`, store).
  const [{ server, schemas }, tool, encrypt] = await Promise.all([
    withConnection(database.name, database.connection, async (db) => {
      const info: ServerInfo = await readServerInfo(db);
      return { server: info, schemas: await resolveSchemas(database, () => listUserSchemas(db, database.excludeSchemas)) };
    }),
    locateTool(ctx.config.tools.dump, ['mariadb-dump', 'mysqldump'], 'tools.dump'),
    encryptionOf(database.encryption, ctx.config.tools.age),
    checkStorage(storage, database.name),
  ]);
  const key = dumpKey(database.name, id, dataExtension(database.compression, encrypt));
  const wantCoordinates = database.dump.binlog_coordinates === 'auto' && server.binlogEnabled;
  log.info({ schemas, tool: tool.versionLine, server: server.version, storage: storage.location }, 'backup started');

  // The lease first: from now on prune spares this backup's objects and uploads.
  const lease = await takeBackupLease({ storage, database: database.name, id, type: 'dump', ttlMs: ctx.config.prune.lock_ttl, log });
  // Closes the figures' session when the dump fails: no full read goes on for a backup that is not.
  const figuresCancel = new AbortController();
  try {
    const signal = ctx.signal ? AbortSignal.any([ctx.signal, lease.signal]) : lease.signal;
    // verify.record_figures: a snapshot of its own, opened as soon as the dump has written its
    // snapshot's position (so it is at or after the dump's point, equal when nothing committed
    // in between), read while the dump streams.
    let figures: Promise<FiguresResult> | undefined;
    const takeFigures = () => {
      figures = takeTableFigures({ database: database.name, connection: database.connection, schemas, logger: log, signal: figuresCancel.signal, now });
    };
    const scanner = new CoordinatesScanner(database.verify.record_figures && wantCoordinates ? { onPosition: takeFigures } : {});
    if (database.verify.record_figures && !wantCoordinates) {
      log.warn('verify.record_figures is set but the dump records no binlog coordinates (binary logging is off): no table figures recorded');
    }
    const stream = await withDefaultsFile(database.connection, tool.flavor, async (defaultsFile) => {
      const args = buildDumpArgs({
        defaultsFile,
        tool,
        schemas,
        binlogCoordinates: wantCoordinates,
        extraArgs: database.dump.extra_args,
      });
      return captureToStorage(
        { database: database.name, storage, compression: database.compression, encrypt, signal },
        // The coordinates need only the dump's head: the dump may go straight into zstd (the GTID at its end is asked of the server below).
        { file: tool.path, args, key, log, action: `dump database ${database.name}`, inspect: scanner, inspectHeadBytes: COORDINATES_HEAD_BYTES, hint: dumpHint },
      );
    });

    const recorded = figures ? await figures : undefined;
    if (recorded && !recorded.figures) log.warn({ reason: recorded.reason }, 'table figures not recorded');
    if (database.verify.record_figures && wantCoordinates && !figures) log.warn('table figures not recorded: the dump wrote no binlog position in its head');
    const completedAt = now();
    const manifest = buildManifest({
      id,
      database: database.name,
      type: 'dump',
      ...(recorded?.figures ? { figures: recorded.figures } : {}),
      trigger: ctx.trigger,
      startedAt,
      completedAt,
      compression: database.compression,
      encryption: encrypt ? recordOf(encrypt) : undefined,
      key,
      stream,
      schemas,
      binlog: await withGtid(scanner.coordinates(), database, server, log),
      server,
      tool,
    });
    if (wantCoordinates && !manifest.binlog) {
      log.warn('binary logging is on but the dump recorded no binlog coordinates');
    }

    await commitOrRemove(storage, manifest, log, () => lease.confirm());
    log.info(
      { sizeBytes: manifest.sizeBytes, rawSizeBytes: manifest.rawSizeBytes, durationMs: completedAt.getTime() - startedAt.getTime() },
      'backup completed',
    );
    return manifest;
  } finally {
    figuresCancel.abort();
    await lease.end();
  }
}

function dumpHint(stderr: string): string {
  if (/Access denied/i.test(stderr)) return 'check user and password of this database entry, and the grants listed in README';
  if (/Unknown database/i.test(stderr)) return 'a schema listed under schemas: does not exist on the server';
  return 'the output of the dump tool above says what went wrong';
}

/**
 * The GTID of the dump's binlog position on a MariaDB server, when the dump's head did not carry
 * it: mariadb-dump writes it at the very end of the dump, which the agent does not read when the
 * dump goes straight into zstd. It asks the server what mariadb-dump asks it,
 * `BINLOG_GTID_POS(file, position)` of the snapshot's position, so the value is the same. A
 * server that cannot answer leaves the GTID unknown (logged), as a dump without one would.
 */
async function withGtid(coordinates: BinlogCoordinates | null, database: DatabaseConfig, server: ServerInfo, log: Logger): Promise<BinlogCoordinates | null> {
  if (!coordinates || coordinates.gtid !== null || server.flavor !== 'mariadb') return coordinates;
  try {
    const gtid = await withConnection(database.name, database.connection, async (db) => {
      const [rows] = await db.query<RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [coordinates.file, coordinates.position]);
      const value: unknown = rows[0]?.['gtid'];
      return typeof value === 'string' && value !== '' ? value : null;
    });
    return { ...coordinates, gtid };
  } catch (err) {
    log.warn({ error: err instanceof Error ? err.message : String(err), file: coordinates.file, position: coordinates.position }, "could not read the GTID of the dump's binlog position");
    return coordinates;
  }
}
