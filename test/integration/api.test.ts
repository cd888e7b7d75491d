// The daemon's HTTP API, on a real `agent daemon` process over real HTTP on 127.0.0.1: tokens and
// roles (the whole role × endpoint matrix), a backup run through the API and downloaded with its
// SHA-256 checked, jobs, prune, validation errors that name the field, pagination, the rate limit,
// and the audit log that names tokens, never shows them.
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createS3Bucket } from '../harness/s3-server.ts';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { apiTokenLines, startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { agent, freshServer, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName } from '../helpers.ts';

const TOKENS = { viewer: 'v'.repeat(40), operator: 'o'.repeat(20) + 'p'.repeat(20), admin: 'a'.repeat(24) + 'd'.repeat(24) } as const;
type Role = keyof typeof TOKENS;

describe('the daemon API', () => {
  const schema = uniqueName('api').replace('-', '_');
  let dir: string;
  let port: number;
  let daemon: DaemonProcess | undefined;
  /** The output of every daemon process of this file (a test restarts it). */
  let earlier = '';
  const output = () => earlier + (daemon?.output() ?? '');
  let copy: Sandbox;

  const call = async (method: string, path: string, role?: Role | 'bad', body?: unknown) => {
    const headers: Record<string, string> = {};
    if (role) headers['authorization'] = `Bearer ${role === 'bad' ? 'x'.repeat(40) : TOKENS[role]}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const response = await fetch(`http://127.0.0.1:${port}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
    const text = await response.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json, text, headers: response.headers };
  };

  const until = async <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${output()}`);
      await sleep(200);
    }
  };

  beforeAll(async () => {
    await sourceSql(sampleDataSql(schema, 200));
    copy = await freshServer('api-copy');
    dir = await testDir('api');
    port = await freePort();
    const config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      [
        'storage:',
        '  type: local',
        `  path: ${join(dir, 'store')}`,
        'daemon:',
        `  listen_port: ${port}`,
        '  catch_up: false',
        'api:',
        '  rate_limit: { max: 120, window: 10s }',
        ...(await apiTokenLines(dir, TOKENS)),
        'databases:',
        '  - name: source',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '    schedules:',
        '      - cron: "0 0 1 1 *"',
        '  - name: copy',
        '    host: 127.0.0.1',
        `    port: ${copy.port}`,
        '    user: agent',
        '    password: ${TARGET_DB_PASSWORD}',
        '    schedules:',
        '      - cron: "0 0 1 1 *"',
        '',
      ].join('\n'),
    );
    configPath = config;
    await restartDaemon();
  });

  let configPath: string;
  const restartDaemon = async () => {
    if (daemon) {
      await daemon.stop();
      earlier += daemon.output();
    }
    daemon = await startDaemon(configPath, { env: { ...sourceEnv(), TARGET_DB_PASSWORD: 'target-pw', STATE_DIRECTORY: join(dir, 'state') } });
  };

  afterAll(async () => {
    await daemon?.stop();
    await copy?.stop();
  });

  it('answers by role: 401 without or with a bad token, 403 below the endpoint, 2xx at or above it', async () => {
    // Every endpoint, with what it answers past the role check (unknown IDs: 404; a restore of an unknown entry: 400).
    const endpoints: [string, string, Role, number, unknown?][] = [
      ['GET', '/v1/backups', 'viewer', 200],
      ['GET', '/v1/backups/20990101T000000.000Z-abcdef', 'viewer', 404],
      ['GET', '/v1/backups/20990101T000000.000Z-abcdef/download', 'admin', 404],
      ['GET', '/v1/backups/schedules', 'viewer', 200],
      ['GET', '/v1/backups/schedules/sch-nope', 'viewer', 404],
      ['POST', '/v1/backups/schedules', 'admin', 400, { database: 'nope', type: 'dump', schedule: '0 3 * * *' }],
      ['PATCH', '/v1/backups/schedules/sch-nope', 'admin', 404, { type: 'full' }],
      ['DELETE', '/v1/backups/schedules/sch-nope', 'admin', 404],
      ['GET', '/v1/jobs', 'viewer', 200],
      ['GET', '/v1/jobs/job-nope', 'viewer', 404],
      ['POST', '/v1/jobs/job-nope/cancel', 'operator', 404],
      ['GET', '/v1/restores', 'viewer', 200],
      ['GET', '/v1/restores/job-nope', 'viewer', 404],
      ['POST', '/v1/restores', 'admin', 400, { database: 'nope' }],
      ['POST', '/v1/prune', 'operator', 200, { dry_run: true }],
      ['GET', '/v1/status', 'viewer', 200],
      ['GET', '/v1/retention?database=source', 'viewer', 200],
      ['GET', '/v1/whoami', 'viewer', 200],
    ];
    const rank: Role[] = ['viewer', 'operator', 'admin'];
    for (const [method, path, needed, expected, body] of endpoints) {
      expect((await call(method, path, undefined, body)).status, `${method} ${path} without a token`).toBe(401);
      const bad = await call(method, path, 'bad', body);
      expect(bad.status).toBe(401);
      expect(bad.json).toEqual({ error: 'the bearer token is not valid' });
      for (const role of rank) {
        const result = await call(method, path, role, body);
        if (rank.indexOf(role) < rank.indexOf(needed)) {
          expect(result.status, `${role} on ${method} ${path}`).toBe(403);
          // A recurring schedule is the one endpoint with two levels: the route needs operator (to run once), a schedule admin.
          expect(result.json.error).toMatch(new RegExp(`^the ${role} role may not do this: it needs (${needed}|operator)$`));
        } else {
          expect(result.status, `${role} on ${method} ${path}: ${result.text}`).toBe(expected);
        }
      }
    }
    // Health and metrics stay public.
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/metrics')).text).toContain('backup_agent_');
  });

  it('runs a backup once through the API, tracks its job, lists it and downloads it with the manifest SHA-256', async () => {
    expect((await call('POST', '/v1/backups/schedules', 'viewer', { database: 'source', type: 'dump', schedule: 'once' })).status).toBe(403);
    const started = await call('POST', '/v1/backups/schedules', 'operator', { database: 'source', type: 'dump', schedule: 'once' });
    expect(started.status, started.text).toBe(202);
    const jobId = started.json.job.id as string;
    expect(started.headers.get('location')).toBe(`/v1/jobs/${jobId}`);
    expect(started.json.job).toMatchObject({ kind: 'backup', database: 'source', type: 'dump', trigger: 'api', requested_by: 'operator-bot' });

    const done = await until(async () => {
      const { json } = await call('GET', `/v1/jobs/${jobId}`, 'viewer');
      return json.job.finished_at ? json.job : undefined;
    }, 'the backup job to finish');
    expect(done).toMatchObject({ status: 'succeeded', backup_id: expect.stringMatching(/^\d{8}T/) });
    expect(done.bytes).toBeGreaterThan(0);

    const listed = await call('GET', '/v1/backups?database=source&type=dump', 'viewer');
    expect(listed.json).toMatchObject({ backups_count: 1, pages_count: 1, page: 1, page_size: 50 });
    const [backup] = listed.json.backups;
    expect(backup).toMatchObject({ id: done.backup_id, database: 'source', type: 'dump', trigger: 'manual', status: 'completed', parent: null });
    expect(backup.restores_to.gtid).toMatch(/^\d+-\d+-\d+/);
    expect((await call('GET', `/v1/backups/${backup.id}`, 'viewer')).json.id).toBe(backup.id);

    const download = await fetch(`http://127.0.0.1:${port}/v1/backups/${backup.id}/download`, { headers: { authorization: `Bearer ${TOKENS.admin}` } });
    expect(download.status).toBe(200);
    const bytes = Buffer.from(await download.arrayBuffer());
    const manifestPath = join(dir, 'store', 'source', 'backups', backup.id, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    expect(bytes.length).toBe(manifest.objects[0].sizeBytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.objects[0].sha256);
    expect(download.headers.get('x-backup-sha256')).toBe(manifest.objects[0].sha256);
    expect(download.headers.get('accept-ranges')).toBe('bytes');
    const etag = `"${manifest.objects[0].sha256}"`;
    expect(download.headers.get('etag')).toBe(etag);

    // Ranges: each 206 body is the slice of the archive verified above.
    const size = bytes.length;
    const ranged = (range: string, extra: Record<string, string> = {}) =>
      fetch(`http://127.0.0.1:${port}/v1/backups/${backup.id}/download`, { headers: { authorization: `Bearer ${TOKENS.admin}`, range, ...extra } });
    for (const [range, start, end] of [
      ['bytes=0-0', 0, 0],
      ['bytes=10-99', 10, 99],
      [`bytes=${size - 7}-`, size - 7, size - 1],
      ['bytes=-25', size - 25, size - 1],
      [`bytes=100-${size + 500}`, 100, size - 1],
    ] as const) {
      const part = await ranged(range);
      expect(part.status, range).toBe(206);
      expect(part.headers.get('content-range')).toBe(`bytes ${start}-${end}/${size}`);
      expect(part.headers.get('content-length')).toBe(String(end - start + 1));
      expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(start, end + 1)), range).toBe(true);
    }
    for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
      const refused = await ranged(range);
      expect(refused.status, range).toBe(416);
      expect(refused.headers.get('content-range')).toBe(`bytes */${size}`);
      expect(((await refused.json()) as { error: string }).error).toBe(`range not satisfiable: ${range} of an archive of ${size} bytes`);
    }
    // If-Range with the archive's ETag resumes; with another, or several ranges, the whole archive comes.
    expect((await ranged('bytes=5-9', { 'if-range': etag })).status).toBe(206);
    for (const [range, extra] of [['bytes=5-9', { 'if-range': '"0000"' }], ['bytes=0-1,5-6', {}]] as const) {
      const whole = await ranged(range, extra);
      expect(whole.status, range).toBe(200);
      expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    }
    // Viewers and operators may not download, ranged or not.
    expect((await fetch(`http://127.0.0.1:${port}/v1/backups/${backup.id}/download`, { headers: { authorization: `Bearer ${TOKENS.operator}`, range: 'bytes=0-9' } })).status).toBe(403);
  });

  it('pages, filters and refuses bad queries and bodies naming the field', async () => {
    for (let i = 0; i < 2; i++) {
      const started = await call('POST', '/v1/backups/schedules', 'operator', { database: 'source', type: 'dump', schedule: 'once' });
      expect(started.status, started.text).toBe(202);
      await until(async () => ((await call('GET', `/v1/jobs/${started.json.job.id}`, 'viewer')).json.job.finished_at ? true : undefined), 'a backup');
    }
    const page1 = await call('GET', '/v1/backups?page_size=2', 'viewer');
    expect(page1.json).toMatchObject({ backups_count: 3, pages_count: 2, page: 1 });
    expect(page1.json.backups).toHaveLength(2);
    const page2 = await call('GET', '/v1/backups?page_size=2&page=2', 'viewer');
    expect(page2.json.backups).toHaveLength(1);
    expect(page2.json.backups[0].created_at < page1.json.backups[1].created_at).toBe(true);
    expect((await call('GET', '/v1/backups?page_size=2&page=9', 'viewer')).json).toMatchObject({ backups: [], backups_count: 3, pages_count: 2 });
    expect((await call('GET', '/v1/backups?trigger=periodic', 'viewer')).json.backups_count).toBe(0);

    const cases: [string, string, unknown, string][] = [
      ['GET', '/v1/backups?page_size=5000', undefined, 'querystring.page_size: must be <= 1000'],
      ['GET', '/v1/backups?colour=red', undefined, 'querystring.colour: unknown field'],
      ['GET', '/v1/backups?type=snapshot', undefined, 'querystring.type: must be one of dump, full, incremental'],
      ['POST', '/v1/backups/schedules', { database: 'source', type: 'dump', schedule: 'once', colour: 'red' }, 'body.colour: unknown field'],
      ['POST', '/v1/backups/schedules', { database: 'source', schedule: 'once' }, 'body.type: missing'],
      ['POST', '/v1/backups/schedules', { database: 'nope', type: 'dump', schedule: 'once' }, 'body.database: no database entry named nope'],
      ['POST', '/v1/prune', { dry_run: 'maybe' }, 'body.dry_run: must be boolean'],
      ['POST', '/v1/prune', '{not json', 'Body is not valid JSON'],
    ];
    for (const [method, path, body, message] of cases) {
      const result = await call(method, path, 'admin', body);
      expect(result.status, `${method} ${path}: ${result.text}`).toBe(400);
      expect(result.json.error).toContain(message);
    }
    const big = await call('POST', '/v1/prune', 'admin', JSON.stringify({ dry_run: true, pad: 'x'.repeat(70 * 1024) }));
    expect(big.status).toBe(413);
  });

  it('restores through the API into a second server with equal checksums, and refuses a target holding data without overwrite (409)', async () => {
    expect((await call('POST', '/v1/restores', 'operator', { database: 'source', target: 'copy' })).status).toBe(403);
    const started = await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'copy' });
    expect(started.status, started.text).toBe(202);
    const id = started.json.restore.id as string;
    const done = await until(async () => {
      const { json } = await call('GET', `/v1/restores/${id}`, 'viewer');
      return json.restore.finished_at ? json.restore : undefined;
    }, 'the restore job');
    expect(done).toMatchObject({ kind: 'restore', status: 'succeeded', requested_by: 'admin-bot' });
    const tables = (await sourceSql(`SELECT table_name FROM information_schema.tables WHERE table_schema='${schema}' AND table_type='BASE TABLE' ORDER BY 1`)).split('\n').filter(Boolean);
    const sum = `CHECKSUM TABLE ${tables.map((t) => `\`${schema}\`.\`${t}\``).join(', ')} EXTENDED`;
    expect(await copy.sql(sum)).toBe(await sourceSql(sum));
    expect((await call('GET', '/v1/restores', 'viewer')).json.restores.map((r: { id: string }) => r.id)).toContain(id);

    await copy.sql(`INSERT INTO \`${schema}\`.customers (name, email, created_at) VALUES ('kept', 'kept@example.com', NOW())`);
    const refused = await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'copy' });
    expect(refused.status).toBe(409);
    expect(refused.json.error).toContain(`restore into copy: schema ${schema} (`);
    expect(refused.json.error).toContain('nothing was written');
    expect(refused.json.hint).toContain('"overwrite": true');
    expect(await copy.sql(`SELECT COUNT(*) FROM \`${schema}\`.customers WHERE name = 'kept'`)).toBe('1');
    // A point in time is checked the same way, on the schemas of the dump it would start from: 409 before any job.
    const jobsBefore = (await call('GET', '/v1/restores', 'viewer')).json.restores.length;
    const refusedPoint = await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'copy', to_time: new Date().toISOString() });
    expect(refusedPoint.status, refusedPoint.text).toBe(409);
    expect(refusedPoint.json.error).toContain(`restore into copy: schema ${schema} (`);
    expect((await call('GET', '/v1/restores', 'viewer')).json.restores.length).toBe(jobsBefore);
    expect(await copy.sql(`SELECT COUNT(*) FROM \`${schema}\`.customers WHERE name = 'kept'`)).toBe('1');

    const bad = await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'copy', to_time: 'yesterday' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/^body\.to_time yesterday: not an ISO 8601 time/);
    expect((await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'nope' })).json.error).toBe('body.target: no database entry named nope');
  });

  it('restores from another bucket given in the request, with its keys, which never reach the log or the answer', async () => {
    const bucket = uniqueName('bkt');
    const endpoint = inject('s3').endpoint;
    await createS3Bucket(endpoint, bucket);
    const other = join(dir, 'other.yaml');
    await writeFile(
      other,
      ['storage:', '  type: s3', `  bucket: ${bucket}`, '  prefix: p', `  endpoint: ${endpoint}`, '  force_path_style: true', '  access_key_id: S3RVER', '  secret_access_key: S3RVER', '  checksum: when_required', 'databases:', '  - name: shop', sourceConnectionYaml(), `    schemas: [${schema}]`, ''].join('\n'),
    );
    const backup = await agent(['--config', other, 'run-now', '--local'], sourceEnv());
    expect(backup.exitCode, backup.stderr).toBe(0);
    const source = { url: `s3://${bucket}/p`, endpoint, access_key_id: 'S3RVER', secret_access_key: 'S3RVER', options: { checksum: 'when_required', delimiter_listing: false } };
    const started = await call('POST', '/v1/restores', 'admin', { database: 'shop', target: 'copy', overwrite: true, source });
    expect(started.status, started.text).toBe(202);
    expect(started.text).not.toContain('S3RVER');
    const done = await until(async () => {
      const { json } = await call('GET', `/v1/restores/${started.json.restore.id}`, 'viewer');
      return json.restore.finished_at ? json.restore : undefined;
    }, 'the restore from the other bucket');
    expect(done.status, done.message).toBe('succeeded');
    expect(await copy.sql(`SELECT COUNT(*) FROM \`${schema}\`.customers WHERE name = 'kept'`)).toBe('0');
    expect(output()).not.toContain('S3RVER');
    const bad = await call('POST', '/v1/restores', 'admin', { database: 'shop', target: 'copy', source: { ...source, options: { part_size_mb: 1 } } });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/^body\.source\.options\.part_size_mb: /);
  });

  it('plans a prune through the API as `agent prune --json` does', async () => {
    const result = await call('POST', '/v1/prune', 'operator', { database: 'source', dry_run: true });
    expect(result.status, result.text).toBe(200);
    expect(result.json.job).toMatchObject({ kind: 'prune', status: 'succeeded', requested_by: 'operator-bot' });
    expect(result.json.reports[0]).toMatchObject({ database: 'source', dryRun: true });
    expect(result.json.reports[0].keep.length).toBeGreaterThan(0);
  });

  it('reports the overview and the retention timeline to a viewer: ages against the schedule, next runs, and the prune plan’s own keep decision', async () => {
    expect((await call('GET', '/v1/whoami', 'operator')).json).toEqual({ name: 'operator-bot', role: 'operator' });
    const { status, json } = await call('GET', '/v1/status', 'viewer');
    expect(status).toBe(200);
    expect(json.timezone).toBe('UTC');
    const now = Date.parse(json.now);
    expect(Math.abs(now - Date.now())).toBeLessThan(60_000);
    const newest = (await call('GET', '/v1/backups?database=source&type=dump&page_size=1', 'viewer')).json.backups[0];
    const [source, target] = json.databases;
    expect(source).toMatchObject({ name: 'source', error: null, binlog: null, running_jobs: [] });
    // The file's "0 0 1 1 *": next on the 1st of January, a year between runs.
    const next = new Date(Date.UTC(new Date(now).getUTCFullYear() + 1, 0, 1));
    const year = (Date.UTC(next.getUTCFullYear() + 1, 0, 1) - next.getTime()) / 1000;
    expect(source.types).toEqual([
      {
        type: 'dump',
        schedules: ['cron "0 0 1 1 *" (UTC)'],
        next_run: next.toISOString(),
        expected_interval_seconds: year,
        last_success: { id: newest.id, trigger: 'manual', completed_at: newest.completed_at, size_bytes: newest.size_bytes },
        age_seconds: Math.max(0, Math.round((now - Date.parse(newest.completed_at)) / 1000)),
        last_failure: null,
      },
    ]);
    // An entry with a schedule and no backup yet.
    expect(target).toMatchObject({ name: 'copy', types: [{ type: 'dump', last_success: null, age_seconds: null, expected_interval_seconds: year }] });
    expect((await call('GET', '/v1/status?database=copy', 'viewer')).json.databases.map((d: { name: string }) => d.name)).toEqual(['copy']);
    expect((await call('GET', '/v1/status?database=nope', 'viewer')).json).toEqual({ error: 'querystring.database: no database entry named nope', hint: 'the configuration names: source, copy' });

    const retention = await call('GET', '/v1/retention?database=source', 'viewer');
    expect(retention.status).toBe(200);
    const plan = (await call('POST', '/v1/prune', 'operator', { database: 'source', dry_run: true })).json.reports[0];
    const kept = retention.json.backups.filter((b: { keep: boolean }) => b.keep);
    expect(kept.map((b: { id: string; reasons: string[] }) => [b.id, b.reasons])).toEqual(plan.keep.map((k: { id: string; reasons: string[] }) => [k.id, k.reasons]));
    expect(retention.json.backups.filter((b: { keep: boolean }) => !b.keep).map((b: { id: string }) => b.id)).toEqual(plan.remove.map((r: { id: string }) => r.id));
    expect(retention.json.backups[0]).toMatchObject({ type: 'dump', trigger: 'manual', size_bytes: expect.any(Number), created_at: expect.any(String), problem: null });
    expect(await call('GET', '/v1/retention', 'viewer')).toMatchObject({ status: 400, json: { error: 'querystring.database: missing' } });
  });

  it('cancels a running job, and says when a job has finished or does not exist', async () => {
    expect((await call('POST', '/v1/jobs/job-nope/cancel', 'operator')).status).toBe(404);
    const { json } = await call('GET', '/v1/jobs', 'viewer');
    const finished = json.jobs.find((j: { status: string }) => j.status === 'succeeded');
    const again = await call('POST', `/v1/jobs/${finished.id}/cancel`, 'operator');
    expect(again.status).toBe(409);
    expect(again.json.error).toBe(`job ${finished.id} has already finished`);
    expect((await call('POST', `/v1/jobs/${finished.id}/cancel`, 'viewer')).status).toBe(403);
  });

  it('adds, fires, changes and removes a schedule; the file’s are listed read-only; API schedules survive a restart', async () => {
    const body = { database: 'source', type: 'dump', schedule: '*/2 * * * * *' };
    expect((await call('POST', '/v1/backups/schedules', 'operator', body)).status).toBe(403);
    const bad = await call('POST', '/v1/backups/schedules', 'admin', { ...body, schedule: 'every tuesday' });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatch(/^body\.schedule: invalid cron "every tuesday"/);
    const made = await call('POST', '/v1/backups/schedules', 'admin', body);
    expect(made.status, made.text).toBe(201);
    const id = made.json.schedule.id as string;
    expect(made.json.schedule).toMatchObject({ database: 'source', type: 'dump', source: 'api', read_only: false, cron: '*/2 * * * * *', created_by: 'admin-bot', active: true });

    // It fires: a periodic backup job appears.
    await until(async () => ((await call('GET', '/v1/jobs', 'viewer')).json.jobs.some((j: { trigger: string; status: string }) => j.trigger === 'periodic' && j.status === 'succeeded') ? true : undefined), 'a periodic job of the API schedule');

    const listed = (await call('GET', '/v1/backups/schedules?database=source', 'viewer')).json.schedules;
    expect(listed).toContainEqual(expect.objectContaining({ id: 'file-source-0', source: 'file', read_only: true, cron: '0 0 1 1 *' }));
    expect(listed).toContainEqual(expect.objectContaining({ id, source: 'api' }));
    const fileChange = await call('PATCH', '/v1/backups/schedules/file-source-0', 'admin', { type: 'full' });
    expect(fileChange.status).toBe(409);
    expect(fileChange.json.error).toContain('comes from the configuration file');

    const changed = await call('PATCH', `/v1/backups/schedules/${id}`, 'admin', { schedule: { at: '03:00', timezone: 'Europe/Paris' } });
    expect(changed.status, changed.text).toBe(200);
    expect(changed.json.schedule).toMatchObject({ description: 'daily at 03:00 (Europe/Paris)', cron: '0 3 * * *', timezone: 'Europe/Paris', updated_at: expect.any(String) });
    expect((await call('PATCH', `/v1/backups/schedules/${id}`, 'admin', { colour: 'red' })).json.error).toBe('body.colour: unknown field');

    const kept = await call('POST', '/v1/backups/schedules', 'admin', { database: 'source', type: 'full', schedule: { at: '04:30' } });
    expect(kept.status).toBe(201);
    expect((await call('DELETE', `/v1/backups/schedules/${id}`, 'admin')).status).toBe(204);
    expect((await call('GET', `/v1/backups/schedules/${id}`, 'viewer')).status).toBe(404);

    await restartDaemon();
    const after = (await call('GET', '/v1/backups/schedules?database=source', 'viewer')).json.schedules;
    expect(after.map((v: { id: string }) => v.id)).toEqual(['file-source-0', kept.json.schedule.id]);
    expect(after[1]).toMatchObject({ type: 'full', description: 'daily at 04:30 (UTC)', next_run: expect.stringMatching(/T04:30:00/) });

    // A reload (SIGHUP) keeps them too.
    daemon?.child.kill('SIGHUP');
    await daemon?.waitFor('configuration reloaded');
    const reloaded = (await call('GET', '/v1/backups/schedules?database=source', 'viewer')).json.schedules;
    expect(reloaded.map((v: { id: string }) => v.id)).toEqual(['file-source-0', kept.json.schedule.id]);
  });

  it('`agent run-now` beside the daemon runs the backup in the daemon and reports its result; --local runs it in the CLI', async () => {
    const env = { ...sourceEnv(), TARGET_DB_PASSWORD: 'target-pw' };
    const before = (await call('GET', '/v1/jobs', 'viewer')).json.jobs.length;
    const result = await agent(['--config', configPath, 'run-now', '--database', 'source'], env);
    expect(result.exitCode, result.stderr).toBe(0);
    expect(result.stderr).toMatch(new RegExp(`^backing up source in the running daemon \\(http://127\\.0\\.0\\.1:${port}, job job-[0-9a-z]+-[0-9a-f]{8}\\)…`));
    expect(result.stdout).toMatch(/^source: dump backup \d{8}T\d{6}\.\d{3}Z-[0-9a-f]{6} completed in /);
    const jobs = (await call('GET', '/v1/jobs', 'viewer')).json.jobs;
    expect(jobs.length).toBe(before + 1);
    expect(jobs[0]).toMatchObject({ kind: 'backup', trigger: 'api', requested_by: 'operator-bot', status: 'succeeded' });

    const local = await agent(['--config', configPath, 'run-now', '--database', 'source', '--local'], env);
    expect(local.exitCode, local.stderr).toBe(0);
    expect(local.stderr).toBe('backing up source…');
    expect((await call('GET', '/v1/jobs', 'viewer')).json.jobs.length).toBe(before + 1);
  });

  it('serves an OpenAPI document naming the endpoints', async () => {
    const doc = await call('GET', '/v1/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.json.openapi).toBe('3.1.0');
    expect(Object.keys(doc.json.paths)).toEqual(expect.arrayContaining(['/v1/backups', '/v1/backups/{id}', '/v1/backups/{id}/download', '/v1/backups/schedules', '/v1/backups/schedules/{id}', '/v1/jobs', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel', '/v1/prune', '/v1/restores', '/v1/restores/{id}', '/v1/status', '/v1/retention', '/v1/whoami']));
    expect(Object.keys(doc.json.paths).filter((p) => p.startsWith('/ui'))).toEqual([]);
    const restoreBody = doc.json.paths['/v1/restores'].post.requestBody.content['application/json'].schema;
    expect(restoreBody.properties.identity).toMatchObject({ type: 'string', description: expect.stringContaining('never logged or returned') });
    expect(doc.json.paths['/v1/backups/{id}/download'].get.summary).toContain('Range: bytes=a-b');
  });

  it('limits each token to its rate: 429 past it, other tokens unaffected', async () => {
    // All at once, so they land in one 10 s window even on a loaded machine (one by one, they did not always).
    const statuses = await Promise.all(Array.from({ length: 130 }, async () => (await call('GET', '/v1/jobs', 'viewer')).status));
    expect(statuses.filter((s) => s !== 200 && s !== 429)).toEqual([]);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(120);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(10);
    const limited = await call('GET', '/v1/jobs', 'viewer');
    expect(limited.status).toBe(429);
    expect(limited.json.error).toMatch(/^rate limit: more than 120 requests in /);
    expect((await call('GET', '/v1/jobs', 'operator')).status).toBe(200);
  });

  it('refuses to restore a physical backup through the API, saying where it goes (400)', async () => {
    const started = await call('POST', '/v1/backups/schedules', 'operator', { database: 'source', type: 'full', schedule: 'once' });
    expect(started.status, started.text).toBe(202);
    const done = await until(async () => {
      const { json } = await call('GET', `/v1/jobs/${started.json.job.id}`, 'operator');
      return json.job.finished_at ? json.job : undefined;
    }, 'the full backup');
    expect(done.status, done.message).toBe('succeeded');
    const refused = await call('POST', '/v1/restores', 'admin', { database: 'source', target: 'copy', overwrite: true, backup_id: done.backup_id });
    expect(refused.status).toBe(400);
    expect(refused.json.error).toBe(`body.backup_id: backup ${done.backup_id} is a physical (full) backup: restore it with agent restore --datadir on the host`);
  });

  it('logs every API request with the token name, never a token', async () => {
    const audit = output()
      .split('\n')
      .filter((l) => l.includes('"api request"'))
      .map((l) => JSON.parse(l));
    expect(audit.length).toBeGreaterThan(20);
    expect(audit).toContainEqual(expect.objectContaining({ token: 'operator-bot', method: 'POST', path: '/v1/backups/schedules', status: 202 }));
    expect(audit).toContainEqual(expect.objectContaining({ token: null, status: 401 }));
    for (const token of Object.values(TOKENS)) expect(output()).not.toContain(token);
  });
});
