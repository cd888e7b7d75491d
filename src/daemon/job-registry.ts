import { randomBytes } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { PutOptions, StorageDriver } from '../storage/driver.ts';
import { BufferBody } from '../storage/buffer-body.ts';
import { ForwardingDriver } from '../storage/forwarding.ts';
import { AgentError, messageOf } from '../errors.ts';
import type { BackupType, Trigger } from './events.ts';

/**
 * Every job the daemon ran or runs (backups, prunes, restores, verifications), with an ID the API hands out:
 * status, a message, bytes so far and timing. Kept in memory, newest first, the last
 * `limit` of them: the catalog is the lasting record of backups, the log of everything.
 */

export type JobKind = 'backup' | 'prune' | 'restore' | 'verify';
export type JobState = 'scheduled' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface JobRecord {
  id: string;
  kind: JobKind;
  database: string;
  /** Backups: dump, full or incremental. */
  type: BackupType | undefined;
  trigger: Trigger | 'api';
  /** The token name that asked for it, for jobs made through the API. */
  requestedBy: string | undefined;
  status: JobState;
  message: string | undefined;
  /** What to do about a failure, when the error says (an AgentError's hint). */
  hint: string | undefined;
  /** Bytes written to (backups) or read from (restores) the store so far. */
  bytes: number;
  createdAt: string;
  startedAt: string | undefined;
  finishedAt: string | undefined;
  /** The backup a backup job made. */
  backupId: string | undefined;
}

/** What a job gets to report itself and to be cancelled by. */
export interface JobHandle {
  readonly record: Readonly<JobRecord>;
  readonly signal: AbortSignal;
  started(): void;
  progress(bytes: number): void;
  /** A storage driver that counts the bytes of every upload into the job's progress. */
  counting(storage: StorageDriver): StorageDriver;
  succeeded(message?: string, backupId?: string): void;
  failed(error: unknown): void;
}

const jobId = () => `job-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;

export class JobRegistry {
  readonly #jobs = new Map<string, { record: JobRecord; controller: AbortController }>();
  readonly #limit: number;
  readonly #now: () => Date;

  constructor(options: { limit?: number; now?: () => Date } = {}) {
    this.#limit = options.limit ?? 1000;
    this.#now = options.now ?? (() => new Date());
  }

  /** Records a new job, `scheduled` until it reports itself started. */
  create(kind: JobKind, fields: { database: string; type?: BackupType | undefined; trigger: JobRecord['trigger']; requestedBy?: string | undefined }): JobHandle {
    const record: JobRecord = {
      id: jobId(),
      kind,
      database: fields.database,
      type: fields.type,
      trigger: fields.trigger,
      requestedBy: fields.requestedBy,
      status: 'scheduled',
      message: undefined,
      hint: undefined,
      bytes: 0,
      createdAt: this.#now().toISOString(),
      startedAt: undefined,
      finishedAt: undefined,
      backupId: undefined,
    };
    const controller = new AbortController();
    this.#jobs.set(record.id, { record, controller });
    this.#trim();
    const finish = (status: JobState, message: string | undefined) => {
      if (record.finishedAt !== undefined) return;
      record.status = status;
      record.message = message;
      record.finishedAt = this.#now().toISOString();
    };
    return {
      record,
      signal: controller.signal,
      started: () => {
        if (record.status === 'scheduled') {
          record.status = 'running';
          record.startedAt = this.#now().toISOString();
        }
      },
      progress: (bytes) => {
        record.bytes = bytes;
      },
      counting: (storage) => new CountingDriver(storage, (n) => (record.bytes += n)),
      succeeded: (message, backupId) => {
        record.backupId = backupId;
        finish('succeeded', message);
      },
      failed: (error) => {
        if (record.finishedAt === undefined && error instanceof AgentError) record.hint = error.hint;
        finish(controller.signal.aborted ? 'cancelled' : 'failed', messageOf(error));
      },
    };
  }

  get(id: string): JobRecord | undefined {
    const found = this.#jobs.get(id);
    return found && structuredClone(found.record);
  }

  /** Newest first. */
  list(): JobRecord[] {
    return [...this.#jobs.values()].map((j) => structuredClone(j.record)).reverse();
  }

  /**
   * Cancels a scheduled or running job: its tools are killed, partial uploads aborted, nothing
   * committed. False when it has already finished.
   */
  cancel(id: string, reason: string): boolean | undefined {
    const found = this.#jobs.get(id);
    if (!found) return undefined;
    if (found.record.finishedAt !== undefined) return false;
    found.controller.abort(new Error(reason));
    return true;
  }

  /** Forgets the oldest finished jobs past the limit; running ones are always kept. */
  #trim(): void {
    for (const [id, job] of this.#jobs) {
      if (this.#jobs.size <= this.#limit) return;
      if (job.record.finishedAt !== undefined) this.#jobs.delete(id);
    }
  }
}

/** Counts the bytes of every upload (as they stream by) for a job's progress. */
class CountingDriver extends ForwardingDriver {
  readonly #count: (bytes: number) => void;

  constructor(inner: StorageDriver, count: (bytes: number) => void) {
    super(inner);
    this.#count = count;
  }

  override put(key: string, body: Readable, options?: PutOptions): Promise<{ size: number }> {
    const count = this.#count;
    // Bytes in memory (a manifest) pass as they are: the retrying driver below replays only those.
    if (body instanceof BufferBody) {
      count(body.data.length);
      return super.put(key, body, options);
    }
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        count(chunk.length);
        callback(null, chunk);
      },
    });
    body.on('error', (err) => counted.destroy(err));
    // While the put runs, the driver's own pipeline hears `counted` fail. An error after the put
    // has settled (a capture stage that fails late, after a second SIGTERM cancelled the job)
    // would otherwise reach only the pipe's listener, which rethrows it unhandled and kills the daemon.
    counted.on('error', () => undefined);
    return super.put(key, body.pipe(counted), options);
  }

  /** The job's view of a shared driver: closing it is the owner's business. */
  override close(): Promise<void> {
    return Promise.resolve();
  }
}
