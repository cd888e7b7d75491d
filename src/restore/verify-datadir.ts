import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import { SYSTEM_SCHEMAS } from '../capture/server.ts';
import { AgentError, messageOf } from '../errors.ts';
import { startSandbox } from '../sandbox/mariadb-sandbox.ts';
import { privateTempDir } from '../capture/private-temp.ts';

/**
 * `restore --datadir … --verify` and `agent verify --depth restore`: a private throwaway server
 * (socket only, no grant checks, no binlog) on the restored data runs CHECK TABLE, CHECKSUM TABLE
 * … EXTENDED and a row count on every user table. It fails on what it can see is wrong: a schema
 * the backup lists that is absent, a table CHECK TABLE does not call OK, a NULL checksum (a table
 * the server cannot read), and a row count or checksum that differs from the figures recorded at
 * backup time, when such figures are given.
 */

export interface TableFacts {
  schema: string;
  table: string;
  /** CHECK TABLE's messages other than a final OK (empty when the table is OK). */
  problems: string[];
  /** CHECKSUM TABLE … EXTENDED; null when the server could not compute it. */
  checksum: string | null;
  /** SELECT COUNT(*); null when the server could not count (or it was not asked). */
  rows?: number | null;
}

/** A table's figures at backup time (manifest `figures`), keyed by `schema.table`. */
export interface RecordedTable {
  rows: number;
  checksum: string | null;
}

export interface Verification {
  /** `schema.table<TAB>checksum`, one per table. */
  lines: string[];
  failures: string[];
}

/** Identifiers quoted for SQL: backticks doubled (a table may be named `a b` or `x``y`). */
export const quoteIdentifier = (name: string): string => `\`${name.replace(/`/g, '``')}\``;

/** Pure: the verdict over what the server reported. `recorded`: `schema.table` → its figures at backup time. */
export function judge(input: {
  expectedSchemas: readonly string[];
  presentSchemas: readonly string[];
  tables: readonly TableFacts[];
  recorded?: ReadonlyMap<string, RecordedTable>;
}): Verification {
  const failures: string[] = [];
  const present = new Set(input.presentSchemas);
  for (const schema of input.expectedSchemas) if (!present.has(schema)) failures.push(`schema ${schema} of the backup is absent`);
  const lines: string[] = [];
  for (const t of input.tables) {
    const name = `${t.schema}.${t.table}`;
    lines.push(`${name}\t${t.checksum ?? 'NULL'}`);
    if (t.problems.length > 0) failures.push(`CHECK TABLE ${name}: ${t.problems.join('; ')}`);
    if (t.checksum === null) failures.push(`CHECKSUM TABLE ${name}: NULL (the server cannot read the table)`);
    const expected = input.recorded?.get(name);
    if (expected !== undefined && t.rows !== undefined && t.rows !== null && t.rows !== expected.rows) {
      failures.push(`${name}: ${t.rows} rows, ${expected.rows} at backup time`);
    }
    if (expected?.checksum != null && t.checksum !== null && t.checksum !== expected.checksum) {
      failures.push(`${name}: checksum ${t.checksum} differs from ${expected.checksum} recorded at backup time`);
    }
  }
  if (input.recorded) {
    const seen = new Set(input.tables.map((t) => `${t.schema}.${t.table}`));
    for (const name of input.recorded.keys()) if (!seen.has(name)) failures.push(`table ${name} recorded at backup time is absent`);
  }
  return { lines, failures };
}

export interface VerifyExpectations {
  schemas: readonly string[];
  recorded?: ReadonlyMap<string, RecordedTable>;
  /** Count the rows of every table too (one more read of each). */
  countRows?: boolean;
}

export async function verifyDatadir(datadir: string, expect: VerifyExpectations = { schemas: [] }): Promise<Verification> {
  const dir = await privateTempDir('verify');
  try {
    const server = await startSandbox({ dir, port: 0, existingDatadir: datadir, serverId: 4242, private: true });
    try {
      return await verifyServer(server.socket, datadir, expect);
    } finally {
      await server.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The checks over a running private server's socket (root, no grant checks); `what` names it in errors. */
export async function verifyServer(socketPath: string, what: string, expect: VerifyExpectations): Promise<Verification> {
  try {
    const db = await mysql.createConnection({ socketPath, user: 'root', supportBigNumbers: true, bigNumberStrings: true });
    try {
      const facts = await readFacts(db, expect.countRows ?? false);
      return judge({ expectedSchemas: expect.schemas, ...facts, ...(expect.recorded ? { recorded: expect.recorded } : {}) });
    } finally {
      await db.end().catch(() => db.destroy());
    }
  } catch (err) {
    if (err instanceof AgentError) throw err;
    throw new AgentError('database', `verify ${what}: ${messageOf(err)}`, { cause: err });
  }
}

async function readFacts(db: mysql.Connection, countRows: boolean): Promise<{ presentSchemas: string[]; tables: TableFacts[] }> {
  const [schemaRows] = await db.query<mysql.RowDataPacket[]>('SELECT schema_name AS s FROM information_schema.schemata');
  const [tableRows] = await db.query<mysql.RowDataPacket[]>(
    "SELECT table_schema AS s, table_name AS t FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN (?) ORDER BY table_schema, table_name",
    [SYSTEM_SCHEMAS],
  );
  const tables: TableFacts[] = [];
  for (const row of tableRows) {
    const schema = String(row['s']);
    const table = String(row['t']);
    const name = `${quoteIdentifier(schema)}.${quoteIdentifier(table)}`;
    // A table the server cannot open makes these statements fail: that is a finding, not a crash.
    const problems: string[] = [];
    try {
      const [check] = await db.query<mysql.RowDataPacket[]>(`CHECK TABLE ${name}`);
      const last = check.at(-1);
      const ok = last !== undefined && String(last['Msg_type']) === 'status' && String(last['Msg_text']) === 'OK';
      if (!ok) problems.push(...check.filter((r) => String(r['Msg_text']) !== 'OK').map((r) => `${String(r['Msg_type'])}: ${String(r['Msg_text'])}`));
    } catch (err) {
      problems.push(messageOf(err));
    }
    let checksum: unknown = null;
    try {
      const [sum] = await db.query<mysql.RowDataPacket[]>(`CHECKSUM TABLE ${name} EXTENDED`);
      checksum = sum[0]?.['Checksum'];
    } catch (err) {
      problems.push(messageOf(err));
    }
    let rows: number | null | undefined;
    if (countRows) {
      try {
        const [count] = await db.query<mysql.RowDataPacket[]>(`SELECT COUNT(*) AS n FROM ${name}`);
        rows = Number(count[0]?.['n']);
      } catch (err) {
        rows = null;
        problems.push(messageOf(err));
      }
    }
    tables.push({ schema, table, problems, checksum: checksum === null || checksum === undefined ? null : String(checksum as string), ...(rows === undefined ? {} : { rows }) });
  }
  return { presentSchemas: schemaRows.map((r) => String(r['s'])), tables };
}
