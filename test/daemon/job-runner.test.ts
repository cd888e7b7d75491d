// The job runner against the harness's real MariaDB and the endless-dump fixture: a job cancelled
// while it waits for a slot is reported (event, metrics, webhooks), not only returned.
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it, inject } from 'vitest';
import { configSchema } from '../../src/config/schema.ts';
import { normalizeConfig } from '../../src/config/normalize.ts';
import { DaemonEventBus, type JobFailed } from '../../src/daemon/events.ts';
import { JobRunner } from '../../src/daemon/job-runner.ts';
import { openStorage } from '../../src/storage/open.ts';
import { FIXTURES, testDir } from '../helpers.ts';

describe('job runner', () => {
  it('a queued job cancelled before it starts emits job:failure with a short message', async () => {
    const record = await testDir('runner-record');
    process.env['RECORD_DIR'] = record;
    const m = inject('mariadb');
    const entry = (name: string) => ({ name, host: '127.0.0.1', port: m.port, user: 'agent', password: m.password });
    const { config } = normalizeConfig(
      configSchema.parse({
        storage: { type: 'local', path: await testDir('runner-store') },
        tools: { dump: join(FIXTURES, 'endless-dump.sh') },
        databases: [entry('first'), entry('second')],
      }),
    );
    const bus = new DaemonEventBus();
    const failures: JobFailed[] = [];
    bus.on('job:failure', (e) => failures.push(e));
    const started: string[] = [];
    bus.on('job:start', (e) => started.push(e.database));
    const runner = new JobRunner({ bus, logger: pino({ level: 'silent' }), config: () => config, storage: (d) => openStorage(d.storage), maxConcurrent: () => 1 });
    const first = runner.run('first', 'dump', 'periodic');
    const second = runner.run('second', 'dump', 'periodic');
    // Until the first job has started (a loaded machine may take seconds to connect): then the
    // second is certainly still queued behind it.
    const deadline = Date.now() + 60_000;
    while (started.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual(['first']);
    runner.cancelAll(new Error('cancelled by a second SIGTERM'));
    expect((await second).status).toBe('failed');
    expect((await first).status).toBe('failed');
    expect(started).toEqual(['first']);
    const queued = failures.find((f) => f.database === 'second');
    expect(queued?.message).toBe('backup of second cancelled before it started: cancelled by a second SIGTERM');
  });
});
