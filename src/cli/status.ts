import { describeUnreadable, hiddenNewer } from '../catalog/catalog.ts';
import { listBackups } from '../catalog/listing.ts';
import { Archive } from '../binlog/archive.ts';
import type { BinlogStatus } from '../daemon/binlog-supervisor.ts';
import type { JobStatus } from '../daemon/status-board.ts';
import { brief } from '../daemon/brief.ts';
import { messageOf } from '../errors.ts';
import { nextRun } from '../scheduler/schedule.ts';
import { formatBytes, formatTime, renderTable } from '../ui/format.ts';
import { out, type CommandContext } from './context.ts';
import { listBackupObjects } from '../catalog/listing.ts';
import { newestRecords, recordFolder, BINLOG_ARCHIVE_ID, type RecordSummary } from '../verify/record.ts';

/** Per entry, the newest verification record of any of its backups and of its binlog archive (read from the store's keys). */
interface EntryVerification {
  backup: (RecordSummary & { backupId: string }) | null;
  binlog: RecordSummary | null;
  error?: string;
}

async function lastVerifications(ctx: CommandContext): Promise<Record<string, EntryVerification>> {
  const result: Record<string, EntryVerification> = {};
  for (const database of ctx.config.databases) {
    try {
      const storage = await ctx.storage(database);
      const keys = (await listBackupObjects(storage, database.name)).map((o) => o.key);
      for await (const o of storage.list(recordFolder(database.name, BINLOG_ARCHIVE_ID, 0))) keys.push(o.key);
      let backup: EntryVerification['backup'] = null;
      let binlog: RecordSummary | null = null;
      for (const [backupId, summary] of newestRecords(keys)) {
        if (backupId === BINLOG_ARCHIVE_ID) binlog = summary;
        else if (!backup || summary.at > backup.at) backup = { ...summary, backupId };
      }
      result[database.name] = { backup, binlog };
    } catch (err) {
      result[database.name] = { backup: null, binlog: null, error: brief(`cannot read the verification records: ${messageOf(err)}`) };
    }
  }
  return result;
}

function verificationText(v: RecordSummary | null, tz: string, id?: string): string {
  if (!v) return 'never';
  return `${v.ok ? 'ok' : 'FAILED'} at depth ${v.depth}, ${formatTime(v.at, tz)}${id ? ` (${id})` : ''}`;
}

interface DaemonStatus {
  pid: number;
  startedAt: string;
  version: string;
  jobs: JobStatus[];
  binlog?: Record<string, BinlogStatus>;
}

/** Asks a running daemon for its status on its HTTP listener (HTTPS when the API has TLS); undefined when none answers. */
async function askDaemon(config: CommandContext['config']): Promise<DaemonStatus | undefined> {
  try {
    const { call } = (await import('./daemon-client.ts')).daemonRequester(config);
    const reply = await call('GET', '/status', undefined, 2000);
    return reply.status === 200 ? (reply.body as DaemonStatus) : undefined;
  } catch {
    return undefined; // nothing listening: the daemon is not running
  }
}

/** What the catalog and the schedules say, for when no daemon is running. */
async function offlineStatus(ctx: CommandContext, now: Date): Promise<JobStatus[]> {
  const jobs: JobStatus[] = [];
  for (const database of ctx.config.databases) {
    let listing: Awaited<ReturnType<typeof listBackups>> = { backups: [], unreadable: [], objects: new Map() };
    let error: string | undefined;
    try {
      listing = await listBackups(await ctx.storage(database), database.name, await ctx.catalog(database));
    } catch (err) {
      error = messageOf(err);
    }
    const { backups } = listing;
    for (const schedule of database.schedules) {
      const newest = backups.find((b) => b.type === schedule.type);
      // An unreadable manifest newer than the newest readable one may be this job's last run:
      // say so, never report the older backup as the last success.
      const hidden = hiddenNewer(listing.unreadable, newest);
      const problem = error !== undefined ? `cannot read the catalog: ${error}` : hidden && `${describeUnreadable(hidden)}: it may be the last backup`;
      jobs.push({
        database: database.name,
        type: schedule.type,
        schedule: schedule.description,
        nextRun: nextRun(schedule, now)?.toISOString(),
        running: false,
        last: problem
          ? { result: 'failure', at: now.toISOString(), trigger: 'manual', error: brief(problem), hint: undefined }
          : newest && { result: 'success', at: newest.completedAt, trigger: newest.trigger, backupId: newest.id, sizeBytes: newest.sizeBytes },
        lastSuccessAt: newest?.completedAt,
      });
    }
  }
  return jobs;
}

/** Binlog archives of the entries with capture enabled, read from storage (no daemon: not connected). */
async function offlineBinlog(ctx: CommandContext): Promise<Record<string, BinlogStatus>> {
  const result: Record<string, BinlogStatus> = {};
  for (const database of ctx.config.databases.filter((d) => d.binlog.enabled)) {
    const status: BinlogStatus = {
      health: 'starting',
      healthSince: new Date().toISOString(),
      connected: false,
      pendingBytes: 0,
      spoolBytes: 0,
      pendingSince: null,
      lagSeconds: 0,
      lastEventAt: null,
      lastRecoverableAt: null,
      completeThrough: null,
      segments: 0,
      error: null,
      storageError: null,
    };
    try {
      const storage = await ctx.storage(database);
      const [archive, { backups }] = await Promise.all([Archive.load(storage, database.name), listBackups(storage, database.name, await ctx.catalog(database))]);
      const summary = await archive.summarize(backups);
      status.segments = summary.segments;
      status.lastEventAt = summary.runs.at(-1)?.to.at ?? null;
      status.lastRecoverableAt = summary.lastRecoverableAt;
      status.completeThrough = summary.completeThrough?.through ?? null;
    } catch (err) {
      status.error = brief(`cannot read the binlog archive: ${messageOf(err)}`);
    }
    result[database.name] = status;
  }
  return result;
}

/** One cell: the capture's health, and why when it is not healthy. */
function captureText(b: BinlogStatus): string {
  // A daemon of an older version reports no health.
  const health = (b.health as BinlogStatus['health'] | undefined) ?? (b.connected ? 'healthy' : 'reconnecting');
  if (health === 'failed') return `FAILED: ${b.error ?? 'unknown'}`;
  if (health === 'degraded') return `DEGRADED: ${b.error ?? 'unknown'}`;
  return health === 'healthy' ? 'connected' : health;
}

/** `agent status`: per database and type, the last result and the next run, and whether the daemon runs. */
export async function status(ctx: CommandContext, options: { json?: boolean }): Promise<void> {
  const { listen_host: host, listen_port: port } = ctx.config.daemon;
  const live = await askDaemon(ctx.config);
  const jobs = live?.jobs ?? (await offlineStatus(ctx, new Date()));
  const binlog = live ? (live.binlog ?? {}) : await offlineBinlog(ctx);
  const verifications = await lastVerifications(ctx);
  if (options.json) {
    out(JSON.stringify({ daemon: live ? { running: true, pid: live.pid, startedAt: live.startedAt, version: live.version } : { running: false }, jobs, binlog, verifications }, null, 2));
    return;
  }
  const tz = ctx.config.timezone;
  out(live ? `daemon: running (pid ${live.pid}, since ${formatTime(live.startedAt, tz)}, version ${live.version})` : `daemon: not running (nothing answers on ${host}:${port})`);
  out('');
  out(
    renderTable(
      ['DATABASE', 'TYPE', 'SCHEDULE', 'LAST RESULT', 'LAST SUCCESS', 'NEXT RUN'],
      jobs.map((j) => [
        j.database,
        j.type,
        j.schedule ?? '-',
        j.running
          ? 'running'
          : !j.last
            ? 'none yet'
            : j.last.result === 'success'
              ? `success (${j.last.trigger}, ${formatBytes(j.last.sizeBytes)})`
              : `FAILED at ${formatTime(j.last.at, tz)}: ${j.last.error.split('\n')[0]}`,
        j.lastSuccessAt ? formatTime(j.lastSuccessAt, tz) : '-',
        j.nextRun ? formatTime(j.nextRun, tz) : '-',
      ]),
    ),
  );
  const captures = Object.entries(binlog);
  if (captures.length > 0) {
    out('');
    out(
      renderTable(
        ['DATABASE', 'BINLOG CAPTURE', 'LAG', 'LAST ARCHIVED EVENT', 'LAST RECOVERABLE TIME'],
        captures.map(([name, b]) => [
          name,
          !live ? (b.error ? `unreadable: ${b.error}` : 'daemon not running') : captureText(b),
          live ? `${b.lagSeconds.toFixed(1)} s` : '-',
          b.lastEventAt ? formatTime(b.lastEventAt, tz) : '-',
          b.lastRecoverableAt ? formatTime(b.lastRecoverableAt, tz) : 'none',
        ]),
      ),
    );
  }
  out('');
  out(
    renderTable(
      ['DATABASE', 'LAST VERIFICATION', 'BINLOG ARCHIVE VERIFIED'],
      Object.entries(verifications).map(([name, v]) => [name, v.error ? `unreadable: ${v.error}` : verificationText(v.backup, tz, v.backup?.backupId), v.error ? '-' : verificationText(v.binlog, tz)]),
    ),
  );
}
