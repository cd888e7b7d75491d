// A storage outage during binlog capture, made for real: the real `agent daemon` captures a
// throwaway MariaDB under writes into its own s3rver, which the test kills with SIGKILL and later
// starts again on the same directory and port. The capture must say so (/status, /metrics, a
// webhook to a tiny local receiver), recover by itself, and leave no gap in `agent binlog list`.
// A second phase bounds the spool (binlog.max_spool_mb: 1): the capture fails loudly instead of
// growing its spool, then recovers once the storage is back.
import { createRequire } from 'node:module';
import { createServer, type Server } from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import mysql from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { freePort, httpAnswers, spawnService, type ServiceHandle } from '../harness/child-process.ts';
import { createS3Bucket } from '../harness/s3-server.ts';
import { AGENT, agent, testDir, writeConfig } from '../helpers.ts';

const PASSWORD = 'outage-pw';
let dir: string;
let source: Sandbox;
let sourcePort: number;
let s3Port: number;
let s3: ServiceHandle | undefined;
let config: string;
let daemonPort: number;
let daemon: ResultPromise | undefined;
const daemonLog: string[] = [];
let hook: Server;
const hooks: Record<string, unknown>[] = [];

/** s3rver on a fixed port and directory, so that a restart serves the same bucket at the same endpoint. */
async function startS3(): Promise<void> {
  const require = createRequire(import.meta.url);
  const pkgPath = require.resolve('s3rver/package.json');
  const bin = join(dirname(pkgPath), (require(pkgPath) as { bin: Record<string, string> }).bin['s3rver'] ?? 'bin/s3rver.js');
  const endpoint = `http://127.0.0.1:${s3Port}`;
  s3 = await spawnService('s3rver-outage', process.execPath, ['--openssl-legacy-provider', bin, '-d', join(dir, 's3'), '-a', '127.0.0.1', '-p', String(s3Port), '--silent'], {
    runDir: join(inject('runRoot'), 'run'),
    readyCheck: () => httpAnswers(endpoint),
  });
}

/** The storage outage: SIGKILL, no goodbye. */
async function killS3(): Promise<void> {
  if (!s3) return;
  process.kill(s3.pid, 'SIGKILL');
  for (let i = 0; i < 100 && (await httpAnswers(`http://127.0.0.1:${s3Port}`)); i++) await sleep(50);
  await s3.stop();
  s3 = undefined;
}

interface CaptureStatus {
  health: string;
  healthSince: string;
  connected: boolean;
  pendingBytes: number;
  lagSeconds: number;
  segments: number;
  error: string | null;
  storageError: { message: string; since: string; attempts: number } | null;
}

async function capture(): Promise<CaptureStatus | undefined> {
  const response = await fetch(`http://127.0.0.1:${daemonPort}/status`).catch(() => undefined);
  if (!response?.ok) return undefined;
  return ((await response.json()) as { binlog: Record<string, CaptureStatus> }).binlog['outage'];
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await probe().catch(() => undefined);
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; status ${JSON.stringify(await capture())}\n${daemonLog.join('').slice(-8000)}`);
    await sleep(200);
  }
}

/** Waits for the capture to be in `want` health, entered at or after `since`. */
const health = (want: string, since = 0) =>
  until(`capture ${want}`, async () => {
    const status = await capture();
    return status?.health === want && Date.parse(status.healthSince) >= since ? status : undefined;
  });
const webhook = (event: string, after = 0) => until(`webhook ${event}`, async () => hooks.slice(after).find((h) => h['event'] === event));

async function metric(name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${daemonPort}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/[{}"=]/g, (c) => `\\${c}`)} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** Inserts rows on its own connection until stopped. */
function writeLoad(): { stop(): Promise<number> } {
  let running = true;
  let rows = 0;
  const done = (async () => {
    const db = await mysql.createConnection({ host: '127.0.0.1', port: sourcePort, user: 'agent', password: PASSWORD });
    try {
      while (running) {
        await db.query("INSERT INTO shop.t (v) VALUES (REPEAT(MD5(RAND()), 4))");
        rows++;
        await sleep(20);
      }
    } finally {
      await db.end();
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return rows;
    },
  };
}

interface Summary {
  runs: { to: { file: string; position: number } }[];
  gaps: unknown[];
}

/** Waits until the archive reaches the server's binlog end, then returns the archive summary. */
async function archivedToServerEnd(): Promise<Summary> {
  const [file, position] = (await source.sql('SHOW MASTER STATUS')).split('\t');
  return until('archive caught up with the server', async () => {
    const listed = await agent(['--config', config, 'binlog', 'list', '--json']);
    const summary = (JSON.parse(listed.stdout) as Summary[])[0];
    const end = summary?.runs.at(-1)?.to;
    return end && end.file === file && end.position >= Number(position) ? summary : undefined;
  });
}

function yaml(maxSpoolMb: number): string {
  return [
    'storage:',
    '  type: s3',
    '  bucket: outage',
    `  endpoint: http://127.0.0.1:${s3Port}`,
    '  force_path_style: true',
    '  access_key_id: S3RVER',
    '  secret_access_key: S3RVER',
    '  checksum: when_required',
    'daemon:',
    `  listen_port: ${daemonPort}`,
    '  catch_up: false',
    'notifications:',
    '  attempts: 1',
    '  webhooks:',
    `    - url: http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`,
    'databases:',
    '  - name: outage',
    `    socket: ${source.socket}`,
    '    user: root',
    '    schedules: [{ cron: "0 0 1 1 *" }]',
    `    binlog: { enabled: true, segment_age: 500ms, complete_mark_interval: 1s, max_spool_mb: ${maxSpoolMb}, spool_dir: ${join(dir, 'spool')} }`,
    '',
  ].join('\n');
}

beforeAll(async () => {
  dir = await testDir('binlog-outage');
  sourcePort = await freePort();
  source = await startSandbox({ dir: join(dir, 'source'), port: sourcePort, serverId: 51, agentPassword: PASSWORD });
  await source.sql('CREATE DATABASE shop; CREATE TABLE shop.t (id BIGINT PRIMARY KEY AUTO_INCREMENT, v LONGTEXT NOT NULL) ENGINE=InnoDB');
  s3Port = await freePort();
  await startS3();
  await createS3Bucket(`http://127.0.0.1:${s3Port}`, 'outage');
  hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  daemonPort = await freePort();
  config = await writeConfig(dir, yaml(4096));
  daemon = execa(process.execPath, [AGENT, '--config', config, 'daemon'], { reject: false, stdin: 'ignore', buffer: false, all: true });
  daemon.all?.on('data', (chunk: Buffer) => daemonLog.push(chunk.toString()));
  await health('healthy');
}, 90_000);

afterAll(async () => {
  daemon?.kill('SIGKILL');
  await daemon;
  await s3?.stop();
  await source?.stop();
  hook?.close();
});

describe('binlog capture during a storage outage', () => {
  it('s3rver killed under writes: /status, /metrics and a webhook say so; restarted: the capture recovers with no gap', async () => {
    const load = writeLoad();
    try {
      await until('a first segment', async () => ((await capture())?.segments ?? 0) > 0 || undefined);
      await killS3();

      const degraded = await health('degraded');
      expect(degraded.connected).toBe(true);
      expect(degraded.storageError?.attempts).toBeGreaterThanOrEqual(1);
      expect(degraded.error).toMatch(/^storage writes failing since \d{4}-\d\d-\d\dT[\d:.]+Z: /);
      expect(degraded.error!.length).toBeLessThanOrEqual(300);
      expect(await metric('backup_agent_binlog_healthy{database="outage"}')).toBe(0);
      expect(await metric('backup_agent_binlog_state{database="outage",state="degraded"}')).toBe(1);
      expect(await metric('backup_agent_binlog_storage_errors_total{database="outage"}')).toBeGreaterThanOrEqual(1);
      // The lag comes from the clock: it grows while nothing can be archived, between two scrapes.
      const lag = (await metric('backup_agent_binlog_lag_seconds{database="outage"}')) ?? 0;
      expect(lag).toBeGreaterThan(0);
      await until('the lag to grow', async () => (((await metric('backup_agent_binlog_lag_seconds{database="outage"}')) ?? 0) > lag + 1 ? true : undefined));

      const alarm = await webhook('binlog.degraded');
      expect(alarm).toMatchObject({ database: 'outage', previous: 'healthy' });
      expect(String(alarm['error'])).toMatch(/^storage writes failing since /);
      expect(String(alarm['error'])).not.toContain('\n');

      const before = hooks.length;
      await startS3();
      await health('healthy');
      expect(await webhook('binlog.recovered', before)).toMatchObject({ database: 'outage', previous: 'degraded' });
      expect(await metric('backup_agent_binlog_healthy{database="outage"}')).toBe(1);
    } finally {
      await load.stop();
    }
    const summary = await archivedToServerEnd();
    expect(summary.gaps).toEqual([]);
    expect(summary.runs).toHaveLength(1);
  }, 240_000);

  it('binlog.max_spool_mb bounds the spool: past it the capture fails loudly, then recovers from the archive', async () => {
    await writeFile(config, (await readFile(config, 'utf8')).replace('max_spool_mb: 4096', 'max_spool_mb: 1'));
    const reloaded = Date.now();
    daemon?.kill('SIGHUP');
    await until('the reload', async () => (daemonLog.join('').includes('configuration reloaded') ? true : undefined));
    // The reload restarts the capture: wait for the new one, not the old one's last state.
    await health('healthy', reloaded);
    await source.sql("INSERT INTO shop.t (v) VALUES ('after the reload')");
    await until('a segment of the new capture', async () => ((await capture())?.segments ?? 0) > 0 || undefined);
    await killS3();
    const before = hooks.length;
    for (let i = 0; i < 6; i++) await source.sql("INSERT INTO shop.t (v) VALUES (REPEAT('x', 500000))");

    const failed = await health('failed');
    expect(failed.error).toMatch(/^binlog capture of outage: \d+ bytes of binlog are waiting in the spool, over binlog\.max_spool_mb \(1 MiB\): uploads have failed since /);
    expect(failed.error!.length).toBeLessThanOrEqual(300);
    expect(await webhook('binlog.failed', before)).toMatchObject({ database: 'outage' });
    expect(await metric('backup_agent_binlog_capture_failures_total{database="outage"}')).toBeGreaterThanOrEqual(1);
    expect(daemonLog.join('')).toContain('binlog capture failed: the spool is over its bound; the tool is stopped');

    const recovered = hooks.length;
    await startS3();
    await health('healthy');
    expect(await webhook('binlog.recovered', recovered)).toMatchObject({ database: 'outage', previous: 'failed' });
    const summary = await archivedToServerEnd();
    expect(summary.gaps).toEqual([]);
  }, 240_000);

  it('an idle capture notices the outage too: its complete-through marker cannot be written', async () => {
    await archivedToServerEnd();
    await health('healthy');
    const before = hooks.length;
    const killedAt = Date.now();
    await killS3();
    const degraded = await health('degraded', killedAt);
    expect(degraded.pendingBytes).toBe(0);
    expect(degraded.error).toMatch(/^storage writes failing since /);
    expect(await webhook('binlog.degraded', before)).toMatchObject({ database: 'outage', previous: 'healthy' });
    const restartedAt = Date.now();
    await startS3();
    await health('healthy', restartedAt);
  }, 120_000);
});
