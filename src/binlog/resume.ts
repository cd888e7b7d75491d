/**
 * Where a binlog capture (re)starts, read from the archive (after its last segment), else from
 * the newest backup's coordinates, else the server's current file; and what the archive holds of
 * a file already. Read-only: nothing here writes.
 */
import { withConnection } from '../capture/server.ts';
import { listBackups } from '../catalog/catalog.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { Logger } from 'pino';
import { describeBadName, isBinlogName } from './names.ts';
import { binlogPrefix, compareSegments, listSegments, parseSegmentKey, readSegment, type SegmentRef } from './segments.ts';

/** Where to (re)start: a file and the offset up to which it is archived. */
export interface ResumePoint {
  file: string;
  offset: number;
  /** Starting a file at 0: the file whose archived end the capture comes from, or null (a fresh start, a jump). */
  follows?: { file: string; end: number } | null;
}

/**
 * A binlog file name about to reach the spool path or the tool's argv: refused unless it has the
 * strict shape, whoever supplied it (the archive, a backup manifest, the server).
 */
export function checkedBinlogName(database: string, name: string, source: string): string {
  if (isBinlogName(name)) return name;
  throw new AgentError('integrity', `binlog capture of ${database}: ${source} names ${describeBadName(name)}`, {
    hint: 'nothing was written or deleted; inspect that object (or the server\'s log_bin setting)',
  });
}

/** Where capture starts: after the archive's last segment, else at the newest backup's binlog file, else the server's current file. */
export async function resumePoint(database: DatabaseConfig, storage: StorageDriver, log: Logger): Promise<ResumePoint> {
  const segments = await listSegments(storage, database.name);
  const last = segments.at(-1);
  if (last) {
    const manifest = await readSegment(storage, last);
    if (manifest.nextFile) return { file: manifest.nextFile, offset: 0, follows: { file: manifest.file, end: manifest.end } };
    return { file: manifest.file, offset: manifest.end };
  }
  const files = await withConnection(database.name, database.connection, async (db) => {
    const [rows] = await db.query('SHOW BINARY LOGS');
    return (rows as { Log_name: string }[]).map((r) => r.Log_name);
  }).catch((err: unknown) => {
    throw new AgentError('tool', `binlog capture of ${database.name}: list the server's binary logs: ${messageOf(err)}`, {
      hint: 'binary logging must be on (log_bin), and the account needs BINLOG MONITOR and REPLICATION SLAVE',
      cause: err,
    });
  });
  if (files.length === 0) throw new AgentError('config', `binlog capture of ${database.name}: the server has no binary logs (is log_bin on?)`);
  const { backups } = await listBackups(storage, database.name);
  const base = backups.find((b) => b.binlog && files.includes(b.binlog.file));
  const file = checkedBinlogName(database.name, base?.binlog?.file ?? (files.at(-1) as string), base ? `backup ${base.id}` : "the server's SHOW BINARY LOGS");
  log.info({ file, base: base?.id }, base ? 'binlog archive is empty: starting at the newest backup\'s binlog file' : 'binlog archive is empty: starting at the server\'s current binlog file');
  return { file, offset: 0 };
}

/** The archived part of `file`: where its contiguous segments from 0 end, and when the server created it. */
export async function archivedPart(storage: StorageDriver, database: string, file: string): Promise<{ end: number; fileCreatedAt: string } | undefined> {
  const refs: SegmentRef[] = [];
  for await (const object of storage.list(`${binlogPrefix(database)}${file}/`)) {
    const parsed = parseSegmentKey(object.key);
    if (parsed?.database === database && parsed.file === file) refs.push(parsed);
  }
  refs.sort(compareSegments);
  const first = refs[0];
  if (!first || first.start !== 0) return undefined;
  let end = 0;
  for (const r of refs) if (r.start === end) end = r.end;
  return { end, fileCreatedAt: (await readSegment(storage, first)).fileCreatedAt };
}

export async function oldestBinlog(database: DatabaseConfig): Promise<string> {
  return withConnection(database.name, database.connection, async (db) => {
    const [rows] = await db.query('SHOW BINARY LOGS');
    const first = (rows as { Log_name: string }[])[0];
    if (!first) throw new AgentError('config', `binlog capture of ${database.name}: the server has no binary logs`);
    return checkedBinlogName(database.name, first.Log_name, "the server's SHOW BINARY LOGS");
  });
}
