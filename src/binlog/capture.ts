import { createHash } from 'node:crypto';
import { open, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { withDefaultsFile } from '../capture/defaults-file.ts';
import { startTool, type ToolProcess } from '../capture/tool-process.ts';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { compressionExtension } from '../pipeline/compress.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { markComplete, type CompleteMarker } from './complete-marker.ts';
import { DraftBuilder, type SegmentDraft } from './draft.ts';
import { EventScanner, EventType } from './events.ts';
import { archivedPart, checkedBinlogName, oldestBinlog, resumePoint, type ResumePoint } from './resume.ts';
import { uploadSegment, READ_BYTES } from './segment-upload.ts';
import type { SegmentManifest } from './segments.ts';
import { laterFile, readFileHeader } from './spool-files.ts';
import { openSpool, type Spool } from './spool.ts';

export { DraftBuilder, type SegmentDraft } from './draft.ts';

/**
 * Binlog capture: a supervised `mariadb-binlog --read-from-remote-server --raw --stop-never`
 * writes the server's binlog files, byte for byte, into a spool directory; this loop tails them,
 * finds event boundaries, and uploads segments (size or age, whichever first; nothing when idle):
 * data object, then the segment manifest. When the tool exits (server restart, network), it is
 * started again on the file being archived — which it fetches whole — and the tail resumes at the
 * last archived position: no gap, no duplicate. Resuming after an agent restart reads the
 * position from the archive itself.
 *
 * It never fails silently: every state change (and every failed upload attempt, from inside the
 * retry) goes to `onState`; a spool grown past binlog.max_spool_mb (storage down, or far behind)
 * stops the tool and fails the capture, keeping the spool until the next start.
 */

export interface CaptureOptions {
  config: AgentConfig;
  database: DatabaseConfig;
  storage: StorageDriver;
  logger: Logger;
  signal: AbortSignal;
  /** Called after each committed segment (metrics, status). */
  onSegment?: (segment: SegmentManifest) => void;
  /** Called on every pass of the loop and on every failed upload attempt. */
  onState?: (state: CaptureState) => void;
  /** Called after a complete-through marker was written. */
  onComplete?: (marker: Pick<CompleteMarker, 'file' | 'position' | 'through'>) => void;
  pollMs?: number;
  now?: () => Date;
  /** For the default spool location (STATE_DIRECTORY). */
  env?: NodeJS.ProcessEnv;
}

export interface CaptureState {
  /** The tool is running (connected to the server, or trying to). */
  connected: boolean;
  /** Bytes in the spool not yet archived. */
  pendingBytes: number;
  /** Bytes the spool holds. */
  spoolBytes: number;
  /** When (agent clock) bytes first became pending and have stayed so since; null when none are. */
  pendingSince: Date | null;
  /** Server time of the last archived event. */
  lastEventAt: Date | undefined;
  file: string | undefined;
  position: number | undefined;
  /** Uploads are failing: the latest error, since when, and how many attempts have failed. */
  storageError: { message: string; since: Date; attempts: number } | null;
}

/** The replica server id of the capture connection: configured, or derived from the entry name. */
export function captureServerId(database: DatabaseConfig): number {
  if (database.binlog.server_id !== undefined) return database.binlog.server_id;
  const hash = createHash('sha256').update(database.name).digest().readUInt32BE(0);
  return 1_000_000_000 + (hash % 1_000_000_000);
}

/**
 * Pure: the spool bound is exceeded while uploads fail; the error says why. It bounds the bytes
 * fetched and not yet archived (the spool also holds the archived head of the current file, which
 * a reconnect fetches again: that part is bounded by the server's max_binlog_size). While uploads
 * succeed, a burst larger than the bound drains by itself and is no reason to fail.
 */
export function spoolOverLimit(database: DatabaseConfig, pendingBytes: number, storageError: CaptureState['storageError']): AgentError | undefined {
  const limit = database.binlog.max_spool_mb * 1024 * 1024;
  if (pendingBytes <= limit || !storageError) return undefined;
  return new AgentError(
    'storage',
    `binlog capture of ${database.name}: ${pendingBytes} bytes of binlog are waiting in the spool, over binlog.max_spool_mb (${database.binlog.max_spool_mb} MiB): uploads have failed since ${storageError.since.toISOString()} (${storageError.attempts} attempts; last: ${storageError.message.split('\n')[0]})`,
    { hint: 'fix the storage: the capture is restarted and resumes from the archive (the server must still have the binlog)' },
  );
}

export async function runBinlogCapture(options: CaptureOptions): Promise<void> {
  const { database, storage, logger, signal } = options;
  const log = logger.child({ database: database.name, type: 'binlog' });
  const now = options.now ?? (() => new Date());
  const pollMs = options.pollMs ?? 100;
  const segmentBytes = database.binlog.segment_size_mb * 1024 * 1024;
  const tool = await locateTool(options.config.tools.binlog, ['mariadb-binlog', 'mysqlbinlog'], 'tools.binlog');
  const extension = compressionExtension(database.compression.algorithm);
  let resume: ResumePoint = await resumePoint(database, storage, log).catch((err: unknown) => {
    if (err instanceof AgentError) throw err;
    throw new AgentError('storage', `binlog capture of ${database.name}: read the archive in ${storage.location}: ${messageOf(err)}`, { cause: err });
  });
  const spool: Spool = await openSpool(database, options.env);
  let backoffMs = 1000;
  // One read buffer for the whole capture: the scanner copies only a partial event's tail.
  const readBuffer = Buffer.allocUnsafe(READ_BYTES);
  const state: CaptureState = { connected: false, pendingBytes: 0, spoolBytes: 0, pendingSince: null, lastEventAt: undefined, file: undefined, position: undefined, storageError: null };
  /** Reports the state with the spool measured now; throws when the spool is over its bound. */
  const report = async (connected: boolean, file: string, archived: number): Promise<void> => {
    state.connected = connected;
    state.file = file;
    state.position = archived;
    state.spoolBytes = await spool.bytes();
    state.pendingBytes = Math.max(0, state.spoolBytes - archived);
    state.pendingSince = state.pendingBytes > 0 ? (state.pendingSince ?? now()) : null;
    options.onState?.({ ...state });
    const over = spoolOverLimit(database, state.pendingBytes, state.storageError);
    if (over) throw over;
  };
  let lastMarkAt = 0;

  try {
    while (!signal.aborted) {
      resume = { ...resume, file: checkedBinlogName(database.name, resume.file, 'the resume point') };
      await spool.clear();
      log.info({ file: resume.file, position: resume.offset, spool: spool.dir, tool: tool.versionLine }, 'binlog capture started');
      let stderr = '';
      let archivedSomething = false;
      const exit = await withDefaultsFile(database.connection, tool.flavor, async (defaultsFile) => {
        const args = [
          `--defaults-file=${defaultsFile}`,
          '--read-from-remote-server',
          '--raw',
          '--stop-never',
          `--stop-never-slave-server-id=${captureServerId(database)}`,
          `--result-file=${spool.dir}/`,
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
            const path = join(spool.dir, file);
            const size = await stat(path).then((s) => s.size, () => -1);
            if (size >= 0 && !header) {
              header = await readFileHeader(path);
              if (header) {
                // The archive may already hold part of this file: the same file (skip what is
                // archived), or a file of that name from before a reset of the numbering (refuse).
                const archived = await archivedPart(storage, database.name, file).catch((err: unknown) => {
                  throw new AgentError('storage', `binlog capture of ${database.name}: read the archived part of ${file} in ${storage.location}: ${messageOf(err)}`, { cause: err });
                });
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
                  const at = Date.now();
                  for (const event of scanner.push(readBuffer.subarray(0, bytesRead))) {
                    if (event.type === EventType.HEARTBEAT) continue;
                    if (event.rotateTo !== undefined) checkedBinlogName(database.name, event.rotateTo, `a rotate event in ${file}`);
                    const closed = drafts.add(event, at);
                    if (closed) ready.push(closed);
                  }
                }
              } finally {
                await fh.close();
              }
            }
            // Is this file finished? The tool has moved on to a later file, and all of this one is read.
            const later = await laterFile(spool.dir, file);
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
            await report(!toolGone, file, offset);
            while (header && ready.length > 0) {
              const draft = ready[0] as SegmentDraft;
              const archivedTo = offset;
              const manifest = await uploadSegment({
                database,
                storage,
                path,
                file,
                draft,
                header,
                extension,
                log,
                follows,
                signal,
                now,
                onFailure: async (error, attempt) => {
                  state.storageError = { message: messageOf(error), since: state.storageError?.since ?? now(), attempts: attempt };
                  await report(exited === undefined, file, archivedTo);
                },
              });
              ready.shift();
              offset = manifest.end;
              state.lastEventAt = new Date(manifest.lastEventAt);
              if (state.storageError) {
                log.info({ failedAttempts: state.storageError.attempts, since: state.storageError.since }, 'binlog segment uploads succeed again');
                state.storageError = null;
              }
              archivedSomething = true;
              resume = { file, offset };
              options.onSegment?.(manifest);
              await report(exited === undefined, file, offset);
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
            if (!toolGone && idle && header && size === offset && Date.now() - lastMarkAt >= database.binlog.complete_mark_interval) {
              lastMarkAt = Date.now();
              const marker = await markComplete(options, log, file, offset).catch(async (err: unknown) => {
                log.error({ error: messageOf(err) }, 'cannot write the complete-through marker');
                state.storageError = { message: messageOf(err), since: state.storageError?.since ?? now(), attempts: (state.storageError?.attempts ?? 0) + 1 };
                await report(true, file, offset);
                return undefined;
              });
              if (marker) {
                state.storageError = null;
                options.onComplete?.(marker);
              }
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
      state.connected = false;
      options.onState?.({ ...state });
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
  } catch (err) {
    // The spool stays as it is (the next start clears it); a private temp one goes.
    if (err instanceof AgentError && err.kind === 'storage') log.error({ spool: spool.dir, pendingBytes: state.pendingBytes }, 'binlog capture failed: the spool is over its bound; the tool is stopped');
    throw err;
  } finally {
    state.connected = false;
    options.onState?.({ ...state });
    await spool.dispose();
  }
  log.info({ file: resume.file, position: resume.offset }, 'binlog capture stopped');
}
