// The real daemon process (`agent daemon`) with schedules every few seconds, against the harness's
// MariaDB and a local store: periodic backups, overlap skipping, graceful and cancelling
// shutdown, reload with a broken config, /metrics and `agent status`.
import type { ResultPromise } from 'execa';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/retention/lock.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { LocalDriver } from '../../src/storage/local.ts';
import { freePort } from '../harness/child-process.ts';
import { startDaemon as startProcess } from '../harness/daemon-process.ts';
import { agent, fixtureWith, FIXTURES, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName } from '../helpers.ts';

const schema = uniqueName('daemon').replace('-', '_');
beforeAll(async () => {
  await sourceSql(sampleDataSql(schema, 200));
});

interface Daemon {
  child: ResultPromise;
  logs: Record<string, unknown>[];
  port: number;
  config: string;
  store: string;
  dir: string;
  waitFor(msg: string, count?: number, timeoutMs?: number): Promise<Record<string, unknown>[]>;
}

const running: Daemon[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) {
    d.child.kill('SIGKILL');
    await d.child.catch(() => undefined);
  }
});

function configYaml(opts: {
  store: string;
  port: number;
  cron: string;
  grace?: string;
  dump?: string;
  catchUp?: boolean;
  extra?: string[];
}): string {
  return [
    'storage:',
    '  type: local',
    `  path: ${opts.store}`,
    ...(opts.dump ? ['tools:', `  dump: ${opts.dump}`] : []),
    'daemon:',
    `  listen_port: ${opts.port}`,
    `  shutdown_grace: ${opts.grace ?? '30s'}`,
    `  catch_up: ${opts.catchUp ?? false}`,
    'databases:',
    '  - name: source',
    sourceConnectionYaml(),
    `    schemas: [${schema}]`,
    '    schedules:',
    `      - cron: "${opts.cron}"`,
    ...(opts.extra ?? []),
    '',
  ].join('\n');
}

async function startDaemon(opts: Omit<Parameters<typeof configYaml>[0], 'store' | 'port'>, env: Record<string, string> = {}, prepare?: (store: string) => Promise<void>): Promise<Daemon> {
  const dir = await testDir('daemon');
  const store = join(dir, 'store');
  await prepare?.(store);
  const port = await freePort();
  const config = join(dir, 'agent.yaml');
  // The agent gives its tools a minimal environment: the fixture's variables go in a wrapper.
  const dump = opts.dump && Object.keys(env).length > 0 ? await fixtureWith(dir, opts.dump, env) : opts.dump;
  await writeFile(config, configYaml({ ...opts, ...(dump ? { dump } : {}), store, port }));
  const started = await startProcess(config, { env: { ...sourceEnv(), ...env }, forwardStderr: true });
  const daemon = { child: started.child, logs: started.logs, port, config, store, dir, waitFor: started.waitFor };
  running.push(daemon);
  return daemon;
}

async function manifests(store: string): Promise<string[]> {
  const files = await readdir(store, { recursive: true }).catch(() => [] as string[]);
  return files.filter((f) => f.endsWith('manifest.json'));
}

async function stop(daemon: Daemon, signal: NodeJS.Signals = 'SIGTERM') {
  daemon.child.kill(signal);
  const result = await daemon.child;
  running.splice(running.indexOf(daemon), 1);
  return result;
}

/** A real HTTP receiver for webhooks on 127.0.0.1. */
async function webhookReceiver(): Promise<{ url: string; received: Record<string, unknown>[]; close(): void }> {
  const received: Record<string, unknown>[] = [];
  const hook = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      received.push(JSON.parse(body) as Record<string, unknown>);
      res.end('ok');
    });
  });
  await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(hook.address() as { port: number }).port}/hook`, received, close: () => hook.close() };
}

async function until<T>(probe: () => T | undefined, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = probe();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await sleep(50);
  }
}

describe('agent daemon', () => {
  it('takes periodic backups on schedule, reports them in /metrics and status, and stops on SIGTERM', async () => {
    const daemon = await startDaemon({ cron: '*/2 * * * * *' });
    expect((await fetch(`http://127.0.0.1:${daemon.port}/healthz`)).status).toBe(200);
    await daemon.waitFor('backup completed', 2);

    const listed = await agent(['--config', daemon.config, 'list', '--json'], sourceEnv());
    const backups = JSON.parse(listed.stdout) as { trigger: string; status: string }[];
    expect(backups.length).toBeGreaterThanOrEqual(2);
    expect(backups.every((b) => b.trigger === 'periodic' && b.status === 'completed')).toBe(true);

    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
    const lastSuccess = /^backup_agent_last_success_timestamp_seconds\{database="source",type="dump"\} (\d+(\.\d+)?)$/m.exec(metrics);
    expect(Number(lastSuccess?.[1])).toBeGreaterThan(Date.now() / 1000 - 60);
    expect(metrics).toMatch(/^backup_agent_next_run_timestamp_seconds\{database="source",type="dump"\} \d+/m);
    expect((await fetch(`http://127.0.0.1:${daemon.port}/readyz`)).status).toBe(200);

    const status = await agent(['--config', daemon.config, 'status'], sourceEnv());
    expect(status.exitCode).toBe(0);
    expect(status.stdout).toMatch(/^daemon: running \(pid \d+/);
    expect(status.stdout).toMatch(/source\s+dump\s+cron "\*\/2 \* \* \* \* \*" \(UTC\)\s+(success \(periodic|running)/);

    // Retention runs after each successful periodic backup.
    const [pruned] = await daemon.waitFor('prune completed');
    expect(pruned).toMatchObject({ database: 'source', why: 'after a periodic backup', removed: 0 });

    const result = await stop(daemon);
    expect(result.exitCode).toBe(0);
    expect(daemon.logs.at(-1)?.['msg']).toBe('daemon stopped');

    const offline = await agent(['--config', daemon.config, 'status'], sourceEnv());
    expect(offline.stdout).toMatch(/^daemon: not running/);
    expect(offline.stdout).toMatch(/success \(periodic/);

    // The newest manifest turns unreadable: status does not report the older backup as the last
    // success, it names the manifest it cannot read.
    const newest = (await manifests(daemon.store)).sort().at(-1) as string;
    await writeFile(join(daemon.store, newest), '{"format": "backup-agent/manif');
    const unreadable = await agent(['--config', daemon.config, 'status'], sourceEnv());
    expect(unreadable.stdout).not.toMatch(/success \(periodic/);
    expect(unreadable.stdout).toContain(`manifest ${newest} cannot be read (manifest is not JSON`);
  });

  it('an unreadable manifest at start-up is logged and counted, never skipped in silence', async () => {
    const id = '20261120T010000.000Z-abcdef';
    const key = `source/backups/${id}/manifest.json`;
    const daemon = await startDaemon({ cron: '0 0 1 1 *' }, {}, async (store) => {
      await mkdir(join(store, 'source', 'backups', id), { recursive: true });
      await writeFile(join(store, key), '{"format": "backup-agent/manif');
    });
    const [logged] = await daemon.waitFor('unreadable manifest in the catalog');
    expect(logged).toMatchObject({ level: 50, database: 'source', key });
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
    expect(metrics).toMatch(/^backup_agent_daemon_errors_total\{what="read catalog at start-up"\} 1$/m);
    await stop(daemon);
  });

  it('skips a run whose previous run is still going, with a warning and a metric', async () => {
    const daemon = await startDaemon({ cron: '*/2 * * * * *', dump: join(FIXTURES, 'slow-dump.sh') }, { SLOW_DUMP_SECONDS: '5' });
    const [skipped] = await daemon.waitFor('job skipped: the previous run is still going', 1, 20_000);
    expect(skipped).toMatchObject({ level: 40, database: 'source', type: 'dump', trigger: 'periodic' });
    const metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
    expect(metrics).toMatch(/^backup_agent_skipped_total\{database="source",type="dump",reason="overlap"\} [1-9]/m);
    expect(metrics).toMatch(/^backup_agent_running_jobs\{database="source",type="dump"\} 1$/m);
    await stop(daemon, 'SIGKILL');
  });

  it('on SIGTERM lets a running backup finish within the grace period, then exits 0', async () => {
    const daemon = await startDaemon({ cron: '*/30 * * * * *', dump: join(FIXTURES, 'slow-dump.sh'), catchUp: true, grace: '60s' }, { SLOW_DUMP_SECONDS: '2' });
    await daemon.waitFor('missed run: backing up now');
    await daemon.waitFor('backup started');
    const result = await stop(daemon);
    expect(result.exitCode).toBe(0);
    expect(daemon.logs.map((l) => l['msg'])).toContain('backup completed');
    expect(await manifests(daemon.store)).toHaveLength(1);
  });

  it('when the grace period runs out, cancels the backup: tool killed, no half-backup, exit 0', async () => {
    const record = await testDir('daemon-cancel');
    const daemon = await startDaemon(
      { cron: '0 0 1 1 *', dump: join(FIXTURES, 'endless-dump.sh'), catchUp: true, grace: '1s' },
      { RECORD_DIR: record },
    );
    await daemon.waitFor('backup started');
    for (let i = 0; i < 200 && !(await readdir(record)).includes('pid'); i++) await sleep(25);
    await sleep(300);
    const stopping = Date.now();
    const result = await stop(daemon);
    expect(result.exitCode).toBe(0);
    expect(Date.now() - stopping).toBeLessThan(15_000);
    const failure = daemon.logs.find((l) => l['msg'] === 'backup failed');
    expect(String(failure?.['error'])).toBe('backup of source cancelled: cancelled: the shutdown grace period (1000 ms) ran out');
    expect(await manifests(daemon.store)).toEqual([]);
    expect((await readdir(daemon.store, { recursive: true }).catch(() => [])).filter((f) => f.endsWith('.zst') || f.endsWith('.partial'))).toEqual([]);
    const pid = Number(await readFile(join(record, 'pid'), 'utf8'));
    expect(() => process.kill(pid, 0)).toThrow();
  });

  it('a second SIGTERM cancels a running backup at once', async () => {
    const record = await testDir('daemon-second-signal');
    const daemon = await startDaemon(
      { cron: '0 0 1 1 *', dump: join(FIXTURES, 'endless-dump.sh'), catchUp: true, grace: '10m' },
      { RECORD_DIR: record },
    );
    await daemon.waitFor('backup started');
    daemon.child.kill('SIGTERM');
    await daemon.waitFor('shutting down');
    const second = Date.now();
    daemon.child.kill('SIGTERM');
    const result = await daemon.child;
    running.splice(running.indexOf(daemon), 1);
    expect(result.exitCode).toBe(0);
    expect(Date.now() - second).toBeLessThan(15_000);
    expect(daemon.logs.map((l) => l['msg'])).toContain('second signal: cancelling running jobs now');
    expect(await manifests(daemon.store)).toEqual([]);
  });

  it('SIGHUP with a broken config keeps the old schedule running; a valid one is applied', async () => {
    const daemon = await startDaemon({ cron: '*/2 * * * * *' });
    await daemon.waitFor('backup completed');
    const good = await readFile(daemon.config, 'utf8');
    await writeFile(daemon.config, good.replace('storage:', 'storage:\n  bukcet: typo'));
    daemon.child.kill('SIGHUP');
    const [rejected] = await daemon.waitFor('reload rejected: the new configuration is invalid; the old one keeps running');
    expect(String(rejected?.['error'])).toContain('unknown key "bukcet"');
    const before = (await daemon.waitFor('backup completed')).length;
    await daemon.waitFor('backup completed', before + 2);

    await writeFile(daemon.config, good.replace('*/2 * * * * *', '0 0 1 1 *'));
    daemon.child.kill('SIGHUP');
    await daemon.waitFor('configuration reloaded');
    const status = JSON.parse((await agent(['--config', daemon.config, 'status', '--json'], sourceEnv())).stdout) as {
      jobs: { schedule: string }[];
    };
    expect(status.jobs[0]?.schedule).toBe('cron "0 0 1 1 *" (UTC)');
    expect((await stop(daemon)).exitCode).toBe(0);
  });

  it('a failing database fails alone, with metrics and a webhook; the other keeps its schedule', async () => {
    const received: Record<string, unknown>[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body) as Record<string, unknown>);
        res.end('ok');
      });
    });
    await new Promise<void>((resolve) => hook.listen(0, '127.0.0.1', resolve));
    const hookPort = (hook.address() as { port: number }).port;
    try {
      const daemon = await startDaemon({
        cron: '*/2 * * * * *',
        extra: [
          '  - name: broken',
          '    socket: /nonexistent/mysqld.sock',
          '    schedules:',
          '      - cron: "*/2 * * * * *"',
          'notifications:',
          '  webhooks:',
          `    - url: http://127.0.0.1:${hookPort}/hooks/secret-token`,
          '      databases: [broken]',
        ],
      });
      await daemon.waitFor('backup completed', 2);
      const failures = await daemon.waitFor('backup failed', 2);
      expect(failures[0]).toMatchObject({ database: 'broken', type: 'dump', trigger: 'periodic' });
      expect(String(failures[0]?.['error'])).toContain('connect to database broken (/nonexistent/mysqld.sock)');

      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
      expect(metrics).toMatch(/^backup_agent_failures_total\{database="broken",type="dump"\} [2-9]/m);
      expect(metrics).toMatch(/^backup_agent_last_success_timestamp_seconds\{database="source",type="dump"\} \d+/m);
      expect(metrics).not.toMatch(/backup_agent_last_success_timestamp_seconds\{database="broken"/);

      for (let i = 0; i < 100 && received.length === 0; i++) await sleep(50);
      expect(received[0]).toMatchObject({ event: 'backup.failed', database: 'broken', type: 'dump', trigger: 'periodic' });
      expect(received.every((r) => r['database'] === 'broken')).toBe(true);
      expect(JSON.stringify(daemon.logs)).not.toContain('secret-token');
      expect((await stop(daemon)).exitCode).toBe(0);
    } finally {
      hook.close();
    }
  });

  it("a backup failing with 64 KiB of stderr: the log has it all, /status and the webhook one short line", async () => {
    const hook = await webhookReceiver();
    try {
      const daemon = await startDaemon({
        cron: '0 0 1 1 *',
        catchUp: true,
        dump: join(FIXTURES, 'noisy-failing-dump.sh'),
        extra: ['notifications:', '  webhooks:', `    - url: ${hook.url}`],
      });
      const [failed] = await daemon.waitFor('backup failed');
      expect(String(failed?.['error'])).toContain('detail line 800 of a very long diagnostic');
      const payload = await until(() => hook.received.find((r) => r['event'] === 'backup.failed'), 'the webhook');
      const error = String(payload['error']);
      expect(error.length).toBeLessThanOrEqual(300);
      expect(error).not.toContain('\n');
      expect(error).toMatch(/^dump database source: noisy-failing-dump\.sh exited with code 2: .+…$/);
      const status = (await (await fetch(`http://127.0.0.1:${daemon.port}/status`)).json()) as { jobs: { last?: { error?: string } }[] };
      expect(status.jobs[0]?.last?.error).toBe(error);
      expect((await stop(daemon)).exitCode).toBe(0);
    } finally {
      hook.close();
    }
  });

  it('a failing prune is not only logged: metrics, /status and a webhook say so', async () => {
    const hook = await webhookReceiver();
    try {
      const daemon = await startDaemon({ cron: '*/2 * * * * *', extra: ['notifications:', '  webhooks:', `    - url: ${hook.url}`] });
      // Another process holds the prune lock of this database for an hour: every prune of the daemon fails.
      await acquireLock(new LocalDriver(daemon.store), { database: 'source', purpose: 'test: held by another process', ttlMs: 3_600_000 });
      const [failed] = await daemon.waitFor('prune failed', 1, 60_000);
      expect(failed).toMatchObject({ database: 'source', why: 'after a periodic backup' });
      const payload = await until(() => hook.received.find((r) => r['event'] === 'prune.failed'), 'the webhook');
      expect(payload).toMatchObject({ event: 'prune.failed', database: 'source', why: 'after a periodic backup' });
      expect(String(payload['error'])).toBe(String(failed?.['error']).split('\n')[0]);
      const metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
      expect(metrics).toMatch(/^backup_agent_prune_failures_total\{database="source"\} [1-9]/m);
      const status = (await (await fetch(`http://127.0.0.1:${daemon.port}/status`)).json()) as { prune: Record<string, { lastFailure?: { error: string } }> };
      expect(status.prune['source']?.lastFailure?.error).toBe(payload['error']);
      expect((await stop(daemon)).exitCode).toBe(0);
    } finally {
      hook.close();
    }
  });
  it('a verify schedule proves the newest backup: the record, the metric; a damaged one fails with a webhook, the counter and /status', async () => {
    const hook = await webhookReceiver();
    try {
      const daemon = await startDaemon({
        cron: '0 0 1 1 *',
        catchUp: true,
        extra: ['      - { type: verify, cron: "*/2 * * * * *", depth: archive }', 'notifications:', '  webhooks:', `    - url: ${hook.url}`],
      });
      await daemon.waitFor('backup completed', 1, 60_000);
      const [passed] = await daemon.waitFor('verification passed', 1, 60_000);
      expect(passed?.['verified']).toHaveLength(1);
      const id = (passed?.['verified'] as string[])[0] as string;
      let metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
      expect(metrics).toMatch(/^backup_agent_last_verified_timestamp_seconds\{database="source",depth="archive"\} [1-9]/m);
      expect(metrics).toMatch(/^backup_agent_verify_failures_total\{database="source"\} 0$/m);
      const listed = JSON.parse((await agent(['--config', daemon.config, 'list', '--json'], sourceEnv())).stdout) as { id: string; verified: { depth: string; ok: boolean } | null }[];
      expect(listed.map((b) => b.id)).toEqual([id]);
      expect(listed[0]?.verified).toMatchObject({ depth: 'archive', ok: true });

      // A proof at depth objects by the command: its record stays when the daemon's archive record is replaced below.
      const byCommand = await agent(['--config', daemon.config, 'verify', '--depth', 'objects', '--json'], sourceEnv());
      expect(byCommand.exitCode, byCommand.stderr).toBe(0);
      const objectsAt = (JSON.parse(byCommand.stdout) as { finishedAt: string }[])[0]?.finishedAt as string;

      // One byte of the stored dump flipped: the next verification fails, and says so everywhere.
      const manifestPath = (await manifests(daemon.store)).find((m) => m.includes(id)) as string;
      const manifest = JSON.parse(await readFile(join(daemon.store, manifestPath), 'utf8')) as { objects: { key: string }[] };
      const dataFile = join(daemon.store, manifest.objects[0]?.key as string);
      const bytes = await readFile(dataFile);
      const middle = Math.floor(bytes.length / 2);
      bytes[middle] = (bytes[middle] ?? 0) ^ 0xff;
      await writeFile(dataFile, bytes);
      const [failed] = await daemon.waitFor('verification failed', 1, 60_000);
      expect(String(failed?.['error'])).toContain(`backup ${id}: ${manifest.objects[0]?.key}`);
      const payload = await until(() => hook.received.find((r) => r['event'] === 'verify.failed'), 'the webhook');
      expect(payload).toMatchObject({ event: 'verify.failed', database: 'source', depth: 'archive', failed: [{ id }] });
      metrics = await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text();
      expect(metrics).toMatch(/^backup_agent_verify_failures_total\{database="source"\} [1-9]/m);
      const status = (await (await fetch(`http://127.0.0.1:${daemon.port}/status`)).json()) as { verify: Record<string, { lastFailure?: { error: string }; schedules: { description: string }[] }> };
      expect(status.verify['source']?.lastFailure?.error).toContain(id);
      expect(status.verify['source']?.schedules.map((s) => s.description)).toEqual(['verify the newest backups at depth archive, cron "*/2 * * * * *" (UTC)']);
      expect((await stop(daemon)).exitCode).toBe(0);

      // Restarted with the verify schedule far away: the metric and /status are seeded from the
      // records in the store. The archive record is the failed one (it replaced the passed one),
      // so only the command's objects proof counts as the last pass.
      await writeFile(daemon.config, (await readFile(daemon.config, 'utf8')).replace('cron: "*/2 * * * * *", depth: archive', 'cron: "0 0 1 1 *", depth: archive'));
      const again = await startProcess(daemon.config, { env: sourceEnv(), forwardStderr: true });
      const restarted = { ...daemon, child: again.child, logs: again.logs, waitFor: again.waitFor };
      running.push(restarted);
      let seeded = '';
      for (const deadline = Date.now() + 30_000; !seeded.includes('depth="objects"') && Date.now() < deadline; await sleep(100)) {
        seeded = (await (await fetch(`http://127.0.0.1:${daemon.port}/metrics`)).text()).split('\n').filter((l) => l.startsWith('backup_agent_last_verified_timestamp_seconds{')).join('\n');
      }
      expect(seeded).toBe(`backup_agent_last_verified_timestamp_seconds{database="source",depth="objects"} ${Date.parse(objectsAt) / 1000}`);
      const after = (await (await fetch(`http://127.0.0.1:${daemon.port}/status`)).json()) as { verify: Record<string, { lastSuccess?: { at: string; depth: string; backups: string[] } }> };
      expect(after.verify['source']?.lastSuccess).toEqual({ at: objectsAt, depth: 'objects', backups: [id] });
      expect((await stop(restarted)).exitCode).toBe(0);
    } finally {
      hook.close();
    }
  });
});
