import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { configSchema, type NotificationsConfig } from '../../src/config/schema.ts';
import { Secret } from '../../src/config/secret.ts';
import { DaemonEventBus, type JobFailed, type JobSucceeded } from '../../src/daemon/events.ts';
import { deliver, displayUrl } from '../../src/notify/deliver.ts';
import { appendPath, attachNotifier } from '../../src/notify/notifier.ts';
import { freePort } from '../harness/child-process.ts';
import { AGENT_VERSION } from '../../src/version.ts';

interface Recorded {
  method: string;
  url: string;
  contentType: string | undefined;
  authorization: string | undefined;
  body: string;
}

/**
 * A real HTTP receiver on 127.0.0.1 that records every request. `reply` decides the answer;
 * by default 200 "OK" (what healthchecks.io says).
 */
class Receiver {
  readonly requests: Recorded[] = [];
  reply: (req: Recorded, res: ServerResponse) => void = (_req, res) => res.end('OK');
  #server: Server | undefined;
  base = '';

  async start(): Promise<void> {
    this.#server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const recorded = { method: req.method ?? '', url: req.url ?? '', contentType: req.headers['content-type'], authorization: req.headers.authorization, body: Buffer.concat(chunks).toString('utf8') };
        this.requests.push(recorded);
        this.reply(recorded, res);
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    if (address === null || typeof address === 'string') throw new Error('no address');
    this.base = `http://127.0.0.1:${address.port}`;
  }

  reset(): void {
    this.requests.length = 0;
    this.reply = (_req, res) => res.end('OK');
  }

  /** Answers with these statuses in turn, then 200. */
  statuses(...codes: number[]): void {
    const queue = [...codes];
    this.reply = (_req, res) => {
      res.statusCode = queue.shift() ?? 200;
      res.end(res.statusCode === 200 ? 'OK' : 'nope');
    };
  }

  async stop(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}

/** A pino logger writing JSON lines to memory, to assert on what would reach the journal. */
function memoryLogger(): { logger: Logger; lines: () => Record<string, unknown>[]; text: () => string } {
  const chunks: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (chunk: string) => void chunks.push(chunk) });
  return {
    logger,
    text: () => chunks.join(''),
    lines: () => chunks.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** The notifications block as the real config loader produces it (URLs become Secrets). */
function notifications(block: Record<string, unknown>): NotificationsConfig {
  return configSchema.parse({ databases: [{ name: 'prod' }], notifications: block }).notifications;
}

function manifest(): Manifest {
  return {
    format: 'backup-agent/manifest',
    version: 1,
    id: '20250101T030000.123Z',
    database: 'prod',
    type: 'dump',
    trigger: 'periodic',
    status: 'completed',
    startedAt: '2025-01-01T03:00:00.123Z',
    completedAt: '2025-01-01T03:00:42.000Z',
    sizeBytes: 4096,
    rawSizeBytes: 16_384,
    compression: { algorithm: 'zstd', level: 3 },
    encryption: null,
    schemas: ['app'],
    objects: [{ key: 'k', role: 'data', sizeBytes: 4096, sha256: 'b'.repeat(64), compression: 'zstd', rawSizeBytes: 16_384 }],
    binlog: null,
    server: { flavor: 'mariadb', version: '11.4.0', serverId: 1, hostname: 'db' },
    tool: { name: 'mariadb-dump', version: '11.4.0' },
    agent: { version: '0.1.0', hostname: 'agent' },
  };
}

const startedAt = new Date('2025-01-01T03:00:00.123Z');
const failure = (database = 'prod'): JobFailed => ({
  database,
  type: 'dump',
  trigger: 'periodic',
  message: `connect to ${database}: access denied for user 'backup'`,
  hint: 'check the password in the configuration',
  durationMs: 1500,
  startedAt,
});
const success = (database = 'prod'): JobSucceeded => ({ database, type: 'dump', trigger: 'manual', manifest: manifest(), durationMs: 41_877 });
const agent = { version: AGENT_VERSION, hostname: hostname() };

const receiver = new Receiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());
afterEach(() => receiver.reset());

describe('webhooks', () => {
  it('posts the failure payload, and nothing on success by default', async () => {
    const bus = new DaemonEventBus();
    const log = memoryLogger();
    const notifier = attachNotifier(bus, notifications({ webhooks: [{ url: `${receiver.base}/hooks/T0KEN-fail` }] }), log.logger, { backoffMs: 10 });
    bus.emit('job:success', success());
    bus.emit('job:failure', failure());
    await notifier.flush();
    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request).toMatchObject({ method: 'POST', url: '/hooks/T0KEN-fail', contentType: 'application/json' });
    expect(JSON.parse(request!.body)).toEqual({
      event: 'backup.failed',
      database: 'prod',
      type: 'dump',
      trigger: 'periodic',
      at: '2025-01-01T03:00:01.623Z',
      durationMs: 1500,
      error: "connect to prod: access denied for user 'backup'",
      hint: 'check the password in the configuration',
      agent,
    });
    notifier.detach();
  });

  it('posts the success payload when `on` includes success', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({ webhooks: [{ url: `${receiver.base}/hooks/both`, on: ['success', 'failure'] }] }),
      memoryLogger().logger,
      { backoffMs: 10 },
    );
    bus.emit('job:success', success());
    await notifier.flush();
    expect(receiver.requests).toHaveLength(1);
    expect(receiver.requests[0]).toMatchObject({ method: 'POST', url: '/hooks/both' });
    expect(JSON.parse(receiver.requests[0]!.body)).toEqual({
      event: 'backup.succeeded',
      database: 'prod',
      type: 'dump',
      trigger: 'manual',
      at: '2025-01-01T03:00:42.000Z',
      durationMs: 41_877,
      backup: { id: '20250101T030000.123Z', sizeBytes: 4096, createdAt: '2025-01-01T03:00:42.000Z' },
      agent,
    });
    notifier.detach();
  });

  it('sends only for the listed databases', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({
        webhooks: [
          { url: `${receiver.base}/hooks/staging-only`, databases: ['staging'] },
          { url: `${receiver.base}/hooks/all` },
        ],
      }),
      memoryLogger().logger,
    );
    bus.emit('job:failure', failure('prod'));
    bus.emit('job:failure', failure('staging'));
    await notifier.flush();
    const seen = receiver.requests.map((r) => `${r.url} ${(JSON.parse(r.body) as { database: string }).database}`).sort();
    expect(seen).toEqual(['/hooks/all prod', '/hooks/all staging', '/hooks/staging-only staging']);
    notifier.detach();
  });

  it('never blocks the emitter, flush waits for the delivery, detach stops listening', async () => {
    const bus = new DaemonEventBus();
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    receiver.reply = (_req, res) => void held.then(() => res.end('OK'));
    const notifier = attachNotifier(bus, notifications({ webhooks: [{ url: `${receiver.base}/hooks/slow` }] }), memoryLogger().logger);
    bus.emit('job:failure', failure());
    let flushed = false;
    const flushing = notifier.flush().then(() => (flushed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(receiver.requests).toHaveLength(1);
    expect(flushed).toBe(false);
    release();
    await flushing;
    expect(flushed).toBe(true);

    notifier.detach();
    bus.emit('job:failure', failure());
    await notifier.flush();
    expect(receiver.requests).toHaveLength(1);
    expect(bus.listenerCount('job:failure')).toBe(0);
  });
});

describe('heartbeats', () => {
  it('pings <url>/start, <url> and POSTs <url>/fail with the error text, keeping the query string', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({
        heartbeats: [
          { url: `${receiver.base}/ping/KEY/prod-dump?create=1`, database: 'prod', type: 'dump' },
          { url: `${receiver.base}/uuid-1234/` },
          { url: `${receiver.base}/ping/KEY/staging`, database: 'staging' },
        ],
      }),
      memoryLogger().logger,
      { backoffMs: 10 },
    );
    bus.emit('job:start', { database: 'prod', type: 'dump', trigger: 'periodic', startedAt });
    bus.emit('job:success', success());
    await notifier.flush();
    bus.emit('job:start', { database: 'prod', type: 'dump', trigger: 'periodic', startedAt });
    bus.emit('job:failure', failure());
    await notifier.flush();

    const byTarget = (prefix: string) => receiver.requests.filter((r) => r.url.startsWith(prefix)).map((r) => `${r.method} ${r.url}`);
    // Pings of one heartbeat are sent in order: start is never overtaken by its success.
    expect(byTarget('/ping/KEY/prod-dump')).toEqual([
      'GET /ping/KEY/prod-dump/start?create=1',
      'GET /ping/KEY/prod-dump?create=1',
      'GET /ping/KEY/prod-dump/start?create=1',
      'POST /ping/KEY/prod-dump/fail?create=1',
    ]);
    expect(byTarget('/uuid-1234')).toEqual(['GET /uuid-1234/start', 'GET /uuid-1234/', 'GET /uuid-1234/start', 'POST /uuid-1234/fail']);
    expect(byTarget('/ping/KEY/staging')).toEqual([]);

    const fail = receiver.requests.find((r) => r.url === '/ping/KEY/prod-dump/fail?create=1')!;
    expect(fail.contentType).toBe('text/plain; charset=utf-8');
    expect(fail.body).toBe("connect to prod: access denied for user 'backup'\nhint: check the password in the configuration");
    expect(receiver.requests.filter((r) => r.method === 'GET').every((r) => r.body === '')).toBe(true);
    notifier.detach();
  });

  it('joins paths without double slashes', () => {
    expect(appendPath('https://hc-ping.com/abc', 'start')).toBe('https://hc-ping.com/abc/start');
    expect(appendPath('https://hc-ping.com/abc/', 'start')).toBe('https://hc-ping.com/abc/start');
    expect(appendPath('https://hc-ping.com/key/slug?create=1', 'fail')).toBe('https://hc-ping.com/key/slug/fail?create=1');
    expect(appendPath('https://hc.example.com', 'start')).toBe('https://hc.example.com/start');
  });
});

describe('delivery', () => {
  it('retries 500s and delivers on the third attempt', async () => {
    receiver.statuses(500, 500);
    const log = memoryLogger();
    const delivered = await deliver(
      { url: new Secret(`${receiver.base}/hooks/retry`), method: 'POST', body: { hello: 'world' } },
      { attempts: 3, timeoutMs: 2000, backoffMs: 10, logger: log.logger, what: 'webhook' },
    );
    expect(delivered).toBe(true);
    expect(receiver.requests.map((r) => r.body)).toEqual(['{"hello":"world"}', '{"hello":"world"}', '{"hello":"world"}']);
    const warnings = log.lines().filter((l) => l['level'] === 40);
    expect(warnings.map((l) => [l['attempt'], l['status'], l['target']])).toEqual([
      [1, 500, `${receiver.base}/…`],
      [2, 500, `${receiver.base}/…`],
    ]);
    expect(log.lines().filter((l) => (l['level'] as number) >= 50)).toEqual([]);
  });

  it('sends URL credentials as basic auth (fetch refuses them in the URL)', async () => {
    const log = memoryLogger();
    const url = new Secret(`${receiver.base.replace('http://', 'http://hook%20user:p%40ss@')}/hooks/basic?x=1`);
    expect(displayUrl(url)).toBe(`${receiver.base}/…`);
    expect(await deliver({ url, method: 'POST', body: 'hi' }, { attempts: 1, timeoutMs: 2000, logger: log.logger, what: 'webhook' })).toBe(true);
    expect(receiver.requests).toEqual([
      {
        method: 'POST',
        url: '/hooks/basic?x=1',
        contentType: 'text/plain; charset=utf-8',
        authorization: `Basic ${Buffer.from('hook user:p@ss').toString('base64')}`,
        body: 'hi',
      },
    ]);
  });

  it('retries 429 too', async () => {
    receiver.statuses(429);
    const log = memoryLogger();
    const ok = await deliver({ url: new Secret(`${receiver.base}/x`), method: 'GET' }, { attempts: 2, timeoutMs: 2000, backoffMs: 10, logger: log.logger, what: 'heartbeat' });
    expect(ok).toBe(true);
    expect(receiver.requests).toHaveLength(2);
  });

  it('does not retry a 404, and gives up at error', async () => {
    receiver.statuses(404, 404, 404);
    const log = memoryLogger();
    const delivered = await deliver({ url: new Secret(`${receiver.base}/gone`), method: 'GET' }, { attempts: 3, timeoutMs: 2000, backoffMs: 10, logger: log.logger, what: 'heartbeat' });
    expect(delivered).toBe(false);
    expect(receiver.requests).toHaveLength(1);
    const errors = log.lines().filter((l) => l['level'] === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ status: 404, attempt: 1, notification: 'heartbeat', target: `${receiver.base}/…` });
  });

  it('gives up on an unreachable port after `attempts`, resolving false without throwing', async () => {
    const port = await freePort();
    const log = memoryLogger();
    const delivered = await deliver(
      { url: new Secret(`http://127.0.0.1:${port}/hooks/x`), method: 'POST', body: {} },
      { attempts: 3, timeoutMs: 2000, backoffMs: 10, logger: log.logger, what: 'webhook' },
    );
    expect(delivered).toBe(false);
    const lines = log.lines();
    expect(lines.filter((l) => l['level'] === 40).map((l) => l['attempt'])).toEqual([1, 2]);
    const errors = lines.filter((l) => l['level'] === 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ attempt: 3, target: `http://127.0.0.1:${port}/…` });
    expect(String(errors[0]!['err'])).toMatch(/ECONNREFUSED/);
  });

  it('times out a server that never answers, and retries', async () => {
    receiver.reply = () => undefined;
    const log = memoryLogger();
    const delivered = await deliver({ url: new Secret(`${receiver.base}/hang`), method: 'GET' }, { attempts: 2, timeoutMs: 200, backoffMs: 10, logger: log.logger, what: 'heartbeat' });
    expect(delivered).toBe(false);
    expect(receiver.requests).toHaveLength(2);
    expect(log.lines().filter((l) => (l['level'] as number) >= 40).map((l) => l['err'])).toEqual(['timed out', 'timed out']);
  });

  it('stops at once when its signal is aborted', async () => {
    receiver.statuses(503, 503, 503);
    const controller = new AbortController();
    const log = memoryLogger();
    const delivering = deliver(
      { url: new Secret(`${receiver.base}/busy`), method: 'GET' },
      { attempts: 5, timeoutMs: 2000, backoffMs: 60_000, logger: log.logger, what: 'heartbeat', signal: controller.signal },
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    controller.abort();
    expect(await delivering).toBe(false);
    expect(receiver.requests).toHaveLength(1);
  });

  it('never logs the URL path or query, where tokens live', async () => {
    const token = 'hc-S3CR3T-token-9f8e7d';
    const log = memoryLogger();
    const port = await freePort();
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({
        attempts: 2,
        webhooks: [
          { url: `${receiver.base}/hooks/${token}?key=${token}`, on: ['failure', 'success'] },
          { url: `http://user:${token}@127.0.0.1:${port}/${token}` },
        ],
        heartbeats: [{ url: `${receiver.base}/ping/${token}` }],
      }),
      log.logger,
      { backoffMs: 10 },
    );
    receiver.reply = (req, res) => {
      res.statusCode = req.url.includes('/ping/') ? 404 : 500;
      res.end(`you sent ${req.url}`);
    };
    bus.emit('job:start', { database: 'prod', type: 'dump', trigger: 'periodic', startedAt });
    bus.emit('job:success', success());
    bus.emit('job:failure', failure());
    await notifier.flush();
    notifier.detach();

    expect(receiver.requests.some((r) => r.url.includes(token))).toBe(true);
    const text = log.text();
    expect(log.lines().length).toBeGreaterThan(5);
    expect(text).toContain(`${receiver.base}/…`);
    expect(text).toContain(`http://127.0.0.1:${port}/…`);
    expect(text).not.toContain(token);
    expect(displayUrl(new Secret(`https://hc-ping.com/${token}`))).toBe('https://hc-ping.com/…');
    expect(displayUrl(new Secret('https://hooks.example.com'))).toBe('https://hooks.example.com');
  });
});

describe('binlog capture and prune notifications', () => {
  const change = (health: 'healthy' | 'degraded' | 'failed' | 'reconnecting', previous: 'healthy' | 'degraded' | 'failed' | 'reconnecting', reason: string | null = null) => ({
    database: 'prod',
    health,
    previous,
    reason,
    at: new Date('2026-11-21T10:00:00.000Z'),
  });

  it('webhooks binlog.degraded, binlog.failed and binlog.recovered (only once healthy again), to failure webhooks', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(bus, notifications({ webhooks: [{ url: `${receiver.base}/hook` }] }), memoryLogger().logger, { backoffMs: 10 });
    bus.emit('binlog:health', change('degraded', 'healthy', 'storage writes failing since 2026-11-21T09:59:00.000Z: connect ECONNREFUSED'));
    bus.emit('binlog:health', change('failed', 'degraded', 'binlog capture of prod: spool over its bound'));
    bus.emit('binlog:health', change('reconnecting', 'failed'));
    bus.emit('binlog:health', change('healthy', 'reconnecting'));
    bus.emit('binlog:health', change('reconnecting', 'healthy'));
    bus.emit('binlog:health', change('healthy', 'reconnecting'));
    await notifier.flush();
    const bodies = receiver.requests.map((r) => JSON.parse(r.body) as Record<string, unknown>);
    expect(bodies.map((b) => b['event'])).toEqual(['binlog.degraded', 'binlog.failed', 'binlog.recovered']);
    expect(bodies[0]).toEqual({
      event: 'binlog.degraded',
      database: 'prod',
      at: '2026-11-21T10:00:00.000Z',
      previous: 'healthy',
      error: 'storage writes failing since 2026-11-21T09:59:00.000Z: connect ECONNREFUSED',
      agent,
    });
    notifier.detach();
  });

  it('heartbeats: a capture alarm pings /fail, and a backup success while it lasts pings /fail too', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(bus, notifications({ heartbeats: [{ url: `${receiver.base}/hb`, database: 'prod' }] }), memoryLogger().logger, { backoffMs: 10 });
    bus.emit('binlog:health', change('degraded', 'healthy', 'segment uploads failing'));
    await notifier.flush();
    bus.emit('job:success', success());
    await notifier.flush();
    bus.emit('binlog:health', change('healthy', 'degraded'));
    bus.emit('job:success', success());
    await notifier.flush();
    expect(receiver.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /hb/fail', 'POST /hb/fail', 'GET /hb']);
    expect(receiver.requests[0]?.body).toBe('binlog capture of prod degraded: segment uploads failing');
    expect(receiver.requests[1]?.body).toBe('backup 20250101T030000.123Z of prod succeeded, but its binlog capture is degraded: segment uploads failing');
    notifier.detach();
  });

  it('prune.failed goes to failure webhooks and fails the heartbeat', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({ webhooks: [{ url: `${receiver.base}/hook` }, { url: `${receiver.base}/ok-only`, on: ['success'] }], heartbeats: [{ url: `${receiver.base}/hb` }] }),
      memoryLogger().logger,
      { backoffMs: 10 },
    );
    bus.emit('prune:failure', { database: 'prod', why: 'daily', at: new Date('2026-11-21T04:00:01.000Z'), message: 'prune prod: locked by host-b', hint: 'wait for the other prune' });
    await notifier.flush();
    const hook = receiver.requests.find((r) => r.url === '/hook');
    expect(JSON.parse(hook!.body)).toEqual({
      event: 'prune.failed',
      database: 'prod',
      at: '2026-11-21T04:00:01.000Z',
      why: 'daily',
      error: 'prune prod: locked by host-b',
      hint: 'wait for the other prune',
      agent,
    });
    expect(receiver.requests.some((r) => r.url === '/ok-only')).toBe(false);
    expect(receiver.requests.find((r) => r.url === '/hb/fail')?.body).toBe('prune of prod failed: prune prod: locked by host-b\nhint: wait for the other prune');
    notifier.detach();
  });
  it('verify.failed goes to failure webhooks with the failed backups and their problems, and fails the heartbeat', async () => {
    const bus = new DaemonEventBus();
    const notifier = attachNotifier(
      bus,
      notifications({ webhooks: [{ url: `${receiver.base}/hook` }, { url: `${receiver.base}/ok-only`, on: ['success'] }], heartbeats: [{ url: `${receiver.base}/hb` }] }),
      memoryLogger().logger,
      { backoffMs: 10 },
    );
    const problem = { backupId: '20261130T010000Z', key: 'prod/backups/20261130T010000Z/dump.sql.zst', message: 'the zstd stream ends early' };
    bus.emit('verify:failure', {
      database: 'prod',
      depth: 'archive',
      trigger: 'periodic',
      outcomes: [
        { database: 'prod', backupId: '20261201T010000Z', depth: 'archive', ok: true, problems: [], startedAt: '2026-12-01T05:00:00.000Z', finishedAt: '2026-12-01T05:00:10.000Z' },
        { database: 'prod', backupId: '20261130T010000Z', depth: 'archive', ok: false, problems: [problem], startedAt: '2026-12-01T05:00:10.000Z', finishedAt: '2026-12-01T05:00:20.000Z' },
      ],
      message: 'verification of prod at depth archive failed for 1 of 2 backups: backup 20261130T010000Z: prod/backups/20261130T010000Z/dump.sql.zst: the zstd stream ends early',
      hint: undefined,
      at: new Date('2026-12-01T05:00:20.000Z'),
      durationMs: 20_000,
    });
    await notifier.flush();
    expect(JSON.parse(receiver.requests.find((r) => r.url === '/hook')!.body)).toEqual({
      event: 'verify.failed',
      database: 'prod',
      at: '2026-12-01T05:00:20.000Z',
      depth: 'archive',
      failed: [{ id: '20261130T010000Z', problems: [{ key: problem.key, message: problem.message }] }],
      error: 'verification of prod at depth archive failed for 1 of 2 backups: backup 20261130T010000Z: prod/backups/20261130T010000Z/dump.sql.zst: the zstd stream ends early',
      agent,
    });
    expect(receiver.requests.some((r) => r.url === '/ok-only')).toBe(false);
    expect(receiver.requests.find((r) => r.url === '/hb/fail')?.body).toBe(
      'verification of prod failed: verification of prod at depth archive failed for 1 of 2 backups: backup 20261130T010000Z: prod/backups/20261130T010000Z/dump.sql.zst: the zstd stream ends early',
    );
    notifier.detach();
  });
});
