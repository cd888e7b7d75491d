import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { text } from 'node:stream/consumers';
import { z } from 'zod';
import { withConnection } from '../capture/server.ts';
import type { DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { bufferBody } from '../storage/buffer-body.ts';
import { StorageNotFoundError } from '../storage/driver.ts';
import { AGENT_VERSION } from '../version.ts';
import { binlogName, binlogPrefix } from './segments.ts';

/**
 * "The archive is complete through <time>" (Litestream-style), so that an idle server can be
 * restored to now, not only to its last event. One small object per database, overwritten:
 *
 *   <database>/binlog/complete-through.json
 *
 * The capture writes it at most once per `binlog.complete_mark_interval` (default 90 s: with the binlog writer lease refreshed every 200 s, an idle capture stays under 60 requests an hour), only
 * while the tool is connected, every byte it fetched is archived, and the server itself reports
 * its binlog end (SHOW MASTER STATUS) at exactly the archived end. `through` is one second before
 * the server's clock at that query: every event the server stamped at or before it was written
 * before the query, so it is in the archive (stamps have 1-second resolution). The key is outside
 * the segment layout: older agents, listings and prune leave it alone.
 */

export const COMPLETE_FORMAT = 'backup-agent/binlog-complete';

export const completeMarkerSchema = z.object({
  format: z.literal(COMPLETE_FORMAT),
  version: z.literal(1),
  database: z.string(),
  /** The archived end the server confirmed: a segment end in the archive. */
  file: binlogName,
  position: z.number().int().nonnegative(),
  /** Every event stamped at or before this time is archived up to file:position. */
  through: z.iso.datetime(),
  writtenAt: z.iso.datetime(),
  agent: z.object({ version: z.string(), hostname: z.string() }),
});

export type CompleteMarker = z.infer<typeof completeMarkerSchema>;

export function completeMarkerKey(database: string): string {
  return `${binlogPrefix(database)}complete-through.json`;
}

/** Pure: the marker's time from the server's clock (whole seconds) read with its binlog end. */
export function completeThrough(serverSeconds: number): Date {
  return new Date((serverSeconds - 1) * 1000);
}

/** The server's clock (whole seconds) and binlog end, read in one session, clock first. */
export async function serverBinlogEnd(database: DatabaseConfig): Promise<{ seconds: number; file: string; position: number } | undefined> {
  return withConnection(database.name, database.connection, async (db) => {
    const [clock] = await db.query('SELECT UNIX_TIMESTAMP() AS now');
    const [status] = await db.query('SHOW MASTER STATUS');
    const row = (status as { File?: string; Position?: number | string }[])[0];
    const seconds = Number((clock as { now: number | string }[])[0]?.now);
    if (!row?.File || row.Position === undefined || !Number.isFinite(seconds)) return undefined;
    return { seconds, file: row.File, position: Number(row.Position) };
  });
}

export async function writeCompleteMarker(storage: StorageDriver, marker: Omit<CompleteMarker, 'format' | 'version' | 'agent'>): Promise<void> {
  const body: CompleteMarker = { format: COMPLETE_FORMAT, version: 1, ...marker, agent: { version: AGENT_VERSION, hostname: hostname() } };
  await storage.put(completeMarkerKey(marker.database), bufferBody(`${JSON.stringify(body, null, 2)}\n`), { contentType: 'application/json' });
}

/**
 * The marker of `database`: absent → {}; unreadable or invalid → `problem` (it only ever extends
 * the recoverable time, so a bad one is reported and not used, never trusted).
 */
export async function readCompleteMarker(storage: StorageDriver, database: string): Promise<{ marker?: CompleteMarker; problem?: string }> {
  const key = completeMarkerKey(database);
  let body: string;
  try {
    body = await text(await storage.get(key));
  } catch (err) {
    if (err instanceof StorageNotFoundError) return {};
    return { problem: `read ${key}: ${messageOf(err)}` };
  }
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    return { problem: `${key} is not JSON: ${messageOf(err)}` };
  }
  const parsed = completeMarkerSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { problem: `${key} is invalid at ${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'unknown'}` };
  }
  if (parsed.data.database !== database) return { problem: `${key} names database ${parsed.data.database}` };
  return { marker: parsed.data };
}

/**
 * The archive holds everything up to `file:offset` and the tool has nothing more: if the server
 * confirms that is its binlog end, record that the archive is complete through (about) now.
 * Returns the marker written, or undefined when the server is elsewhere or cannot be asked (logged:
 * it only delays the marker). A failed write rejects: on an idle server it is the only request
 * that can reveal a storage outage, so the capture reports it like a failed upload.
 */
export async function markComplete(
  options: { database: DatabaseConfig; storage: StorageDriver; now?: () => Date },
  log: Logger,
  file: string,
  offset: number,
): Promise<Pick<CompleteMarker, 'file' | 'position' | 'through'> | undefined> {
  const { database, storage } = options;
  let end: Awaited<ReturnType<typeof serverBinlogEnd>>;
  try {
    end = await serverBinlogEnd(database);
  } catch (err) {
    log.warn({ error: messageOf(err) }, 'cannot ask the server for its binlog end; no complete-through marker until the next interval');
    return undefined;
  }
  if (!end || end.file !== file || end.position !== offset) {
    log.debug({ file, offset, server: end }, 'binlog capture not caught up with the server: no complete-through marker');
    return undefined;
  }
  const marker = { database: database.name, file, position: offset, through: completeThrough(end.seconds).toISOString(), writtenAt: (options.now ?? (() => new Date()))().toISOString() };
  await writeCompleteMarker(storage, marker);
  return marker;
}
