import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { locateTool } from '../capture/tools.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { dataExtension, encryptionOf } from '../pipeline/encryption.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { markDue, spoolOverLimit, type StorageOutage } from './capture-decisions.ts';
import { markComplete, type CompleteMarker } from './complete-marker.ts';
import { archivedPart, resumePoint, type ResumePoint } from './resume.ts';
import { uploadSegment, READ_BYTES } from './segment-upload.ts';
import type { SegmentManifest } from './segments.ts';
import { openSpool, type Spool } from './spool.ts';
import { SpoolTail } from './spool-tail.ts';
import { superviseBinlogTool, type RunningTool } from './supervision.ts';

export { DraftBuilder, type SegmentDraft } from './draft.ts';
export { spoolOverLimit } from './capture-decisions.ts';

/**
 * Binlog capture: a supervised `mariadb-binlog --read-from-remote-server --raw --stop-never`
 * writes the server's binlog files, byte for byte, into a spool directory; the capture tails them,
 * finds event boundaries, and uploads segments (size or age, whichever first; nothing when idle):
 * data object, then the segment manifest. When the tool exits (server restart, network), it is
 * started again on the file being archived — which it fetches whole — and the tail resumes at the
 * last archived position: no gap, no duplicate. Resuming after an agent restart reads the
 * position from the archive itself.
 *
 * The parts: resume.ts (where to start), supervision.ts (the tool's life: restarts with backoff,
 * a purged file), spool-tail.ts (reading the spool into segment drafts), segment-upload.ts (a
 * segment to the store, retried), capture-decisions.ts (the pure decisions). This file wires them
 * and keeps the state.
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
  storageError: StorageOutage | null;
}

/**
 * After a segment is archived, its buffers (compressed chunks, an S3 part) are garbage. V8 frees
 * an ArrayBuffer's memory only when a GC finds it dead, and it starts one for external memory only
 * ~64 MiB past the last: during a backlog catch-up that is several segments' worth of resident
 * memory. A major GC per segment (a few ms on the capture's ~20 MiB heap; at most one per segment,
 * so per 16 MiB or per segment_age) returns it at once. Needs --expose-gc (the `agent` shebang
 * and the Docker entrypoint pass it); without it this does nothing.
 */
function releaseSegmentGarbage(): void {
  const gc = (globalThis as { gc?: (options: { type: 'major'; execution: 'async' }) => Promise<void> | undefined }).gc;
  void gc?.({ type: 'major', execution: 'async' })?.catch(() => undefined);
}

/** The replica server id of the capture connection: configured, or derived from the entry name. */
export function captureServerId(database: DatabaseConfig): number {
  if (database.binlog.server_id !== undefined) return database.binlog.server_id;
  const hash = createHash('sha256').update(database.name).digest().readUInt32BE(0);
  return 1_000_000_000 + (hash % 1_000_000_000);
}

export async function runBinlogCapture(options: CaptureOptions): Promise<void> {
  const { database, storage, logger, signal } = options;
  const log = logger.child({ database: database.name, type: 'binlog' });
  const now = options.now ?? (() => new Date());
  const pollMs = options.pollMs ?? 100;
  const segmentBytes = database.binlog.segment_size_mb * 1024 * 1024;
  const tool = await locateTool(options.config.tools.binlog, ['mariadb-binlog', 'mysqlbinlog'], 'tools.binlog');
  const encrypt = await encryptionOf(database.encryption, options.config.tools.age);
  const extension = dataExtension(database.compression, encrypt);
  if (encrypt?.kind === 'passphrase') {
    // age runs scrypt once per file: each segment pays it (2^(factor+10) bytes of memory, seconds
    // of a core at age's default 18), and a point-in-time restore pays it twice per segment read.
    log.warn(
      { scryptWorkFactor: encrypt.workFactor, segmentAgeMs: database.binlog.segment_age },
      'binlog segments are encrypted to a passphrase: one scrypt per segment; with frequent segments lower encryption.scrypt_work_factor or use recipients (a key pair)',
    );
  }
  let resume: ResumePoint = await resumePoint(database, storage, log).catch((err: unknown) => {
    if (err instanceof AgentError) throw err;
    throw new AgentError('storage', `binlog capture of ${database.name}: read the archive in ${storage.location}: ${messageOf(err)}`, { cause: err });
  });
  const spool: Spool = await openSpool(database, options.env);
  // One read buffer for the whole capture, tail and uploads: the scanner copies only a partial event's tail.
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
  const failed = (error: unknown, attempts: number): StorageOutage => ({ message: messageOf(error), since: state.storageError?.since ?? now(), attempts });
  let lastMarkAt = 0;

  /** Tails the spool while the tool runs, uploading segments; true when it archived something. */
  const follow = async (child: RunningTool, from: ResumePoint): Promise<boolean> => {
    let archivedSomething = false;
    const tail = new SpoolTail(spool.dir, from, {
      database: database.name,
      segmentBytes,
      readBuffer,
      log,
      archivedPart: (file) =>
        archivedPart(storage, database.name, file).catch((err: unknown) => {
          throw new AgentError('storage', `binlog capture of ${database.name}: read the archived part of ${file} in ${storage.location}: ${messageOf(err)}`, { cause: err });
        }),
    });
    // Until the tool has exited and everything it wrote is archived.
    for (;;) {
      const toolGone = child.exited !== undefined;
      const pass = await tail.read();
      tail.cutIfDue(Date.now(), database.binlog.segment_age, { finished: pass.finished, toolGone, stopping: signal.aborted });
      await report(!toolGone, tail.file, tail.archived);
      for (let draft = tail.nextDraft, header = tail.header; draft && header; draft = tail.nextDraft) {
        const { file, archived: archivedTo } = tail;
        const manifest = await uploadSegment({
          database,
          storage,
          path: tail.path,
          file,
          draft,
          header,
          extension,
          encrypt,
          log,
          follows: tail.follows,
          signal,
          now,
          buffer: readBuffer,
          onFailure: async (error, attempt) => {
            state.storageError = failed(error, attempt);
            await report(child.exited === undefined, file, archivedTo);
          },
        });
        tail.archivedTo(manifest.end);
        state.lastEventAt = new Date(manifest.lastEventAt);
        if (state.storageError) {
          log.info({ failedAttempts: state.storageError.attempts, since: state.storageError.since }, 'binlog segment uploads succeed again');
          state.storageError = null;
        }
        archivedSomething = true;
        resume = tail.resume;
        options.onSegment?.(manifest);
        releaseSegmentGarbage();
        await report(child.exited === undefined, file, tail.archived);
      }
      const idle = tail.idle(pass);
      if (pass.finished && idle && pass.later) {
        await tail.advance(pass.later);
        resume = tail.resume;
        continue;
      }
      if (toolGone && idle) break;
      if (signal.aborted && !toolGone) {
        await child.gone;
        continue;
      }
      if (markDue({ toolGone, idle, headerRead: tail.header !== undefined, size: pass.size, archived: tail.archived, now: Date.now(), lastMarkAt, intervalMs: database.binlog.complete_mark_interval })) {
        lastMarkAt = Date.now();
        const { file, archived } = tail;
        const marker = await markComplete(options, log, file, archived).catch(async (err: unknown) => {
          log.error({ error: messageOf(err) }, 'cannot write the complete-through marker');
          state.storageError = failed(err, (state.storageError?.attempts ?? 0) + 1);
          await report(true, file, archived);
          return undefined;
        });
        if (marker) {
          state.storageError = null;
          options.onComplete?.(marker);
        }
      }
      await sleep(pollMs);
    }
    return archivedSomething;
  };

  try {
    await superviseBinlogTool({
      database,
      tool,
      spool,
      serverId: captureServerId(database),
      signal,
      log,
      resumePoint: () => resume,
      setResumePoint: (next) => (resume = next),
      follow,
      onStopped: () => {
        state.connected = false;
        options.onState?.({ ...state });
      },
    });
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
