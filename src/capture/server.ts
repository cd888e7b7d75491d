import { readFileSync } from 'node:fs';
import type mysql from 'mysql2/promise';
import type { Connection } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';

/** Facts about a database server, read over a SQL connection (mysql2) before a backup or restore. */
export interface ServerInfo {
  flavor: 'mariadb' | 'mysql';
  version: string;
  serverId: number;
  hostname: string;
  binlogEnabled: boolean;
}

/** Schemas that belong to the server, not to the application; never backed up by default. */
export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

export function describeConnection(connection: Connection): string {
  return connection.socket ?? `${connection.host ?? '127.0.0.1'}:${connection.port}`;
}

function sslOptions(connection: Connection): mysql.ConnectionOptions['ssl'] {
  const tls = connection.tls;
  if (!tls || tls.mode === 'disabled') return undefined;
  const read = (path: string | undefined) => (path ? readFileSync(path) : undefined);
  const ca = read(tls.ca_file);
  const cert = read(tls.cert_file);
  const key = read(tls.key_file);
  return {
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    rejectUnauthorized: tls.mode !== 'required',
    ...(tls.mode === 'verify_ca' ? { checkServerIdentity: () => undefined } : {}),
  };
}

function connectionHint(err: unknown): string | undefined {
  const code = (err as { code?: string }).code;
  if (code === 'ER_ACCESS_DENIED_ERROR') return 'check user and password (or password_file) of this database entry';
  if (code === 'ECONNREFUSED' || code === 'ENOENT') return 'is the server running, and are host/port or socket right?';
  if (code === 'ETIMEDOUT') return 'the server did not answer in time: check host, port and firewalls';
  return undefined;
}

export async function openConnection(database: string, connection: Connection): Promise<mysql.Connection> {
  // Imported here, not at the top: commands that never connect (list, --version) skip loading it.
  const { createConnection } = (await import('mysql2/promise')).default;
  try {
    return await createConnection({
      ...(connection.socket ? { socketPath: connection.socket } : { host: connection.host ?? '127.0.0.1', port: connection.port }),
      user: connection.user,
      ...(connection.password ? { password: connection.password.reveal() } : {}),
      ssl: sslOptions(connection),
      connectTimeout: 10_000,
      multipleStatements: false,
      supportBigNumbers: true,
      bigNumberStrings: true,
    });
  } catch (err) {
    const hint = connectionHint(err);
    throw new AgentError('database', `connect to database ${database} (${describeConnection(connection)}): ${messageOf(err)}`, {
      ...(hint ? { hint } : {}),
      cause: err,
    });
  }
}

/** Runs `fn` with an open connection and always closes it. */
export async function withConnection<T>(
  database: string,
  connection: Connection,
  fn: (db: mysql.Connection) => Promise<T>,
): Promise<T> {
  const db = await openConnection(database, connection);
  try {
    return await fn(db);
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('database', `query database ${database}: ${messageOf(err)}`, { cause: err });
  } finally {
    await db.end().catch(() => db.destroy());
  }
}

/** The server's data directory (for mariadb-backup on the same host or a sidecar mounting it). */
export async function readDatadir(db: mysql.Connection): Promise<string> {
  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT @@datadir AS datadir');
  return String(rows[0]?.['datadir'] ?? '');
}

export async function readServerInfo(db: mysql.Connection): Promise<ServerInfo> {
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT VERSION() AS version, @@version_comment AS comment, @@server_id AS server_id, @@hostname AS hostname, @@log_bin AS log_bin',
  );
  const row = rows[0];
  if (!row) throw new Error('server returned no row for its version');
  const version = String(row['version']);
  return {
    flavor: /mariadb/i.test(`${version} ${String(row['comment'])}`) ? 'mariadb' : 'mysql',
    version,
    serverId: Number(row['server_id']),
    hostname: String(row['hostname']),
    binlogEnabled: Number(row['log_bin']) === 1,
  };
}

/** Every schema on the server minus the system ones and `exclude`, sorted. */
export async function listUserSchemas(db: mysql.Connection, exclude: readonly string[] = []): Promise<string[]> {
  const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT schema_name AS name FROM information_schema.schemata');
  const skip = new Set([...SYSTEM_SCHEMAS, ...exclude]);
  return rows.map((r) => String(r['name'])).filter((name) => !skip.has(name)).sort();
}

/** Number of tables and views in each of `schemas` that exists on the server. */
export async function countTables(db: mysql.Connection, schemas: readonly string[]): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  if (schemas.length === 0) return counts;
  const [rows] = await db.query<mysql.RowDataPacket[]>(
    'SELECT table_schema AS name, COUNT(*) AS n FROM information_schema.tables WHERE table_schema IN (?) GROUP BY table_schema',
    [schemas],
  );
  for (const row of rows) counts.set(String(row['name']), Number(row['n']));
  return counts;
}
