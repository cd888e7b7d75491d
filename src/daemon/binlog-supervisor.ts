import type { Logger } from 'pino';
import { Archive } from '../binlog/archive.ts';
import { runBinlogCapture, type CaptureState } from '../binlog/capture.ts';
import { compareFiles, splitBinlogName, type SegmentManifest } from '../binlog/segments.ts';
import { listBackups } from '../catalog/catalog.ts';
import type { AgentConfig, DatabaseConfig } from '../config/normalize.ts';
import { messageOf } from '../errors.ts';
import { asBinlogWriter } from '../lease/binlog-writer.ts';
import type { StorageDriver } from '../storage/driver.ts';
import type { DaemonEventBus } from './events.ts';

/**
 * Runs one binlog capture per database entry with binlog.enabled, for the daemon: restarts a
 * capture that fails (after a pause), stops them all on shutdown (each archives what is pending
 * first), and keeps the facts status and metrics show: connected, pending bytes, lag, the last
 * archived event and the last recoverable time.
 */

export interface BinlogStatus {
  connected: boolean;
  pendingBytes: number;
  /** How long the oldest event not yet archived has waited (0 when caught up). */
  lagSeconds: number;
  lastEventAt: string | null;
  lastRecoverableAt: string | null;
  segments: number;
  error: string | null;
}

interface Running {
  database: DatabaseConfig;
  controller: AbortController;
  done: Promise<void>;
  status: BinlogStatus;
  /** The end of the archive run that holds the last recoverable time: new segments that continue it move it on. */
  runEnd: { file: string; position: number } | undefined;
  refreshedAt: number;
}

/** While nothing is recoverable, how often a new segment re-reads the catalog for a base taken outside the daemon. */
const REFRESH_MS = 10_000;

const RETRY_MS = 30_000;

export class BinlogSupervisor {
  readonly #running = new Map<string, Running>();
  readonly #bus: DaemonEventBus;
  readonly #logger: Logger;
  readonly #storage: (database: DatabaseConfig) => Promise<StorageDriver>;

  constructor(options: { bus: DaemonEventBus; logger: Logger; storage: (database: DatabaseConfig) => Promise<StorageDriver> }) {
    this.#bus = options.bus;
    this.#logger = options.logger;
    this.#storage = options.storage;
    // A new base backup can make more of the archive recoverable.
    this.#bus.on('job:success', (event) => {
      const running = this.#running.get(event.database);
      if (running) void this.#refreshRecoverable(event.database, running);
    });
  }

  snapshot(): Record<string, BinlogStatus> {
    return Object.fromEntries([...this.#running].map(([name, r]) => [name, { ...r.status }]));
  }

  /** Starts captures for the config's enabled entries; stops those no longer enabled. Changed entries restart. */
  async apply(config: AgentConfig): Promise<void> {
    const wanted = new Map(config.databases.filter((d) => d.binlog.enabled).map((d) => [d.name, d]));
    await Promise.all([...this.#running.keys()].map((name) => this.#stop(name)));
    for (const database of wanted.values()) this.#start(config, database);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#running.keys()].map((name) => this.#stop(name)));
  }

  async #stop(name: string): Promise<void> {
    const running = this.#running.get(name);
    if (!running) return;
    running.controller.abort();
    await running.done;
    this.#running.delete(name);
  }

  #start(config: AgentConfig, database: DatabaseConfig): void {
    const controller = new AbortController();
    const status: BinlogStatus = { connected: false, pendingBytes: 0, lagSeconds: 0, lastEventAt: null, lastRecoverableAt: null, segments: 0, error: null };
    const running: Running = { database, controller, status, runEnd: undefined, refreshedAt: 0, done: Promise.resolve() };
    this.#running.set(database.name, running);
    const log = this.#logger.child({ database: database.name, type: 'binlog' });
    let pendingSince: number | undefined;
    running.done = (async () => {
      await this.#refreshRecoverable(database.name, running);
      while (!controller.signal.aborted) {
        try {
          const storage = await this.#storage(database);
          // One writer per archive: a second daemon (HA pair) or `agent binlog capture` holding the
          // lease makes this attempt fail as 'locked', logged and retried after RETRY_MS.
          const lease = { storage, database: database.name, ttlMs: config.prune.lock_ttl, log, signal: controller.signal };
          await asBinlogWriter(lease, (signal) => runBinlogCapture({
            config,
            database,
            storage,
            logger: this.#logger,
            signal,
            onSegment: (segment) => this.#onSegment(database.name, running, segment),
            onState: (state: CaptureState) => {
              if (state.pendingBytes > 0) pendingSince ??= Date.now();
              else pendingSince = undefined;
              status.connected = state.connected;
              status.pendingBytes = state.pendingBytes;
              status.lagSeconds = pendingSince === undefined ? 0 : (Date.now() - pendingSince) / 1000;
              if (state.connected) status.error = null;
              this.#bus.emit('binlog:state', { database: database.name, ...status });
            },
          }));
        } catch (err) {
          status.connected = false;
          status.error = messageOf(err);
          log.error({ error: status.error, retryInMs: RETRY_MS }, 'binlog capture failed');
          this.#bus.emit('binlog:state', { database: database.name, ...status });
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, RETRY_MS);
            controller.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
          });
        }
      }
    })();
  }

  #onSegment(name: string, running: Running, segment: SegmentManifest): void {
    const status = running.status;
    status.segments++;
    status.lastEventAt = segment.lastEventAt;
    const end = running.runEnd;
    const continues =
      end !== undefined &&
      ((segment.file === end.file && segment.start === end.position) ||
        (segment.start === 0 && compareFiles(segment.file, end.file) > 0 && splitBinlogName(segment.file).number === splitBinlogName(end.file).number + 1));
    if (continues && status.lastRecoverableAt !== null) {
      running.runEnd = { file: segment.file, position: segment.end };
      status.lastRecoverableAt = segment.lastEventAt;
    }
    this.#bus.emit('binlog:segment', { database: name, segment, lastRecoverableAt: status.lastRecoverableAt });
    if (status.lastRecoverableAt === null && Date.now() - running.refreshedAt >= REFRESH_MS) void this.#refreshRecoverable(name, running);
  }

  /** Reads the archive and the catalog: the last recoverable time and the run end it sits on. */
  async #refreshRecoverable(name: string, running: Running): Promise<void> {
    running.refreshedAt = Date.now();
    try {
      const storage = await this.#storage(running.database);
      const [archive, { backups }] = await Promise.all([Archive.load(storage, name), listBackups(storage, name)]);
      const summary = await archive.summarize(backups);
      running.status.lastRecoverableAt = summary.lastRecoverableAt;
      running.runEnd = summary.recoverableTo ?? undefined;
      running.status.lastEventAt = summary.runs.at(-1)?.to.at ?? running.status.lastEventAt;
      this.#bus.emit('binlog:state', { database: name, ...running.status });
    } catch (err) {
      this.#logger.warn({ database: name, error: messageOf(err) }, 'cannot read the binlog archive');
    }
  }
}
