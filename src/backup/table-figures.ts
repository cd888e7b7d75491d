import type mysql from 'mysql2/promise';
import type { Logger } from 'pino';
import type { TableFigures } from '../catalog/manifest.ts';
import { listUserSchemas, withConnection } from '../capture/server.ts';
import type { Connection } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { quoteIdentifier } from '../restore/verify-datadir.ts';

/**
 * The figures `verify.record_figures` puts in a manifest: each InnoDB table's row count and
 * CHECKSUM TABLE … EXTENDED, read in one `START TRANSACTION WITH CONSISTENT SNAPSHOT` session,
 * with that snapshot's binlog position (MariaDB's binlog_snapshot_file/_position, the GTID from
 * BINLOG_GTID_POS). The caller opens the session right after the backup's own snapshot, so on a
 * server without commits in between the two positions are equal and the figures describe the
 * backup; otherwise the position says which point they describe and the restore test does not
 * compare them. Only InnoDB tables: a snapshot holds nothing else still (a MyISAM table is not
 * consistent in the dump either).
 */

export type FiguresResult = { figures: TableFigures } | { figures: undefined; reason: string };

export async function takeTableFigures(input: {
  database: string;
  connection: Connection;
  /** The schemas the backup holds; undefined: every user schema (a physical backup). */
  schemas: readonly string[] | undefined;
  logger: Logger;
  /** Aborted: the session is closed at once (the backup failed or was cancelled). */
  signal?: AbortSignal | undefined;
  now?: () => Date;
}): Promise<FiguresResult> {
  const now = input.now ?? (() => new Date());
  try {
    input.signal?.throwIfAborted();
    return await withConnection(input.database, input.connection, async (db) => {
      const close = () => db.destroy();
      input.signal?.addEventListener('abort', close, { once: true });
      try {
        return await readFigures(db, input, now);
      } finally {
        input.signal?.removeEventListener('abort', close);
      }
    });
  } catch (err) {
    return { figures: undefined, reason: input.signal?.aborted ? 'the backup ended before the figures were read' : messageOf(err) };
  }
}

async function readFigures(db: mysql.Connection, input: { schemas: readonly string[] | undefined; logger: Logger }, now: () => Date): Promise<FiguresResult> {
  await db.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
  await db.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  try {
    const at = await snapshotPosition(db);
    if (!at) return { figures: undefined, reason: 'the server reports no binlog position for a snapshot (binary logging off, or not MariaDB)' };
    const takenAt = now().toISOString();
    const tables: TableFigures['tables'] = [];
    const schemas = input.schemas ?? (await listUserSchemas(db));
    if (schemas.length > 0) {
      const [rows] = await db.query<mysql.RowDataPacket[]>(
        "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND engine = 'InnoDB' AND table_schema IN (?) ORDER BY table_schema, table_name",
        [schemas],
      );
      for (const row of rows) {
        const schema = String(row['s']);
        const table = String(row['t']);
        const name = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
        const [count] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${name}`);
        const [sum] = await db.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${name} EXTENDED`);
        const checksum: unknown = sum[0]?.['Checksum'];
        tables.push({ schema, table, rows: Number(count[0]?.['n']), checksum: checksum === null || checksum === undefined ? null : String(checksum as string) });
      }
    }
    input.logger.info({ at, tables: tables.length }, 'table figures recorded');
    return { figures: { method: 'consistent-snapshot', at, takenAt, tables } };
  } finally {
    await db.query('COMMIT');
  }
}

async function snapshotPosition(db: mysql.Connection): Promise<TableFigures['at'] | undefined> {
  const [status] = await db.query<mysql.RowDataPacket[]>("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const value = (name: string) => status.find((r) => String(r['Variable_name']).toLowerCase() === name)?.['Value'] as unknown;
  const file = value('binlog_snapshot_file');
  const position = value('binlog_snapshot_position');
  if (typeof file !== 'string' || file === '' || position === undefined) return undefined;
  const [gtid] = await db.query<mysql.RowDataPacket[]>('SELECT BINLOG_GTID_POS(?, ?) AS gtid', [file, Number(position)]);
  const text: unknown = gtid[0]?.['gtid'];
  return { file, position: Number(position), gtid: typeof text === 'string' && text !== '' ? text : null };
}
