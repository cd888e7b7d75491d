// The restore depth of `agent verify` with the binlog replayed up to the last recoverable time:
// a throwaway source MariaDB whose binlog the real `agent daemon` archives into s3rver; a dump,
// then writes after it; verifyByRestore restores the dump into its own server and replays the
// archive past the dump. The figures recorded with the dump describe the dump's point, not the
// replayed one: the restore test says it did not compare them. Without an archive the replay
// is a finding.
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/catalog/manifest.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { AgentConfig } from '../../src/config/normalize.ts';
import { startSandbox, type Sandbox } from '../../src/sandbox/mariadb-sandbox.ts';
import { sampleDataSql } from '../../src/sandbox/sample-data.ts';
import { openStorage } from '../../src/storage/open.ts';
import { takeTableFigures } from '../../src/backup/table-figures.ts';
import { verifyByRestore } from '../../src/verify/restore-depth.ts';
import { captureArchived, captureConnected } from '../harness/binlog-capture.ts';
import { freePort } from '../harness/child-process.ts';
import { AGENT, agent, storageYaml, testDir, writeConfig } from '../helpers.ts';

const PASSWORD = 'replay-pw';
let source: Sandbox;
let configPath: string;
let config: AgentConfig;
let daemon: ResultPromise | undefined;
let daemonPort: number;
const daemonLog: string[] = [];

beforeAll(async () => {
  const dir = await testDir('verify-replay');
  const port = await freePort();
  source = await startSandbox({ dir: join(dir, 'source'), port, serverId: 31, agentPassword: PASSWORD });
  await source.sql(sampleDataSql('shop', 200));
  daemonPort = await freePort();
  const connection = ['    host: 127.0.0.1', `    port: ${port}`, '    user: agent', '    password: ${SOURCE_PW}', '    schemas: [shop]'];
  configPath = await writeConfig(
    dir,
    [
      'storage:',
      await storageYaml('s3'),
      'daemon:',
      `  listen_port: ${daemonPort}`,
      '  catch_up: false',
      'databases:',
      '  - name: source',
      ...connection,
      '    verify: { record_figures: true }',
      `    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ${join(dir, 'spool')} }`,
      '  - name: unarchived',
      ...connection,
      '',
    ].join('\n'),
  );
  config = loadConfig(configPath, { ...process.env, SOURCE_PW: PASSWORD });
  daemon = execa(process.execPath, [AGENT, '--config', configPath, 'daemon'], { env: { SOURCE_PW: PASSWORD }, reject: false, stdin: 'ignore', buffer: false, all: true });
  daemon.all?.on('data', (chunk: Buffer) => daemonLog.push(chunk.toString()));
  await captureConnected(daemonPort, 'source', () => daemonLog.join(''));
}, 60_000);

afterAll(async () => {
  daemon?.kill('SIGTERM');
  await daemon;
  await source?.stop();
});

async function runNow(database: string): Promise<Manifest> {
  const result = await agent(['--config', configPath, 'run-now', '--database', database, '--json'], { SOURCE_PW: PASSWORD });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as Manifest[])[0] as Manifest;
}

/** A logger whose JSON lines are kept, to see what the replay did. */
function recordingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      callback();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** Waits until the capture has archived everything written up to now. */
const archived = () => captureArchived(daemonPort, 'source', () => daemonLog.join(''));

describe('verify --depth restore with the binlog replayed', () => {
  it('restores a dump, replays the archive to the last recoverable time, and does not compare figures of the dump’s point', async () => {
    const dump = await runNow('source');
    expect(dump.figures?.at).toEqual(dump.binlog);
    await sleep(1100); // the writes land in a later second than the dump
    await source.sql("INSERT INTO shop.customers (name, email, created_at) VALUES ('after the dump', 'after@example.com', NOW(6)); UPDATE shop.orders SET total = total + 1 WHERE id <= 10");
    await archived();

    const storage = await openStorage(config.databases[0]?.storage as AgentConfig['databases'][number]['storage']);
    try {
      const { logger, lines } = recordingLogger();
      const notices: string[] = [];
      const entry = config.databases.find((d) => d.name === 'source');
      if (!entry) throw new Error('no entry');
      const problems = await verifyByRestore({ config, storage, database: entry, chain: [dump], replayBinlog: true, logger, onNotice: (m) => notices.push(m) });
      expect(problems).toEqual([]);
      expect(notices).toEqual([
        `the figures recorded with backup ${dump.id} were not compared: they describe the backup's point, and the binlog was replayed past it; its tables were checked against themselves only (CHECK TABLE, CHECKSUM TABLE, row counts)`,
      ]);
      const replayed = lines.find((l) => l['msg'] === 'binlog replayed to the last recoverable time');
      expect(replayed?.['transactions']).toBeGreaterThanOrEqual(1);

      // The same through the command: --replay-binlog reaches the restore depth.
      const cli = await agent(['--config', configPath, 'verify', '--database', 'source', '--backup', dump.id, '--depth', 'restore', '--replay-binlog', '--json'], { SOURCE_PW: PASSWORD });
      expect(cli.exitCode, cli.stderr).toBe(0);
      const [report] = JSON.parse(cli.stdout) as { ok: boolean; depth: string; notes: string[] }[];
      expect(report).toMatchObject({ ok: true, depth: 'restore' });
      expect(report?.notes).toEqual([notices[0]]);
      const usage = await agent(['--config', configPath, 'verify', '--database', 'source', '--replay-binlog'], { SOURCE_PW: PASSWORD });
      expect(usage.exitCode).toBe(2);
      expect(usage.stderr).toContain('--replay-binlog: the binlog is replayed only by a restore; add --depth restore (here --depth archive)');

      // An entry whose binlog is not archived: asking for the replay is a finding, named.
      const unarchived = await runNow('unarchived');
      const entry2 = config.databases.find((d) => d.name === 'unarchived');
      if (!entry2) throw new Error('no entry');
      const missing = await verifyByRestore({ config, storage, database: entry2, chain: [unarchived], replayBinlog: true, logger: pino({ level: 'silent' }) });
      expect(missing).toEqual([
        { backupId: unarchived.id, message: `restore failed: the binlog archive holds nothing to replay from backup ${unarchived.id}'s position (${unarchived.binlog?.file}:${unarchived.binlog?.position})` },
      ]);
      const refused = await agent(['--config', configPath, 'verify', '--database', 'unarchived', '--depth', 'restore', '--replay-binlog'], { SOURCE_PW: PASSWORD });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr).toContain(`error: unarchived/${unarchived.id}: restore failed: the binlog archive holds nothing to replay from backup ${unarchived.id}'s position`);
    } finally {
      await storage.close();
    }
  });

  it("compares figures taken after the backup once the archive is replayed to their GTID, and catches a difference there", async () => {
    const dump = await runNow('source');
    await sleep(1100);
    await source.sql("INSERT INTO shop.customers (name, email, created_at) VALUES ('between', 'between@example.com', NOW(6)), ('between 2', 'between2@example.com', NOW(6)); DELETE FROM shop.orders WHERE id <= 5");
    await archived();
    const entry = config.databases.find((d) => d.name === 'source');
    if (!entry) throw new Error('no entry');
    // Figures whose snapshot is later than the dump's, as when writes land between the two snapshots.
    const taken = await takeTableFigures({ database: 'source', connection: entry.connection, schemas: ['shop'], logger: pino({ level: 'silent' }) });
    const later = taken.figures;
    if (!later) throw new Error(`no figures: ${JSON.stringify(taken)}`);
    expect(later.at).not.toEqual(dump.binlog);
    const customers = later.tables.find((t) => t.table === 'customers')?.rows ?? -1;
    expect(customers).toBeGreaterThan(dump.figures?.tables.find((t) => t.table === 'customers')?.rows ?? Infinity);

    const storage = await openStorage(entry.storage);
    try {
      const { logger, lines } = recordingLogger();
      const notices: string[] = [];
      const problems = await verifyByRestore({ config, storage, database: entry, chain: [{ ...dump, figures: later }], logger, onNotice: (m) => notices.push(m) });
      expect(problems).toEqual([]);
      expect(notices).toEqual([]);
      expect(lines.find((l) => l['msg'] === "binlog replayed to the figures' point")).toMatchObject({ to: later.at.gtid });

      // The same, with figures that say one more customer row: caught after the replay.
      const wrong = { ...later, tables: later.tables.map((t) => (t.table === 'customers' ? { ...t, rows: t.rows + 1 } : t)) };
      const caught = await verifyByRestore({ config, storage, database: entry, chain: [{ ...dump, figures: wrong }], logger: pino({ level: 'silent' }) });
      expect(caught).toEqual([{ backupId: dump.id, message: `shop.customers: ${customers} rows, ${customers + 1} at backup time` }]);
    } finally {
      await storage.close();
    }
  });
});
