import { EventEmitter } from 'node:events';
import type { SegmentManifest } from '../binlog/segments.ts';
import type { Manifest } from '../catalog/manifest.ts';
import type { BackupType, Trigger } from '../domain/backup.ts';
import type { NextRun } from '../domain/schedule.ts';
import type { CaptureHealth } from './binlog-health.ts';
import type { VerifyDepth, VerifyOutcome } from '../verify/types.ts';

export type { BackupType, Trigger } from '../domain/backup.ts';
export type { NextRun } from '../domain/schedule.ts';

/** One scheduled or manual job: a database entry and a backup type. */
export interface JobRef {
  database: string;
  type: BackupType;
  trigger: Trigger;
}

export interface JobStarted extends JobRef {
  startedAt: Date;
}

export interface JobSucceeded extends JobRef {
  manifest: Manifest;
  durationMs: number;
}

export interface JobFailed extends JobRef {
  /** The error message as the CLI would print it (no secrets: errors never carry them). */
  message: string;
  hint: string | undefined;
  durationMs: number;
  startedAt: Date;
}

export interface JobSkipped extends JobRef {
  reason: 'overlap';
}

/**
 * The daemon's typed event map. The scheduler and job runner emit; metrics, notifications, the
 * status API and tests subscribe. Listeners must not throw (a throwing listener is logged).
 * Messages in events are one short line (see brief.ts); full texts go to the log only.
 */
export interface BinlogState {
  database: string;
  health: CaptureHealth;
  /** Since when the capture has been in this health. */
  healthSince: string;
  connected: boolean;
  pendingBytes: number;
  spoolBytes: number;
  /** When bytes first became pending and stayed so (agent clock); the lag is now minus this. */
  pendingSince: string | null;
  lagSeconds: number;
  lastEventAt: string | null;
  lastRecoverableAt: string | null;
  /** The latest complete-through marker this capture confirmed. */
  completeThrough: string | null;
  segments: number;
  /** Why the capture is failed or degraded, one short line; null when it is not. */
  error: string | null;
  storageError: { message: string; since: string; attempts: number } | null;
}

export interface BinlogSegment {
  database: string;
  segment: SegmentManifest;
  lastRecoverableAt: string | null;
}

/** A capture entered another health (failed, degraded, healthy again…). */
export interface BinlogHealthChange {
  database: string;
  health: CaptureHealth;
  previous: CaptureHealth;
  reason: string | null;
  at: Date;
}

export interface PruneSucceeded {
  database: string;
  why: string;
  at: Date;
  removed: number;
}

export interface PruneFailed {
  database: string;
  why: string;
  at: Date;
  message: string;
  hint: string | undefined;
}

/** A verification run of the daemon (a `type: verify` schedule): which database, how deep. */
export interface VerifyRef {
  database: string;
  depth: VerifyDepth;
  trigger: Trigger;
}

export interface VerifySucceeded extends VerifyRef {
  /** One per backup verified, every one ok (empty when there was nothing to verify). */
  outcomes: VerifyOutcome[];
  at: Date;
  durationMs: number;
}

export interface VerifyFailed extends VerifyRef {
  /** Every backup verified, the failed ones among them; empty when the run itself failed (store unreadable, no disk). */
  outcomes: VerifyOutcome[];
  /** One short line: which backup and what (no secrets: errors never carry them). */
  message: string;
  hint: string | undefined;
  at: Date;
  durationMs: number;
}

/** Something the daemon could not do outside a job (read the catalog at start-up, …). */
export interface DaemonProblem {
  database: string | undefined;
  what: string;
  message: string;
}

export interface DaemonEvents {
  'job:start': [JobStarted];
  'job:success': [JobSucceeded];
  'job:failure': [JobFailed];
  'job:skipped': [JobSkipped];
  'schedule:next': [NextRun];
  'binlog:state': [BinlogState];
  'binlog:segment': [BinlogSegment];
  'binlog:health': [BinlogHealthChange];
  /** One failed segment upload attempt. */
  'binlog:storage-error': [{ database: string; message: string }];
  'prune:success': [PruneSucceeded];
  'prune:failure': [PruneFailed];
  'verify:start': [VerifyRef];
  'verify:success': [VerifySucceeded];
  'verify:failure': [VerifyFailed];
  'daemon:problem': [DaemonProblem];
}

export class DaemonEventBus extends EventEmitter<DaemonEvents> {
  readonly #onListenerError: (event: string, error: unknown) => void;

  constructor(onListenerError: (event: string, error: unknown) => void = () => undefined) {
    super();
    this.#onListenerError = onListenerError;
  }

  /**
   * Calls every listener, each guarded: a throwing metrics or notification listener is reported
   * and never reaches the job that emitted (a plain EventEmitter would throw into it and skip the
   * remaining listeners).
   */
  override emit<K extends keyof DaemonEvents>(event: K, ...args: DaemonEvents[K]): boolean {
    const listeners = this.listeners(event) as ((...a: DaemonEvents[K]) => void)[];
    for (const listener of listeners) {
      try {
        listener(...args);
      } catch (error) {
        this.#onListenerError(String(event), error);
      }
    }
    return listeners.length > 0;
  }
}
