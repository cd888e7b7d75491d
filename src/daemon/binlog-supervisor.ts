import type { Logger } from 'pino';
import { Archive } from '../binlog/archive.ts';
import { runBinlogCapture, type CaptureState } from '../binlog/capture.ts';
import { withCompaction } from '../binlog/compaction-loop.ts';
import { compareFiles, splitBinlogName, type SegmentManifest } from '../binlog/segments.ts';
import { listBackups, type ListOptions } from '../catalog/listing.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { AgentError, messageOf } from '../errors.ts';
import { asBinlogWriter } from '../lease/binlog-writer.ts';
import type { StorageDriver } from '../storage/driver.ts';
import { captureHealth, isAlarming, type CaptureHealth } from './binlog-health.ts';
import { brief } from './brief.ts';
import type { BinlogState, DaemonEventBus } from './events.ts';

/**
 * Runs one binlog capture per database entry with binlog.enabled, for the daemon: restarts a
 * capture that fails (after a pause), stops them all on shutdown (each archives what is pending
 * first), and keeps the facts status and metrics show: health, pending bytes, lag (from the
 * clock), the last archived event and the last recoverable time. Health changes are events
 * (`binlog:health`) that metrics, webhooks and heartbeats act on.
 */

export type BinlogStatus = Omit<BinlogState, 'database'>;

/** What the captures last reported, kept between reports; status and lag are computed from it and the clock. */
interface View {
  connected: boolean;
  everConnected: boolean;
  disconnectedSince: Date | null;
  pendingBytes: number;
  spoolBytes: number;
  pendingSince: Date | null;
  lastEventAt: string | null;
  lastRecoverableAt: string | null;
  completeThrough: string | null;
  segments: number;
  storageError: { message: string; since: Date; attempts: number } | null;
  failure: { message: string; at: Date } | null;
  health: CaptureHealth;
  healthSince: Date;
  reason: string | null;
}

interface Running {
  database: DatabaseConfig;
  controller: AbortController;
  done: Promise<void>;
  view: View;
  /** The end of the archive run that holds the last recoverable time: new segments that continue it move it on. */
  runEnd: { file: string; position: number } | undefined;
  refreshedAt: number;
}

/** While nothing is recoverable, how often a new segment re-reads the catalog for a base taken outside the daemon. */
const REFRESH_MS = 10_000;

const RETRY_MS = 30_000;

/** How often health is re-evaluated between reports (a disconnection turns degraded by the clock alone). */
const TICK_MS = 1000;

const later = (a: string | null, b: string | null): string | null => (a === null ? b : b === null ? a : Date.parse(a) >= Date.parse(b) ? a : b);

export class BinlogSupervisor {
  readonly #running = new Map<string, Running>();
  readonly #bus: DaemonEventBus;
  readonly #logger: Logger;
  readonly #storage: (database: DatabaseConfig) => Promise<StorageDriver>;
  readonly #catalog: (database: DatabaseConfig) => Promise<ListOptions>;
  readonly #now: () => Date;
  #ticker: NodeJS.Timeout | undefined;

  constructor(options: {
    bus: DaemonEventBus;
    logger: Logger;
    storage: (database: DatabaseConfig) => Promise<StorageDriver>;
    /** How to read the catalog (the daemon's manifest cache: a refresh then fetches only new manifests). */
    catalog?: (database: DatabaseConfig) => Promise<ListOptions>;
    now?: () => Date;
  }) {
    this.#catalog = options.catalog ?? (() => Promise.resolve({}));
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#storage = options.storage;
    this.#now = options.now ?? (() => new Date());
    // A new base backup can make more of the archive recoverable.
    this.#bus.on('job:success', (event) => {
      const running = this.#running.get(event.database);
      if (running) void this.#refreshRecoverable(event.database, running);
    });
  }

  snapshot(): Record<string, BinlogStatus> {
    return Object.fromEntries([...this.#running].map(([name, r]) => [name, this.#status(r.view)]));
  }

  /** Starts captures for the config's enabled entries; stops those no longer enabled. Changed entries restart. */
  async apply(config: AgentConfig): Promise<void> {
    const wanted = new Map(config.databases.filter((d) => d.binlog.enabled).map((d) => [d.name, d]));
    await Promise.all([...this.#running.keys()].map((name) => this.#stop(name)));
    for (const database of wanted.values()) this.#start(config, database);
    this.#ticker ??= setInterval(() => {
      for (const [name, running] of this.#running) this.#evaluate(name, running);
    }, TICK_MS).unref();
  }

  async stopAll(): Promise<void> {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    await Promise.all([...this.#running.keys()].map((name) => this.#stop(name)));
  }

  async #stop(name: string): Promise<void> {
    const running = this.#running.get(name);
    if (!running) return;
    running.controller.abort();
    await running.done;
    this.#running.delete(name);
  }

  #status(view: View): BinlogStatus {
    const now = this.#now();
    return {
      health: view.health,
      healthSince: view.healthSince.toISOString(),
      connected: view.connected,
      pendingBytes: view.pendingBytes,
      spoolBytes: view.spoolBytes,
      pendingSince: view.pendingSince?.toISOString() ?? null,
      lagSeconds: view.pendingSince ? Math.max(0, (now.getTime() - view.pendingSince.getTime()) / 1000) : 0,
      lastEventAt: view.lastEventAt,
      lastRecoverableAt: view.lastRecoverableAt,
      completeThrough: view.completeThrough,
      segments: view.segments,
      error: view.reason === null ? null : brief(view.reason),
      storageError: view.storageError && { message: brief(view.storageError.message), since: view.storageError.since.toISOString(), attempts: view.storageError.attempts },
    };
  }

  #emitState(name: string, running: Running): void {
    this.#bus.emit('binlog:state', { database: name, ...this.#status(running.view) });
  }

  /** Recomputes the health; a change is logged and emitted. */
  #evaluate(name: string, running: Running): void {
    const view = running.view;
    const now = this.#now();
    const { health, reason } = captureHealth(view, now);
    view.reason = reason;
    if (health === view.health) return;
    const previous = view.health;
    view.health = health;
    view.healthSince = now;
    const log = this.#logger.child({ database: name, type: 'binlog' });
    if (isAlarming(health)) log.error({ health, previous, reason }, `binlog capture ${health}`);
    else if (isAlarming(previous) && health === 'healthy') log.info({ health, previous }, 'binlog capture recovered');
    this.#bus.emit('binlog:health', { database: name, health, previous, reason: reason === null ? null : brief(reason), at: now });
    this.#emitState(name, running);
  }

  #start(config: AgentConfig, database: DatabaseConfig): void {
    const controller = new AbortController();
    const now = this.#now();
    const view: View = {
      connected: false,
      everConnected: false,
      disconnectedSince: now,
      pendingBytes: 0,
      spoolBytes: 0,
      pendingSince: null,
      lastEventAt: null,
      lastRecoverableAt: null,
      completeThrough: null,
      segments: 0,
      storageError: null,
      failure: null,
      health: 'starting',
      healthSince: now,
      reason: null,
    };
    const running: Running = { database, controller, view, runEnd: undefined, refreshedAt: 0, done: Promise.resolve() };
    this.#running.set(database.name, running);
    const log = this.#logger.child({ database: database.name, type: 'binlog' });
    running.done = (async () => {
      await this.#refreshRecoverable(database.name, running);
      while (!controller.signal.aborted) {
        try {
          const storage = await this.#storage(database);
          // One writer per archive: a second daemon (HA pair) or `agent binlog capture` holding the
          // lease makes this attempt fail as 'locked', logged and retried after RETRY_MS.
          const lease = { storage, database: database.name, ttlMs: config.prune.lock_ttl, log, signal: controller.signal };
          await asBinlogWriter(lease, (signal) => withCompaction({ storage, database, log, signal }, (compaction) => runBinlogCapture({
            config,
            database,
            storage,
            logger: this.#logger,
            signal,
            onSegment: (segment) => {
              compaction.notify();
              this.#onSegment(database.name, running, segment);
            },
            onState: (state) => this.#onState(database.name, running, state),
            onComplete: (marker) => {
              view.failure = null;
              view.completeThrough = marker.through;
              const end = running.runEnd;
              if (end && end.file === marker.file && end.position === marker.position && view.lastRecoverableAt !== null) {
                view.lastRecoverableAt = later(view.lastRecoverableAt, marker.through);
              }
              this.#evaluate(database.name, running);
              this.#emitState(database.name, running);
            },
          })));
        } catch (err) {
          view.connected = false;
          view.disconnectedSince ??= this.#now();
          const hint = err instanceof AgentError ? err.hint : undefined;
          if (controller.signal.aborted) {
            log.error({ error: messageOf(err), hint }, 'binlog capture failed while stopping: what was pending stays on the server only');
            break;
          }
          view.failure = { message: messageOf(err), at: this.#now() };
          log.error({ error: messageOf(err), hint, retryInMs: RETRY_MS }, 'binlog capture failed');
          this.#evaluate(database.name, running);
          this.#emitState(database.name, running);
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, RETRY_MS);
            controller.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
          });
        }
      }
    })();
  }

  #onState(name: string, running: Running, state: CaptureState): void {
    const view = running.view;
    const now = this.#now();
    if (state.connected) {
      view.everConnected = true;
      view.disconnectedSince = null;
    } else {
      view.disconnectedSince ??= now;
    }
    view.connected = state.connected;
    view.pendingBytes = state.pendingBytes;
    view.spoolBytes = state.spoolBytes;
    view.pendingSince = state.pendingSince;
    const attempts = view.storageError?.attempts ?? 0;
    view.storageError = state.storageError;
    if (state.storageError && state.storageError.attempts !== attempts) {
      this.#bus.emit('binlog:storage-error', { database: name, message: brief(state.storageError.message) });
    }
    this.#evaluate(name, running);
    this.#emitState(name, running);
  }

  #onSegment(name: string, running: Running, segment: SegmentManifest): void {
    const view = running.view;
    view.failure = null;
    view.segments++;
    view.lastEventAt = segment.lastEventAt;
    const end = running.runEnd;
    const continues =
      end !== undefined &&
      ((segment.file === end.file && segment.start === end.position) ||
        (segment.start === 0 && compareFiles(segment.file, end.file) > 0 && splitBinlogName(segment.file).number === splitBinlogName(end.file).number + 1));
    if (continues && view.lastRecoverableAt !== null) {
      running.runEnd = { file: segment.file, position: segment.end };
      view.lastRecoverableAt = later(view.lastRecoverableAt, segment.lastEventAt);
    }
    this.#bus.emit('binlog:segment', { database: name, segment, lastRecoverableAt: view.lastRecoverableAt });
    this.#evaluate(name, running);
    if (view.lastRecoverableAt === null && Date.now() - running.refreshedAt >= REFRESH_MS) void this.#refreshRecoverable(name, running);
  }

  /** Reads the archive and the catalog: the last recoverable time and the run end it sits on. */
  async #refreshRecoverable(name: string, running: Running): Promise<void> {
    running.refreshedAt = Date.now();
    try {
      const storage = await this.#storage(running.database);
      const [archive, { backups }] = await Promise.all([Archive.load(storage, name), listBackups(storage, name, await this.#catalog(running.database))]);
      const summary = await archive.summarize(backups);
      running.view.lastRecoverableAt = summary.lastRecoverableAt;
      running.view.completeThrough = summary.completeThrough?.through ?? running.view.completeThrough;
      running.runEnd = summary.recoverableTo ?? undefined;
      running.view.lastEventAt = summary.runs.at(-1)?.to.at ?? running.view.lastEventAt;
      this.#emitState(name, running);
    } catch (err) {
      this.#logger.warn({ database: name, error: messageOf(err) }, 'cannot read the binlog archive');
      this.#bus.emit('daemon:problem', { database: name, what: 'read binlog archive', message: brief(messageOf(err)) });
    }
  }
}
