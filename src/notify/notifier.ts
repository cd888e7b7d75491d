import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { NotificationsConfig } from '../config/schema.ts';
import { Secret } from '../config/secret.ts';
import { isAlarming, type CaptureHealth } from '../daemon/binlog-health.ts';
import type { BinlogHealthChange, DaemonEvents, DaemonEventBus, JobFailed, JobRef, JobStarted, JobSucceeded, PruneFailed, VerifyFailed } from '../daemon/events.ts';
import { messageOf } from '../errors.ts';
import { AGENT_VERSION } from '../version.ts';
import { deliver, type DeliveryRequest } from './deliver.ts';

/** The JSON body POSTed to webhooks. docs should list it field by field: receivers depend on it. */
export interface WebhookPayload {
  event: 'backup.failed' | 'backup.succeeded';
  database: string;
  type: JobRef['type'];
  trigger: JobRef['trigger'];
  /** When the job ended, ISO 8601. */
  at: string;
  durationMs: number;
  /** Failure only: the error as the CLI prints it, and what to do about it. */
  error?: string;
  hint?: string;
  /** Success only. `location` is not known to the event bus yet and is left out. */
  backup?: { id: string; sizeBytes: number; createdAt: string; location?: string };
  agent: { version: string; hostname: string };
}

/**
 * The JSON body of binlog capture webhooks: sent to webhooks with `failure` in `on` when a capture
 * turns degraded (uploads failing, or not connected for a minute) or failed, and when it is
 * healthy again after that (`binlog.recovered`).
 */
export interface BinlogWebhookPayload {
  event: 'binlog.degraded' | 'binlog.failed' | 'binlog.recovered';
  database: string;
  /** When the capture entered this state, ISO 8601. */
  at: string;
  previous: CaptureHealth;
  /** Why, one line of at most 300 characters (the full text is in the log). */
  error?: string;
  agent: { version: string; hostname: string };
}

/** The JSON body sent to webhooks with `failure` in `on` when a daemon prune fails. */
export interface PruneWebhookPayload {
  event: 'prune.failed';
  database: string;
  at: string;
  /** What started the prune: "after a periodic backup" or "daily". */
  why: string;
  error: string;
  hint?: string;
  agent: { version: string; hostname: string };
}

/**
 * The JSON body sent to webhooks with `failure` in `on` when a daemon verification fails: a backup
 * failed `agent verify` at `depth`, or the verification could not run.
 */
export interface VerifyWebhookPayload {
  event: 'verify.failed';
  database: string;
  at: string;
  depth: 'objects' | 'archive' | 'restore';
  /** The backups that failed, each with its problems (as `agent verify --json` prints them). */
  failed: { id: string; problems: { key?: string; message: string }[] }[];
  error: string;
  hint?: string;
  agent: { version: string; hostname: string };
}

export interface NotifierOptions {
  /** The first retry's wait, doubling after; default 1000 ms. Tests make it small. */
  backoffMs?: number;
  /** Aborting gives up every pending and future delivery at once (a forced shutdown). */
  signal?: AbortSignal;
}

export interface Notifier {
  /** Resolves when every delivery started so far has been delivered or given up. Never rejects. */
  flush(): Promise<void>;
  /** Stops listening (config reload); deliveries already under way carry on and `flush` still waits for them. */
  detach(): void;
}

/** Bodies healthchecks.io keeps are limited (100 kB); error messages are far shorter, but be safe. */
const MAX_PING_BODY = 10_000;

/**
 * Appends a path segment to a URL: no double slash, query string and fragment kept
 * (`https://hc-ping.com/key/slug?create=1` + `start` → `https://hc-ping.com/key/slug/start?create=1`).
 */
export function appendPath(url: string, segment: string): string {
  const parsed = new URL(url);
  parsed.pathname = `${parsed.pathname.replace(/\/+$/, '')}/${segment.replace(/^\/+/, '')}`;
  return parsed.toString();
}

/**
 * Sends webhooks and heartbeat pings for job, binlog capture and prune events. Deliveries run in the background: listeners
 * return at once and never throw, and a notification that cannot be delivered is retried, then
 * logged, and never fails the job.
 */
export function attachNotifier(bus: DaemonEventBus, config: NotificationsConfig, logger: Logger, options: NotifierOptions = {}): Notifier {
  const log = logger.child({ component: 'notify' });
  const inFlight = new Set<Promise<unknown>>();
  const agent = { version: AGENT_VERSION, hostname: hostname() };

  const send = (request: DeliveryRequest, what: string): Promise<boolean> =>
    deliver(request, {
      attempts: config.attempts,
      timeoutMs: config.timeout,
      logger: log,
      what,
      ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
      ...(options.signal ? { signal: options.signal } : {}),
    });
  const track = (delivery: Promise<unknown>): void => {
    inFlight.add(delivery);
    void delivery.finally(() => inFlight.delete(delivery));
  };

  /**
   * Pings of one heartbeat go out in order: a `/start` still being retried must not land after the
   * success ping, or healthchecks would think the job is running again.
   */
  const pingQueues = new Map<number, Promise<unknown>>();
  const ping = (index: number, request: DeliveryRequest, what: string): void => {
    const previous = pingQueues.get(index) ?? Promise.resolve();
    const next = previous.then(() => send(request, what));
    pingQueues.set(index, next);
    track(next);
    void next.finally(() => {
      if (pingQueues.get(index) === next) pingQueues.delete(index);
    });
  };

  const heartbeatsFor = (job: JobRef) =>
    config.heartbeats
      .map((heartbeat, index) => ({ heartbeat, index }))
      .filter(({ heartbeat }) => (heartbeat.database ?? job.database) === job.database && (heartbeat.type ?? job.type) === job.type);

  const webhooksFor = (job: Pick<JobRef, 'database'>, on: 'failure' | 'success') =>
    config.webhooks.filter((webhook) => webhook.on.includes(on) && (webhook.databases?.includes(job.database) ?? true));

  /** Captures that are degraded or failed, by database: a heartbeat must not report healthy meanwhile. */
  const unhealthy = new Map<string, { health: CaptureHealth; reason: string | null }>();
  const heartbeatsOfDatabase = (database: string) =>
    config.heartbeats.map((heartbeat, index) => ({ heartbeat, index })).filter(({ heartbeat }) => (heartbeat.database ?? database) === database);
  const failPing = (index: number, url: Secret, text: string, what: string): void =>
    ping(index, { url: new Secret(appendPath(url.reveal(), 'fail')), method: 'POST', body: text.slice(0, MAX_PING_BODY) }, what);

  const onBinlogHealth = (event: BinlogHealthChange): void => {
    const alarming = isAlarming(event.health);
    const wasAlarming = unhealthy.has(event.database);
    if (alarming) unhealthy.set(event.database, { health: event.health, reason: event.reason });
    else if (event.health === 'healthy') unhealthy.delete(event.database);
    // Reconnecting or starting after an alarm is not yet a recovery: say nothing until healthy.
    if (!alarming && !(wasAlarming && event.health === 'healthy')) return;
    const name = alarming ? (`binlog.${event.health}` as 'binlog.degraded' | 'binlog.failed') : 'binlog.recovered';
    const payload: BinlogWebhookPayload = {
      event: name,
      database: event.database,
      at: event.at.toISOString(),
      previous: event.previous,
      ...(event.reason === null ? {} : { error: event.reason }),
      agent,
    };
    for (const webhook of webhooksFor({ database: event.database }, 'failure')) track(send({ url: webhook.url, method: 'POST', body: payload }, `webhook ${name}`));
    if (alarming) {
      const text = `binlog capture of ${event.database} ${event.health}: ${event.reason ?? 'unknown'}`;
      for (const { heartbeat, index } of heartbeatsOfDatabase(event.database)) failPing(index, heartbeat.url, text, 'heartbeat binlog failure');
    }
  };

  const onPruneFailure = (event: PruneFailed): void => {
    const payload: PruneWebhookPayload = {
      event: 'prune.failed',
      database: event.database,
      at: event.at.toISOString(),
      why: event.why,
      error: event.message,
      ...(event.hint === undefined ? {} : { hint: event.hint }),
      agent,
    };
    for (const webhook of webhooksFor({ database: event.database }, 'failure')) track(send({ url: webhook.url, method: 'POST', body: payload }, 'webhook prune.failed'));
    const text = `prune of ${event.database} failed: ${event.message}${event.hint === undefined ? '' : `\nhint: ${event.hint}`}`;
    for (const { heartbeat, index } of heartbeatsOfDatabase(event.database)) failPing(index, heartbeat.url, text, 'heartbeat prune failure');
  };

  const onVerifyFailure = (event: VerifyFailed): void => {
    const payload: VerifyWebhookPayload = {
      event: 'verify.failed',
      database: event.database,
      at: event.at.toISOString(),
      depth: event.depth,
      failed: event.outcomes.filter((o) => !o.ok).map((o) => ({ id: o.backupId, problems: o.problems.slice(0, 20).map((p) => ({ ...(p.key === undefined ? {} : { key: p.key }), message: p.message })) })),
      error: event.message,
      ...(event.hint === undefined ? {} : { hint: event.hint }),
      agent,
    };
    for (const webhook of webhooksFor({ database: event.database }, 'failure')) track(send({ url: webhook.url, method: 'POST', body: payload }, 'webhook verify.failed'));
    const text = `verification of ${event.database} failed: ${event.message}${event.hint === undefined ? '' : `\nhint: ${event.hint}`}`.slice(0, MAX_PING_BODY);
    for (const { heartbeat, index } of heartbeatsOfDatabase(event.database)) failPing(index, heartbeat.url, text, 'heartbeat verify failure');
  };

  const onStart = (event: JobStarted): void => {
    for (const { heartbeat, index } of heartbeatsFor(event)) {
      ping(index, { url: new Secret(appendPath(heartbeat.url.reveal(), 'start')), method: 'GET' }, 'heartbeat start');
    }
  };

  const onSuccess = (event: JobSucceeded): void => {
    const { manifest } = event;
    const payload: WebhookPayload = {
      event: 'backup.succeeded',
      database: event.database,
      type: event.type,
      trigger: event.trigger,
      at: manifest.completedAt,
      durationMs: event.durationMs,
      backup: { id: manifest.id, sizeBytes: manifest.sizeBytes, createdAt: manifest.completedAt },
      agent,
    };
    for (const webhook of webhooksFor(event, 'success')) track(send({ url: webhook.url, method: 'POST', body: payload }, 'webhook backup.succeeded'));
    const capture = unhealthy.get(event.database);
    for (const { heartbeat, index } of heartbeatsFor(event)) {
      if (capture) {
        // The backup is fine, the database's point-in-time recovery is not: the check must stay down.
        failPing(index, heartbeat.url, `backup ${manifest.id} of ${event.database} succeeded, but its binlog capture is ${capture.health}: ${capture.reason ?? 'unknown'}`, 'heartbeat binlog failure');
      } else {
        ping(index, { url: heartbeat.url, method: 'GET' }, 'heartbeat success');
      }
    }
  };

  const onFailure = (event: JobFailed): void => {
    const payload: WebhookPayload = {
      event: 'backup.failed',
      database: event.database,
      type: event.type,
      trigger: event.trigger,
      at: new Date(event.startedAt.getTime() + event.durationMs).toISOString(),
      durationMs: event.durationMs,
      error: event.message,
      ...(event.hint === undefined ? {} : { hint: event.hint }),
      agent,
    };
    for (const webhook of webhooksFor(event, 'failure')) track(send({ url: webhook.url, method: 'POST', body: payload }, 'webhook backup.failed'));
    const text = (event.hint === undefined ? event.message : `${event.message}\nhint: ${event.hint}`).slice(0, MAX_PING_BODY);
    for (const { heartbeat, index } of heartbeatsFor(event)) {
      ping(index, { url: new Secret(appendPath(heartbeat.url.reveal(), 'fail')), method: 'POST', body: text }, 'heartbeat failure');
    }
  };

  /** The emitter runs listeners synchronously inside the job: whatever goes wrong here stays here. */
  const guarded =
    <E extends keyof DaemonEvents>(name: E, handler: (...args: DaemonEvents[E]) => void) =>
    (...args: DaemonEvents[E]): void => {
      try {
        handler(...args);
      } catch (err) {
        log.error({ event: name, err: messageOf(err) }, 'notification not sent');
      }
    };

  const listeners = {
    'job:start': guarded('job:start', onStart),
    'job:success': guarded('job:success', onSuccess),
    'job:failure': guarded('job:failure', onFailure),
    'binlog:health': guarded('binlog:health', onBinlogHealth),
    'prune:failure': guarded('prune:failure', onPruneFailure),
    'verify:failure': guarded('verify:failure', onVerifyFailure),
  };
  bus.on('job:start', listeners['job:start']);
  bus.on('job:success', listeners['job:success']);
  bus.on('job:failure', listeners['job:failure']);
  bus.on('binlog:health', listeners['binlog:health']);
  bus.on('prune:failure', listeners['prune:failure']);
  bus.on('verify:failure', listeners['verify:failure']);

  return {
    async flush() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
    },
    detach() {
      bus.off('job:start', listeners['job:start']);
      bus.off('job:success', listeners['job:success']);
      bus.off('job:failure', listeners['job:failure']);
      bus.off('binlog:health', listeners['binlog:health']);
      bus.off('prune:failure', listeners['prune:failure']);
      bus.off('verify:failure', listeners['verify:failure']);
    },
  };
}
