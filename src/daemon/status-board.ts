import type { Manifest } from '../catalog/manifest.ts';
import type { BackupType, DaemonEventBus, Trigger } from './events.ts';

/** What `agent status` and GET /status show for one database and backup type. */
export interface JobStatus {
  database: string;
  type: BackupType;
  /** e.g. `daily at 01:00 (UTC)`; undefined for a job with no schedule. */
  schedule: string | undefined;
  nextRun: string | undefined;
  running: boolean;
  last:
    | { result: 'success'; at: string; trigger: Trigger; backupId: string; sizeBytes: number }
    | { result: 'failure'; at: string; trigger: Trigger; error: string; hint: string | undefined }
    | undefined;
  lastSuccessAt: string | undefined;
}

/** What /status shows of the daemon's prunes of one database. */
export interface PruneStatus {
  lastSuccessAt: string | undefined;
  lastFailure: { at: string; why: string; error: string; hint: string | undefined } | undefined;
}

/** What /status shows of the daemon's verifications (type: verify schedules) of one database. */
export interface VerifyStatus {
  /** Each verify schedule with its next run. */
  schedules: { description: string; nextRun: string | undefined }[];
  running: boolean;
  lastSuccess: { at: string; depth: string; backups: string[] } | undefined;
  lastFailure: { at: string; depth: string; error: string; hint: string | undefined } | undefined;
}

const key = (database: string, type: BackupType) => `${database}\u0000${type}`;

/** Keeps the latest state of every job from the daemon's events. */
export class StatusBoard {
  readonly #jobs = new Map<string, JobStatus>();
  readonly #prunes = new Map<string, PruneStatus>();
  readonly #verifies = new Map<string, VerifyStatus>();

  constructor(bus: DaemonEventBus) {
    const prune = (database: string) => {
      let found = this.#prunes.get(database);
      if (!found) this.#prunes.set(database, (found = { lastSuccessAt: undefined, lastFailure: undefined }));
      return found;
    };
    bus.on('prune:success', (e) => {
      prune(e.database).lastSuccessAt = e.at.toISOString();
    });
    bus.on('prune:failure', (e) => {
      prune(e.database).lastFailure = { at: e.at.toISOString(), why: e.why, error: e.message, hint: e.hint };
    });
    bus.on('verify:start', (e) => {
      this.#verify(e.database).running = true;
    });
    bus.on('verify:success', (e) => {
      const v = this.#verify(e.database);
      v.running = false;
      v.lastSuccess = { at: e.at.toISOString(), depth: e.depth, backups: e.outcomes.map((o) => o.backupId) };
    });
    bus.on('verify:failure', (e) => {
      const v = this.#verify(e.database);
      v.running = false;
      v.lastFailure = { at: e.at.toISOString(), depth: e.depth, error: e.message, hint: e.hint };
    });
    bus.on('job:start', (e) => {
      this.#job(e.database, e.type).running = true;
    });
    bus.on('job:success', (e) => {
      const job = this.#job(e.database, e.type);
      job.running = false;
      job.last = { result: 'success', at: e.manifest.completedAt, trigger: e.trigger, backupId: e.manifest.id, sizeBytes: e.manifest.sizeBytes };
      job.lastSuccessAt = e.manifest.completedAt;
    });
    bus.on('job:failure', (e) => {
      const job = this.#job(e.database, e.type);
      job.running = false;
      job.last = { result: 'failure', at: new Date(e.startedAt.getTime() + e.durationMs).toISOString(), trigger: e.trigger, error: e.message, hint: e.hint };
    });
    bus.on('schedule:next', (e) => {
      this.#job(e.database, e.type).nextRun = e.at?.toISOString();
    });
  }

  #job(database: string, type: BackupType): JobStatus {
    let job = this.#jobs.get(key(database, type));
    if (!job) {
      job = { database, type, schedule: undefined, nextRun: undefined, running: false, last: undefined, lastSuccessAt: undefined };
      this.#jobs.set(key(database, type), job);
    }
    return job;
  }

  #verify(database: string): VerifyStatus {
    let found = this.#verifies.get(database);
    if (!found) this.#verifies.set(database, (found = { schedules: [], running: false, lastSuccess: undefined, lastFailure: undefined }));
    return found;
  }

  /** A verify schedule's next run (undefined: it stopped); a schedule's description identifies it within its database. */
  verifyNext(database: string, description: string, at: Date | undefined): void {
    const v = this.#verify(database);
    v.schedules = v.schedules.filter((s) => s.description !== description);
    if (at !== undefined) v.schedules.push({ description, nextRun: at.toISOString() });
  }

  verifySnapshot(): Record<string, VerifyStatus> {
    return Object.fromEntries([...this.#verifies].map(([name, v]) => [name, structuredClone(v)]));
  }

  /** Sets the schedule description of a job (on start and on reload). */
  describe(database: string, type: BackupType, schedule: string | undefined): void {
    this.#job(database, type).schedule = schedule;
  }

  /** The newest backup in the catalog, for a daemon that has not run the job yet. */
  seed(manifest: Manifest): void {
    const job = this.#job(manifest.database, manifest.type);
    if (job.last) return;
    job.last = { result: 'success', at: manifest.completedAt, trigger: manifest.trigger, backupId: manifest.id, sizeBytes: manifest.sizeBytes };
    job.lastSuccessAt = manifest.completedAt;
  }

  /** The newest passed verification in the catalog, for a daemon that has not verified yet. */
  seedVerified(database: string, passed: { at: string; depth: string; backupId: string }): void {
    const v = this.#verify(database);
    if (v.lastSuccess && v.lastSuccess.at >= passed.at) return;
    v.lastSuccess = { at: passed.at, depth: passed.depth, backups: [passed.backupId] };
  }

  /** Drops jobs of databases no longer configured. */
  retain(databases: ReadonlySet<string>): void {
    for (const [k, job] of this.#jobs) if (!databases.has(job.database)) this.#jobs.delete(k);
    for (const name of this.#prunes.keys()) if (!databases.has(name)) this.#prunes.delete(name);
    for (const name of this.#verifies.keys()) if (!databases.has(name)) this.#verifies.delete(name);
  }

  pruneSnapshot(): Record<string, PruneStatus> {
    return Object.fromEntries([...this.#prunes].map(([name, p]) => [name, structuredClone(p)]));
  }

  snapshot(): JobStatus[] {
    return [...this.#jobs.values()]
      .map((j) => structuredClone(j))
      .sort((a, b) => (a.database === b.database ? a.type.localeCompare(b.type) : a.database.localeCompare(b.database)));
  }
}
