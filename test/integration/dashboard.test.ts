// The web dashboard in a real headless browser (Debian's chromium, driven by playwright-core)
// against a real `agent daemon` with the harness's MariaDB and s3rver behind it: sign in, the
// backup list, a manual backup followed to its end, a schedule made and changed from the settings
// page, a download whose SHA-256 matches the manifest, a restore with its typed confirmation, and
// a viewer who is offered none of it (and gets 403 when forcing it). Screenshots go to test-results/.
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { freePort } from '../harness/child-process.ts';
import { apiTokenLines, startDaemon, type DaemonProcess } from '../harness/daemon-process.ts';
import { createS3Bucket, s3Client } from '../harness/s3-server.ts';
import type { Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { agent, freshServer, REPO, sourceConnectionYaml, sourceEnv, sourceSql, testDir, uniqueName } from '../helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKENS = { viewer: 'view'.repeat(10), operator: 'oper'.repeat(10), admin: 'admi'.repeat(10) } as const;
type Role = keyof typeof TOKENS;
const SHOTS = join(REPO, 'test-results');

describe('the web dashboard', () => {
  const schema = uniqueName('ui').replace('-', '_');
  const bucket = uniqueName('ui-bkt');
  let dir: string;
  let port: number;
  let daemon: DaemonProcess | undefined;
  let browser: Browser;
  let base: string;
  /** A second entry with binlog archiving, on a server of its own. */
  let orders: Sandbox;

  const call = async (method: string, path: string, role: Role, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKENS[role]}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, json: (await response.json()) as any };
  };

  const until = async <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n${daemon?.output().slice(-4000) ?? ''}`);
      await sleep(250);
    }
  };

  /** The manifest of a backup, read from s3rver where the daemon stored it. */
  const manifestOf = async (location: string) => {
    const match = /^s3:\/\/([^/]+)\/(.+?)\/?$/.exec(location);
    if (!match) throw new Error(`not an s3 location: ${location}`);
    const client = s3Client(inject('s3').endpoint);
    try {
      const listed = await client.send(new ListObjectsV2Command({ Bucket: match[1], Prefix: `${match[2]}/` }));
      const key = listed.Contents?.map((o) => o.Key ?? '').find((k) => k.endsWith('/manifest.json'));
      if (!key) throw new Error(`no manifest under ${location}: ${JSON.stringify(listed.Contents?.map((o) => o.Key))}`);
      const answer = await client.send(new GetObjectCommand({ Bucket: match[1], Key: key }));
      return JSON.parse((await answer.Body?.transformToString()) ?? '');
    } finally {
      client.destroy();
    }
  };

  const signIn = async (role: Role, viewport = { width: 1280, height: 900 }): Promise<Page> => {
    const context = await browser.newContext({ viewport, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 40[13]/.test(m.text())) errors.push(m.text());
    });
    (page as Page & { jsErrors: string[] }).jsErrors = errors;
    const response = await page.goto(`${base}/ui/`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('#token').fill(TOKENS[role]);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#who').textContent(), { timeout: 30_000 }).toBe(`${role}-bot (${role})`);
    // The token is in the tab's session storage, never in the address.
    expect(page.url()).not.toContain(TOKENS[role]);
    expect(await page.evaluate(() => sessionStorage.getItem('backup-agent-token'))).toBe(TOKENS[role]);
    return page;
  };

  beforeAll(async () => {
    // A missing browser fails the test: the dashboard is not tested without one.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (apt-get install chromium)`);
    await sourceSql(sampleDataSql(schema, 300));
    await createS3Bucket(inject('s3').endpoint, bucket);
    orders = await freshServer('dashboard-orders');
    await orders.sql(sampleDataSql('orders', 100));
    dir = await testDir('dashboard');
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const config = join(dir, 'agent.yaml');
    await writeFile(
      config,
      [
        'timezone: Europe/Paris',
        'storage:',
        '  type: s3',
        `  bucket: ${bucket}`,
        '  prefix: dash',
        `  endpoint: ${inject('s3').endpoint}`,
        '  force_path_style: true',
        '  access_key_id: S3RVER',
        '  secret_access_key: S3RVER',
        '  checksum: when_required',
        'daemon:',
        `  listen_port: ${port}`,
        '  catch_up: false',
        'api:',
        '  rate_limit: { max: 1000, window: 10s }',
        ...(await apiTokenLines(dir, TOKENS)),
        'databases:',
        '  - name: source',
        sourceConnectionYaml(),
        `    schemas: [${schema}]`,
        '    schedules:',
        '      - at: "03:00"',
        '  - name: orders',
        '    host: 127.0.0.1',
        `    port: ${orders.port}`,
        '    user: agent',
        '    password: ${TARGET_DB_PASSWORD}',
        '    schemas: [orders]',
        `    binlog: { enabled: true, segment_age: 200ms, spool_dir: ${join(dir, 'spool')} }`,
        '',
      ].join('\n'),
    );
    daemon = await startDaemon(config, { env: { ...sourceEnv(), TARGET_DB_PASSWORD: 'target-pw', STATE_DIRECTORY: join(dir, 'state') }, forwardStderr: true });
    // One backup before the browser comes: the list is not empty at sign-in.
    const first = await call('POST', '/v1/backups/schedules', 'operator', { database: 'source', type: 'dump', schedule: 'once' });
    expect(first.status).toBe(202);
    await until(async () => ((await call('GET', `/v1/jobs/${first.json.job.id}`, 'viewer')).json.job.status === 'succeeded' ? true : undefined), 'the first backup');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    await mkdir(SHOTS, { recursive: true });
  });

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop();
    await orders?.stop();
  });

  it('serves the page without a token, with a strict policy, and the API still wants one', async () => {
    const page = await fetch(`${base}/ui/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(
      "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    const etag = page.headers.get('etag') as string;
    expect((await fetch(`${base}/ui/`, { headers: { 'if-none-match': etag } })).status).toBe(304);
    expect((await fetch(`${base}/ui/app.js`)).headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect((await fetch(`${base}/ui/style.css`)).headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect((await fetch(`${base}/ui`, { redirect: 'manual' })).headers.get('location')).toBe('/ui/');
    const missing = await fetch(`${base}/ui/nope.js`);
    expect(missing.status).toBe(404);
    expect(await missing.json()).toEqual({ error: 'no such file of the web dashboard: nope.js' });
    expect((await fetch(`${base}/v1/status`)).status).toBe(401);
  });

  it('signs an admin in, shows the overview and the backups, runs a manual backup to its end and shows the new row', async () => {
    const page = await signIn('admin');
    // An entry scheduled (the default daily dump) with no backup yet is red.
    await expect.poll(() => page.locator('section.card[data-database="orders"] tr[data-type="dump"] .age').textContent(), { timeout: 30_000 }).toBe('no backup yet');
    expect(await page.locator('section.card[data-database="orders"] tr[data-type="dump"] .age').getAttribute('class')).toBe('age red');
    const card = page.locator('section.card[data-database="source"]');
    await expect.poll(() => card.locator('tr[data-type="dump"] .age').textContent(), { timeout: 30_000 }).toMatch(/ago$/);
    // A fresh backup of a daily schedule is on time.
    expect(await card.locator('tr[data-type="dump"] .age').getAttribute('class')).toBe('age ok');
    expect(await card.locator('tr[data-type="dump"]').textContent()).toContain('daily at 03:00 (Europe/Paris)');
    await card.locator('svg.timeline rect.bar.keep').first().waitFor();
    // The timeline shows retention's own decision and reasons.
    const retention = (await call('GET', '/v1/retention?database=source', 'viewer')).json;
    expect(retention.backups).toHaveLength(1);
    expect(retention.backups[0]).toMatchObject({ type: 'dump', keep: true, reasons: expect.arrayContaining([expect.any(String)]) });
    await card.locator('details.reasons summary').click();
    expect(await card.locator(`details.reasons li[data-id="${retention.backups[0].id}"]`).textContent()).toContain(`kept (${retention.backups[0].reasons.join(', ')})`);

    await page.locator('nav.main a[href="#backups"]').click();
    await expect.poll(() => page.locator('table.backups tbody tr').count(), { timeout: 30_000 }).toBe(1);
    const before = (await call('GET', '/v1/backups', 'viewer')).json.backups;
    expect(await page.locator('table.backups tbody tr').first().getAttribute('data-id')).toBe(before[0].id);
    expect(await page.locator('table.backups thead').textContent()).toContain('Created (Europe/Paris)');

    await page.locator('nav.main a[href="#overview"]').click();
    await card.getByRole('button', { name: 'Manual backup' }).click();
    const job = page.locator('#jobs li').first();
    await expect.poll(() => job.getAttribute('class'), { timeout: 90_000 }).toBe('job succeeded');
    expect(await job.textContent()).toMatch(/^Manual dump of source — succeeded/);
    const jobId = (await job.getAttribute('data-job')) as string;
    const finished = (await call('GET', `/v1/jobs/${jobId}`, 'viewer')).json.job;
    expect(finished).toMatchObject({ status: 'succeeded', requested_by: 'admin-bot', trigger: 'api' });

    await page.locator('nav.main a[href="#backups"]').click();
    await expect.poll(() => page.locator('table.backups tbody tr').count(), { timeout: 30_000 }).toBe(2);
    const newest = page.locator('table.backups tbody tr').first();
    expect(await newest.getAttribute('data-id')).toBe(finished.backup_id);
    expect(await newest.textContent()).toContain('manual');
    await page.screenshot({ path: join(SHOTS, 'dashboard-backups.png'), fullPage: true });
    await page.locator('nav.main a[href="#overview"]').click();
    await expect.poll(() => card.locator('svg.timeline rect.bar.keep').count(), { timeout: 30_000 }).toBe(2);
    await page.screenshot({ path: join(SHOTS, 'dashboard-overview.png'), fullPage: true });
    await page.locator('nav.main a[href="#backups"]').click();
    await expect.poll(() => page.locator('table.backups tbody tr').count(), { timeout: 30_000 }).toBe(2);
    // Filters: no periodic backup yet.
    await page.locator('select[name="trigger"]').selectOption('periodic');
    await page.getByText('No backups match.').waitFor();
    await page.locator('select[name="trigger"]').selectOption('');
    await expect.poll(() => page.locator('table.backups tbody tr').count(), { timeout: 30_000 }).toBe(2);

    // A phone: the same page, stacked.
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const small = await phone.newPage();
    await small.goto(`${base}/ui/`);
    await small.locator('#token').fill(TOKENS.viewer);
    await small.getByRole('button', { name: 'Sign in' }).click();
    await small.locator('section.card[data-database="source"] tr[data-type="dump"]').waitFor();
    await small.screenshot({ path: join(SHOTS, 'dashboard-phone.png'), fullPage: true });
    await phone.close();
    expect((page as Page & { jsErrors: string[] }).jsErrors).toEqual([]);
    await page.context().close();
  });

  it('downloads a backup whose SHA-256 matches its manifest', async () => {
    const page = await signIn('admin');
    await page.locator('nav.main a[href="#backups"]').click();
    const row = page.locator('table.backups tbody tr').last();
    await row.waitFor();
    const id = (await row.getAttribute('data-id')) as string;
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('button', { name: 'Download' }).click()]);
    const bytes = await readFile((await download.path()) as string);
    const backup = (await call('GET', `/v1/backups/${id}`, 'viewer')).json;
    const manifest = await manifestOf(backup.location);
    expect(bytes.length).toBe(manifest.objects[0].sizeBytes);
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(manifest.objects[0].sha256);
    expect(download.suggestedFilename()).toBe(manifest.objects[0].key.split('/').at(-1));
    await page.context().close();
  });

  it("shows a backup's newest verification (agent verify) in the table and the API", async () => {
    const verified = await agent(['--config', join(dir, 'agent.yaml'), 'verify', '--database', 'source', '--latest'], { ...sourceEnv(), TARGET_DB_PASSWORD: 'target-pw' });
    expect(verified.exitCode, verified.stderr).toBe(0);
    const id = /verified source\/(\S+) at depth archive/.exec(verified.stdout)?.[1] as string;
    expect((await call('GET', `/v1/backups/${id}`, 'viewer')).json.verified).toMatchObject({ depth: 'archive', ok: true });
    const page = await signIn('viewer');
    await page.locator('nav.main a[href="#backups"]').click();
    const cell = page.locator(`table.backups tbody tr[data-id="${id}"] td[data-label="Verified"]`);
    await cell.waitFor();
    expect(await cell.textContent()).toBe('archive');
    await page.context().close();
  });

  it('adds and changes a schedule from the settings page; the file one stays read-only', async () => {
    const page = await signIn('admin');
    await page.locator('nav.main a[href="#settings"]').click();
    const fileRow = page.locator('tr[data-schedule="file-source-0"]');
    await fileRow.waitFor();
    expect(await fileRow.textContent()).toContain('configuration file (read-only)');
    expect(await fileRow.locator('button').count()).toBe(0);

    const form = page.locator('form.schedule-form');
    await form.locator('select[name="type"]').selectOption('dump');
    await form.locator('select[name="mode"]').selectOption('daily');
    await form.locator('input[name="at"]').fill('04:30');
    await form.locator('input[name="timezone"]').fill('America/New_York');
    await form.getByRole('button', { name: 'Add schedule' }).click();
    const made = await until(async () => {
      const { json } = await call('GET', '/v1/backups/schedules', 'viewer');
      return json.schedules.find((s: { source: string }) => s.source === 'api');
    }, 'the schedule in /v1/backups/schedules');
    expect(made).toMatchObject({ database: 'source', type: 'dump', description: 'daily at 04:30 (America/New_York)', timezone: 'America/New_York', created_by: 'admin-bot', read_only: false });
    const row = page.locator(`tr[data-schedule="${made.id}"]`);
    await row.waitFor();

    await row.getByRole('button', { name: 'Edit' }).click();
    const edit = page.locator('form.schedule-form');
    await edit.locator('select[name="mode"]').selectOption('cron');
    await edit.locator('input[name="cron"]').fill('15 */6 * * *');
    await edit.getByRole('button', { name: 'Save schedule' }).click();
    await until(async () => {
      const { json } = await call('GET', `/v1/backups/schedules/${made.id}`, 'viewer');
      return json.schedule.cron === '15 */6 * * *' ? true : undefined;
    }, 'the changed schedule');
    expect(await page.locator('#flash p.info').last().textContent()).toContain(`Saved schedule ${made.id}`);

    // A bad cron is refused as the API words it.
    await page.locator(`tr[data-schedule="${made.id}"]`).getByRole('button', { name: 'Edit' }).click();
    await page.locator('form.schedule-form input[name="cron"]').fill('not a cron');
    await page.locator('form.schedule-form').getByRole('button', { name: 'Save schedule' }).click();
    const shown = page.locator('#view .out p.error');
    await shown.waitFor();
    const answer = await call('PATCH', `/v1/backups/schedules/${made.id}`, 'admin', { schedule: { cron: 'not a cron' } });
    expect(answer.status).toBe(400);
    expect(await shown.textContent()).toContain(answer.json.error);
    await page.context().close();
  });

  it('restores a backup after the typed confirmation, and shows the 409 of a target holding data as the API words it', async () => {
    const page = await signIn('admin');
    await page.locator('nav.main a[href="#backups"]').click();
    const row = page.locator('table.backups tbody tr').first();
    await row.waitFor();
    const id = (await row.getAttribute('data-id')) as string;
    await row.getByRole('button', { name: 'Restore' }).click();
    const dialog = page.locator('#restore-dialog');
    const go = dialog.getByRole('button', { name: 'Restore' });
    expect(await go.isDisabled()).toBe(true);
    await dialog.locator('#restore-confirm').fill(id.slice(0, -1));
    expect(await go.isDisabled()).toBe(true);
    await dialog.locator('#restore-confirm').fill(id);
    expect(await go.isDisabled()).toBe(false);
    // The source's schemas hold data: without overwrite the API refuses and says why.
    await go.click();
    const refusal = dialog.locator('p.error');
    await refusal.waitFor();
    expect(await refusal.textContent()).toMatch(new RegExp(`^restore into source: schema ${schema} \\([^)]*\\) already holds data; nothing was written \\(send "overwrite": true`));
    await dialog.locator('#restore-overwrite').check();
    await go.click();
    const job = page.locator('#jobs li').first();
    await expect.poll(() => job.getAttribute('class'), { timeout: 90_000 }).toBe('job succeeded');
    expect(await job.textContent()).toContain(`Restore of ${id} into source — succeeded`);
    await page.context().close();
  });

  it('offers a viewer no backup, download, restore or schedule control, and the API refuses it when forced', async () => {
    const page = await signIn('viewer');
    const card = page.locator('section.card[data-database="source"]');
    await card.locator('tr[data-type="dump"]').waitFor();
    expect(await card.getByRole('button', { name: 'Manual backup' }).count()).toBe(0);
    await page.locator('nav.main a[href="#backups"]').click();
    await page.locator('table.backups tbody tr').first().waitFor();
    expect(await page.locator('table.backups button').count()).toBe(0);
    await page.locator('nav.main a[href="#settings"]').click();
    await page.locator('table.schedules tbody tr').first().waitFor();
    expect(await page.locator('form.schedule-form').count()).toBe(0);
    expect(await page.locator('table.schedules button').count()).toBe(0);
    expect(await page.getByText('Schedules are changed by admins.').count()).toBe(1);
    const forced = await page.evaluate(async () => {
      const token = sessionStorage.getItem('backup-agent-token');
      const response = await fetch('/v1/backups/schedules', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ database: 'source', type: 'dump', schedule: { at: '01:00' } }),
      });
      return { status: response.status, body: await response.json() };
    });
    expect(forced).toEqual({ status: 403, body: { error: 'the viewer role may not do this: it needs operator' } });
    const restore = await page.evaluate(async () => {
      const response = await fetch('/v1/restores', {
        method: 'POST',
        headers: { authorization: `Bearer ${sessionStorage.getItem('backup-agent-token')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ database: 'source', overwrite: true }),
      });
      return { status: response.status, body: await response.json() };
    });
    expect(restore).toEqual({ status: 403, body: { error: 'the viewer role may not do this: it needs admin' } });
    // Signing out forgets the token.
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.evaluate(() => sessionStorage.getItem('backup-agent-token'))).toBeNull();
    await page.context().close();
  });
  it('shows binlog archiving on the overview: healthy, connected, recoverable to a time, no gaps', async () => {
    const dump = await call('POST', '/v1/backups/schedules', 'operator', { database: 'orders', type: 'dump', schedule: 'once' });
    expect(dump.status).toBe(202);
    await until(async () => ((await call('GET', `/v1/jobs/${dump.json.job.id}`, 'viewer')).json.job.status === 'succeeded' ? true : undefined), 'the base backup of orders');
    await orders.sql("INSERT INTO orders.customers (name, email, created_at) VALUES ('late', 'late@example.com', NOW())");
    const binlog = await until(async () => {
      const { json } = await call('GET', '/v1/status?database=orders', 'viewer');
      const b = json.databases[0].binlog;
      return b?.health === 'healthy' && b.last_recoverable_at ? b : undefined;
    }, 'the capture to be healthy with a recoverable time');
    expect(binlog).toMatchObject({ connected: true, gaps: [], error: null });
    const page = await signIn('viewer');
    const card = page.locator('section.card[data-database="orders"]');
    await card.locator('.binlog').waitFor();
    expect(await card.locator('.binlog .health').textContent()).toBe('healthy');
    const line = (await card.locator('.binlog p').first().textContent()) as string;
    expect(line).toContain(' · connected');
    expect(line).toMatch(/ · recoverable to \d{4}-\d\d-\d\d \d\d:\d\d:\d\d CES?T$/);
    expect(await card.locator('.binlog').textContent()).toContain('No gaps in the archive.');
    // No schedule of its own in the file: the default daily dump; the fresh backup is on time.
    expect(await card.locator('tr[data-type="dump"] .age').getAttribute('class')).toBe('age ok');
    await page.context().close();
  });
});
