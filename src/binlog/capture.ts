import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { listBackups } from '../catalog/catalog.ts';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { withConnection } from '../capture/server.ts';
import { startTool, type ToolProcess } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { compressionExtension, createCompressor } from '../pipeline/compress.ts';
import { DigestStream } from '../pipeline/digest.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { AGENT_VERSION } from '../version.ts';
import { EventScanner, EventType, formatGtidPosition, type BinlogEvent, type GtidPosition } from './events.ts';
import {
  binlogPrefix,
  commitSegment,
  compareFiles,
  compareSegments,
  listSegments,
  parseSegmentKey,
  readSegment,
  segmentDataKey,
  splitBinlogName,
  type SegmentManifest,
  type SegmentRef,
} from './segments.ts';

/**
 * Binlog capture: a supervised `mariadb-binlog --read-from-remote-server --raw --stop-never`
 * writes the server's binlog files, byte for byte, into a spool directory; this loop tails them,
 * finds event boundaries, and uploads segments (size or age, whichever first; nothing when idle):
 * data object, then the segment manifest. When the tool exits (server restart, network), it is
 * started again on the file being archived — which it fetches whole — and the tail resumes at the
 * last archived position: no gap, no duplicate. Resuming after an agent restart reads the
 * position from the archive itself.
 */

export interface CaptureOptions {
  config: AgentConfig;
  database: DatabaseConfig;
  storage: StorageDriver;
  logger: Logger;
  signal: AbortSignal;
  /** Called after each committed segment (metrics, status). */
  onSegment?: (segment: SegmentManifest) => void;
  /** Called when the capture has archived everything the tool wrote so far (caught up) or falls behind. */
  onState?: (state: CaptureState) => void;
  pollMs?: number;
  now?: () => Date;
}

export interface CaptureState {
  connected: boolean;
  /** Bytes written by the tool but not yet archived. */
  pendingBytes: number;
  /** Server time of the last archived event. */
  lastEventAt: Date | undefined;
  file: string | undefined;
  position: number | undefined;
}

/** Where to (re)start: a file and the offset up to which it is archived. */
interface ResumePoint {
  file: string;
  offset: number;
  /** Starting a file at 0: the file whose archived end the capture comes from, or null (a fresh start, a jump). */
  follows?: { file: string; end: number } | null;
}

/**
 * A segment being assembled: its byte range and what its manifest says, folded in event by event,
 * so memory stays O(segments), not O(events), however many small events are pending.
 */
export interface SegmentDraft {
  start: number;
  end: number;
  firstTimestamp: number;
  lastTimestamp: number;
  first: GtidPosition;
  last: GtidPosition;
  transactions: number;
  nextFile: string | null;
  /** When its first event arrived (agent clock): the age that cuts it. */
  since: number;
}

/**
 * Pure: folds events into drafts of at most `limit` bytes (a single larger event gets a draft of
 * its own). Returns the drafts closed by size; `open` is the one still filling.
 */
export class DraftBuilder {
  readonly #limit: number;
  open: SegmentDraft | undefined;
  #offset: number;

  constructor(offset: number, limit: number) {
    this.#offset = offset;
    this.#limit = limit;
  }

  /** Bytes fetched and framed but not yet in a committed segment start here. */
  get offset(): number {
    return this.#offset;
  }

  add(event: BinlogEvent, now: number): SegmentDraft | undefined {
    let closed: SegmentDraft | undefined;
    if (this.open && event.end - this.open.start > this.#limit) closed = this.close();
    const draft = (this.open ??= {
      start: this.#offset,
      end: this.#offset,
      firstTimestamp: event.timestamp,
      lastTimestamp: event.timestamp,
      first: new Map(),
      last: new Map(),
      transactions: 0,
      nextFile: null,
      since: now,
    });
    draft.end = event.end;
    draft.lastTimestamp = event.timestamp;
    if (event.gtid) {
      draft.transactions++;
      if (!draft.first.has(event.gtid.domain)) draft.first.set(event.gtid.domain, event.gtid);
      draft.last.set(event.gtid.domain, event.gtid);
    }
    if (event.rotateTo !== undefined) draft.nextFile = event.rotateTo;
    return closed;
  }

  close(): SegmentDraft | undefined {
    const draft = this.open;
    this.open = undefined;
    if (draft) this.#offset = draft.end;
    return draft;
  }
}

/** The replica server id of the capture connection: configured, or derived from the entry name. */
export function captureServerId(database: DatabaseConfig): number {
  if (database.binlog.server_id !== undefined) return database.binlog.server_id;
  const hash = createHash('sha256').update(database.name).digest().readUInt32BE(0);
  return 1_000_000_000 + (hash % 1_000_000_000);
}

/** Configured, else under systemd's StateDirectory (the unit sets STATE_DIRECTORY), else under the temp dir. */
export function spoolDir(database: DatabaseConfig, env: NodeJS.ProcessEnv = process.env): string {
  if (database.binlog.spool_dir) return database.binlog.spool_dir;
  const state = env['STATE_DIRECTORY']?.split(':')[0];
  return state ? join(state, 'binlog', database.name) : join(tmpdir(), 'backup-agent-binlog', database.name);
}

/** Spool bytes read per step, and the upload stream's buffer. */
const READ_BYTES = 1024 * 1024;

export async function runBinlogCapture(options: CaptureOptions): Promise<void> {
  const { database, storage, logger, signal } = options;
  const log = logger.child({ database: database.name, type: 'binlog' });
  const pollMs = options.pollMs ?? 100;
  const segmentBytes = database.binlog.segment_size_mb * 1024 * 1024;
  const tool = await locateTool(options.config.tools.binlog, ['mariadb-binlog', 'mysqlbinlog'], 'tools.binlog');
  const spool = spoolDir(database);
  const extension = compressionExtension(database.compression.algorithm);
  let resume = await resumePoint(options, log);
  let backoffMs = 1000;
  // One read buffer for the whole capture: the scanner copies only a partial event's tail.
  const readBuffer = Buffer.allocUnsafe(READ_BYTES);
  let lastEventAt: Date | undefined;

  while (!signal.aborted) {
    await rm(spool, { recursive: true, force: true });
    await mkdir(spool, { recursive: true, mode: 0o700 });
    log.info({ file: resume.file, position: resume.offset, tool: tool.versionLine }, 'binlog capture started');
    let stderr = '';
    let archivedSomething = false;
    const exit = await withDefaultsFile(database.connection, tool.flavor, async (defaultsFile) => {
      const args = [
        `--defaults-file=${defaultsFile}`,
        '--read-from-remote-server',
        '--raw',
        '--stop-never',
        `--stop-never-slave-server-id=${captureServerId(database)}`,
        `--result-file=${spool}/`,
        resume.file,
      ];
      // Stopped with the capture, and whenever this attempt ends (also by an error below).
      const stopTool = new AbortController();
      const onAbort = () => stopTool.abort(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const child: ToolProcess = startTool(tool.path, args, { stdout: 'ignore', signal: stopTool.signal });
      let exited: { error?: unknown } | undefined;
      child.done.then(
        () => (exited = {}),
        (error: unknown) => (exited = { error }),
      );
      try {
        // Tail the spool until the tool has exited and everything it wrote is archived.
        let file = resume.file;
        let offset = resume.offset;
        let follows = resume.follows ?? null;
        let scanner: EventScanner | undefined;
        let drafts: DraftBuilder | undefined;
        const ready: SegmentDraft[] = [];
        let header: { serverId: number; createdAt: string; checksumAlg: number } | undefined;
        let scanned = 0;
        for (;;) {
          const toolGone = exited !== undefined;
          const path = join(spool, file);
          const size = await stat(path).then((s) => s.size, () => -1);
          if (size >= 0 && !header) {
            header = await readFileHeader(path);
            if (header) {
              // The archive may already hold part of this file: the same file (skip what is
              // archived), or a file of that name from before a reset of the numbering (refuse).
              const archived = await archivedPart(storage, database.name, file);
              if (archived && archived.fileCreatedAt !== header.createdAt) {
                throw new AgentError(
                  'integrity',
                  `binlog capture of ${database.name}: ${file} on the server was created at ${header.createdAt}, the archived ${file} at ${archived.fileCreatedAt}: the server's binlog numbering was reset (rebuilt server, or RESET MASTER)`,
                  { hint: `archive this server under a new database name, or move ${database.name}/binlog/ aside in the storage` },
                );
              }
              if (archived && archived.end > offset) offset = archived.end;
              scanner = new EventScanner(offset, header.checksumAlg);
              drafts = new DraftBuilder(offset, segmentBytes);
              scanned = offset;
            }
          }
          if (header && scanner && drafts && size > scanned) {
            const fh = await open(path, 'r');
            try {
              // A backlog is read a segment at a time, uploaded, then read on: memory stays flat.
              while (scanned < size && ready.length === 0) {
                const length = Math.min(size - scanned, READ_BYTES);
                const { bytesRead } = await fh.read(readBuffer, 0, length, scanned);
                if (bytesRead === 0) break;
                scanned += bytesRead;
                const now = Date.now();
                for (const event of scanner.push(readBuffer.subarray(0, bytesRead))) {
                  if (event.type === EventType.HEARTBEAT) continue;
                  const closed = drafts.add(event, now);
                  if (closed) ready.push(closed);
                }
              }
            } finally {
              await fh.close();
            }
          }
          // Is this file finished? The tool has moved on to a later file, and all of this one is read.
          const later = await laterFile(spool, file);
          const finalSize = later !== undefined && size >= 0 ? (await stat(path)).size : -1;
          if (later !== undefined && finalSize >= 0 && finalSize < offset) {
            // The server's file ended before what the archive holds: a crash lost binlog the
            // archive had already captured. Nothing more can come from this file.
            log.error({ file, serverSize: finalSize, archived: offset }, `${file} on the server is shorter than the archived part: the server lost binlog it had written (crash without sync_binlog); the archive keeps it`);
          }
          const finished = later !== undefined && scanner !== undefined && finalSize >= 0 && (scanner.completeEnd === finalSize || finalSize < offset);
          const filling = drafts?.open;
          if (filling && (Date.now() - filling.since >= database.binlog.segment_age || finished || toolGone || signal.aborted)) {
            ready.push(drafts?.close() as SegmentDraft);
          }
          const pendingBytes = (filling?.end ?? ready.at(-1)?.end ?? offset) - offset;
          options.onState?.({ connected: !toolGone, pendingBytes, lastEventAt, file, position: offset });
          while (header && ready.length > 0) {
            const draft = ready[0] as SegmentDraft;
            const manifest = await uploadSegment({ options, path, file, draft, header, extension, log, follows });
            ready.shift();
            offset = manifest.end;
            lastEventAt = new Date(manifest.lastEventAt);
            archivedSomething = true;
            resume = { file, offset };
            options.onSegment?.(manifest);
          }
          const idle = !drafts?.open && ready.length === 0 && (size < 0 || scanned >= size);
          if (finished && idle && later) {
            log.debug({ file, next: later }, 'binlog file archived');
            await rm(path, { force: true });
            follows = { file, end: offset };
            file = later;
            offset = 0;
            header = undefined;
            scanner = undefined;
            drafts = undefined;
            scanned = 0;
            resume = { file, offset: 0, follows };
            continue;
          }
          if (toolGone && idle) break;
          if (signal.aborted && !toolGone) {
            await child.done.catch(() => undefined);
            continue;
          }
          await sleep(pollMs);
        }
        stderr = exited?.error instanceof Error ? messageOf(exited.error) : '';
        return exited;
      } finally {
        signal.removeEventListener('abort', onAbort);
        stopTool.abort();
        await child.done.catch(() => undefined);
      }
    });
    options.onState?.({ connected: false, pendingBytes: 0, lastEventAt, file: resume.file, position: resume.offset });
    if (signal.aborted) break;
    if (archivedSomething) backoffMs = 1000;
    if (/Could not find first log file name/i.test(stderr)) {
      const oldest = await oldestBinlog(database);
      log.error({ file: resume.file, oldest }, `binlog ${resume.file} is no longer on the server (purged before it was captured): the archive has a gap; capture continues at ${oldest}`);
      resume = { file: oldest, offset: 0, follows: null };
      continue;
    }
    log.warn({ error: stderr || (exit?.error ? messageOf(exit.error) : 'the tool exited'), retryInMs: backoffMs, file: resume.file, position: resume.offset }, 'binlog capture interrupted; reconnecting');
    await sleep(backoffMs, undefined, { signal }).catch(() => undefined);
    backoffMs = Math.min(backoffMs * 2, 30_000);
  }
  log.info({ file: resume.file, position: resume.offset }, 'binlog capture stopped');
}

/** The format description event at the head of a spooled file: writer, creation time, checksums. */
async function readFileHeader(path: string): Promise<{ serverId: number; createdAt: string; checksumAlg: number } | undefined> {
  const fh = await open(path, 'r');
  try {
    const buffer = Buffer.alloc(4096);
    const { bytesRead } = await fh.read(buffer, 0, buffer.length, 0);
    const scanner = new EventScanner(0);
    const fde = scanner.push(buffer.subarray(0, bytesRead)).find((e) => e.type === EventType.FORMAT_DESCRIPTION);
    if (!fde) return undefined;
    return { serverId: fde.serverId, createdAt: new Date(fde.timestamp * 1000).toISOString(), checksumAlg: fde.checksumAlg ?? 1 };
  } finally {
    await fh.close();
  }
}

/** The next binlog file the tool has started writing after `file`, if any. */
async function laterFile(spool: string, file: string): Promise<string | undefined> {
  const names = (await readdir(spool)).filter((n) => splitBinlogName(n).number >= 0 && compareFiles(n, file) > 0).sort(compareFiles);
  return names[0];
}

interface UploadInput {
  options: CaptureOptions;
  path: string;
  file: string;
  draft: SegmentDraft;
  header: { serverId: number; createdAt: string };
  extension: string;
  log: Logger;
  follows: { file: string; end: number } | null;
}

/** Uploads one segment (data, then manifest); retries until it succeeds or the capture stops. */
async function uploadSegment(input: UploadInput): Promise<SegmentManifest> {
  const { options, path, file, draft, header, extension, log, follows } = input;
  const { database, storage } = options;
  const { start, end } = draft;
  const key = segmentDataKey(database.name, file, start, end, extension);
  for (let attempt = 1; ; attempt++) {
    const began = Date.now();
    try {
      const digest = new DigestStream();
      const body = createReadStream(path, { start, end: end - 1, highWaterMark: READ_BYTES });
      const put = storage.put(key, digest, { contentType: 'application/octet-stream' });
      await Promise.all([pipeline(body, createCompressor(database.compression), digest), put]);
      const manifest: SegmentManifest = {
        format: 'backup-agent/binlog-segment',
        version: 1,
        database: database.name,
        file,
        start,
        end,
        firstEventAt: new Date(draft.firstTimestamp * 1000).toISOString(),
        lastEventAt: new Date(draft.lastTimestamp * 1000).toISOString(),
        gtidFirst: draft.first.size > 0 ? formatGtidPosition(draft.first) : null,
        gtidLast: draft.last.size > 0 ? formatGtidPosition(draft.last) : null,
        transactions: draft.transactions,
        serverId: header.serverId,
        fileCreatedAt: header.createdAt,
        nextFile: draft.nextFile,
        ...(draft.start === 0 ? { follows } : {}),
        object: { key, sizeBytes: digest.bytes, sha256: digest.sha256, compression: database.compression.algorithm, rawSizeBytes: end - start },
        capturedAt: (options.now ?? (() => new Date()))().toISOString(),
        agent: { version: AGENT_VERSION, hostname: hostname() },
      };
      await commitSegment(storage, manifest);
      log.debug({ file, start, end, transactions: draft.transactions, waitedMs: began - draft.since, uploadMs: Date.now() - began }, 'binlog segment archived');
      return manifest;
    } catch (err) {
      if (options.signal.aborted && attempt > 3) throw err;
      const waitMs = Math.min(1000 * 2 ** (attempt - 1), 30_000);
      log.error({ file, start, end, attempt, retryInMs: waitMs, error: messageOf(err) }, 'binlog segment upload failed; retrying');
      await sleep(waitMs);
    }
  }
}

/** Where capture starts: after the archive's last segment, else at the newest backup's binlog file, else the server's current file. */
async function resumePoint(options: CaptureOptions, log: Logger): Promise<ResumePoint> {
  const { database, storage } = options;
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
  const file = base?.binlog?.file ?? (files.at(-1) as string);
  log.info({ file, base: base?.id }, base ? 'binlog archive is empty: starting at the newest backup\'s binlog file' : 'binlog archive is empty: starting at the server\'s current binlog file');
  return { file, offset: 0 };
}

/** The archived part of `file`: where its contiguous segments from 0 end, and when the server created it. */
async function archivedPart(storage: StorageDriver, database: string, file: string): Promise<{ end: number; fileCreatedAt: string } | undefined> {
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

async function oldestBinlog(database: DatabaseConfig): Promise<string> {
  return withConnection(database.name, database.connection, async (db) => {
    const [rows] = await db.query('SHOW BINARY LOGS');
    const first = (rows as { Log_name: string }[])[0];
    if (!first) throw new AgentError('config', `binlog capture of ${database.name}: the server has no binary logs`);
    return first.Log_name;
  });
}
