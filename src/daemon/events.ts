import { EventEmitter } from 'node:events';
import type { SegmentManifest } from '../binlog/segments.ts';
import type { Manifest } from '../catalog/manifest.ts';

/** The kinds of backup the scheduler runs (dump, full, incremental; binlog capture plugs in later). */
export type BackupType = Manifest['type'];
export type Trigger = Manifest['trigger'];

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

export interface NextRun {
  database: string;
  type: BackupType;
  /** Undefined when the job has no further run (schedule removed). */
  at: Date | undefined;
}

/**
 * The daemon's typed event map. The scheduler and job runner emit; metrics, notifications, the
 * status API and tests subscribe. Listeners must not throw (a throwing listener is logged).
 */
export interface BinlogState {
  database: string;
  connected: boolean;
  pendingBytes: number;
  lagSeconds: number;
  lastEventAt: string | null;
  lastRecoverableAt: string | null;
  segments: number;
  error: string | null;
}

export interface BinlogSegment {
  database: string;
  segment: SegmentManifest;
  lastRecoverableAt: string | null;
}

export interface DaemonEvents {
  'job:start': [JobStarted];
  'job:success': [JobSucceeded];
  'job:failure': [JobFailed];
  'job:skipped': [JobSkipped];
  'schedule:next': [NextRun];
  'binlog:state': [BinlogState];
  'binlog:segment': [BinlogSegment];
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
