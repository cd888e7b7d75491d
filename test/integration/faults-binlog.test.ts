// Fault tests with real processes, for `agent binlog capture` under a write load: MariaDB killed
// with SIGKILL mid-capture and restarted, then the capture process itself killed with SIGKILL in
// the middle of a segment upload (s3rver behind a fault proxy that holds the upload after 16 KiB)
// and started again. (The daemon's capture across a server crash is in pitr.test.ts.) Afterwards
// the archive has no gap and no overlap, and a point-in-time restore to the last write's GTID
// lands exactly on the source's checksums.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import mysql from 'mysql2/promise';
import { stringify, parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFaultProxy, type FaultProxy } from '../harness/fault-proxy.ts';
import { alive, FAULT_PASSWORD, faultEnv, spawnAgent, startFaultSource, waitFor, type AgentProcess, type FaultSource } from '../harness/fault-source.ts';
import { createS3Bucket, startS3Server, type S3Server } from '../harness/s3-server.ts';
import { assertStoreConsistent, freshTarget, TARGET_PASSWORD } from '../harness/store-consistency.ts';
import { agent, testDir, writeConfig } from '../helpers.ts';

let source: FaultSource;
let s3: S3Server;
let proxy: FaultProxy;
let dir: string;
let dataDir: string;
let config: string;
const captures: AgentProcess[] = [];
/** The killed capture's tool processes still running right after the kill. */
let orphansAfterKill: number[] | undefined;

beforeAll(async () => {
  source = await startFaultSource('faults-binlog', { sampleRows: 200, bulkRows: 0 });
  await source.sql(`CREATE TABLE ${source.schema}.load_test (id BIGINT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(255) NOT NULL) ENGINE=InnoDB`);
  dir = await testDir('faults-binlog-s3');
  dataDir = join(dir, 'data');
  s3 = await startS3Server({ dir: dataDir, runDir: join(dir, 'run') });
  await createS3Bucket(s3.endpoint, 'binlog');
  proxy = await startFaultProxy({ upstreamPort: s3.port });
  config = await writeConfig(
    dir,
    [
      'storage:',
      ...['type: s3', 'bucket: binlog', 'prefix: backups', `endpoint: http://127.0.0.1:${proxy.port}`, 'force_path_style: true',
        'access_key_id: S3RVER', 'secret_access_key: S3RVER', 'checksum: when_required'].map((l) => `  ${l}`),
      // Uncompressed segments: their bodies are what the proxy holds, never a small manifest.
      'compression: { algorithm: none }',
      'prune: { orphan_grace: 1s }',
      'databases:',
      '  - name: source',
      '    host: 127.0.0.1',
      `    port: ${source.port}`,
      '    user: agent',
      '    password: ${SOURCE_PW}',
      `    schemas: [${source.schema}]`,
      '    retention: { manual: { keep_last: 10 } }',
      `    binlog: { enabled: true, segment_age: 1s, segment_size_mb: 1, spool_dir: ${join(dir, 'spool')} }`,
      '',
    ].join('\n'),
  );
});

afterAll(async () => {
  for (const capture of captures) if (alive(capture.pid)) process.kill(capture.pid, 'SIGKILL');
  await killOrphanedBinlogTools();
  await proxy?.close();
  await s3?.stop();
  await source?.stop();
});

/**
 * A capture killed with SIGKILL cannot stop its `mariadb-binlog` child: the child runs on until the
 * server drops it. Found by the spool directory only this test uses, and killed by pid.
 */
async function orphanedBinlogTools(): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmd = await readFile(join('/proc', entry, 'cmdline'), 'utf8').catch(() => '');
    if (cmd.includes(`--result-file=${join(dir, 'spool')}/`) && !captures.some((c) => c.pid === Number(entry))) found.push(Number(entry));
  }
  return found;
}

async function killOrphanedBinlogTools(): Promise<void> {
  for (const pid of await orphanedBinlogTools()) if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Inserts rows on its own connection until stopped; reconnects while the server is down. */
function writeLoad(): { stop(): Promise<number> } {
  let running = true;
  let rows = 0;
  const done = (async () => {
    while (running) {
      let db: mysql.Connection | undefined;
      try {
        db = await mysql.createConnection({ host: '127.0.0.1', port: source.port, user: 'agent', password: FAULT_PASSWORD });
        while (running) {
          await db.query(`INSERT INTO ${source.schema}.load_test (v) VALUES (CONCAT(SHA2(RAND(), 256), SHA2(RAND(), 256)))`);
          rows++;
          if (rows % 20 === 0) await sleep(5);
        }
      } catch (err) {
        if (!String(err).match(/ECONNREFUSED|ECONNRESET|closed|Lost connection|PROTOCOL_CONNECTION_LOST|shutdown/i)) throw err;
        await sleep(100); // the server is restarting
      } finally {
        await db?.end().catch(() => undefined);
      }
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

/** Committed segments in s3rver's files, as `<file>/<start>-<end>`. */
async function segmentsOnDisk(): Promise<string[]> {
  const root = join(dataDir, 'binlog', 'backups', 'source', 'binlog');
  const entries = await readdir(root, { recursive: true }).catch(() => [] as string[]);
  // Segment manifests only: not the archive's complete-through marker (binlog/complete-through.json).
  return entries
    .filter((e) => e.endsWith('.json._S3rver_object'))
    .map((e) => e.replace('.json._S3rver_object', ''))
    .filter((e) => e !== 'complete-through')
    .sort();
}

function startCapture(): AgentProcess {
  const capture = spawnAgent(['--config', config, 'binlog', 'capture']);
  captures.push(capture);
  return capture;
}

interface ArchiveSummary {
  segments: number;
  runs: { from: { file: string; position: number }; to: { file: string; position: number; gtid: string | null } }[];
  gaps: unknown[];
  base: string | null;
}

async function archive(): Promise<ArchiveSummary> {
  const result = await agent(['--config', config, 'binlog', 'list', '--json'], faultEnv);
  expect(result.exitCode).toBe(0);
  return (JSON.parse(result.stdout) as ArchiveSummary[])[0] as ArchiveSummary;
}

describe('agent binlog capture across kills', () => {
  it('MariaDB and then the capture itself killed with SIGKILL: no gap, no overlap, PITR to the last GTID restores equal', async () => {
    const base = await agent(['--config', config, 'run-now', '--json'], faultEnv);
    expect(base.exitCode).toBe(0);
    const baseId = (JSON.parse(base.stdout) as { id: string }[])[0]?.id ?? '';
    const recorded = new Map([[baseId, await source.checksums(source.sql)]]);

    let capture = startCapture();
    const load = writeLoad();
    await waitFor(async () => (await segmentsOnDisk()).length >= 2, 'two archived segments', 60_000);

    // 1. The server dies under the capture and comes back (crash recovery, a new binlog file).
    await source.kill();
    await source.restart();
    const newFile = (await source.sql('SHOW MASTER STATUS')).split('\t')[0] ?? '';
    await waitFor(async () => (await segmentsOnDisk()).some((s) => s.startsWith(`${newFile}/`)), `a segment of ${newFile}, which the restarted server writes`, 60_000);

    // 2. The capture dies mid-upload: the store has received 16 KiB of a segment body and no more.
    await proxy.stallAfter(16 * 1024);
    process.kill(capture.pid, 'SIGKILL');
    expect((await capture.result).signal).toBe('SIGKILL');
    proxy.cutConnections();
    // The kernel kills the tool as its parent dies: allow it a moment to be gone, no more.
    for (let i = 0; i < 50 && (orphansAfterKill = await orphanedBinlogTools()).length > 0; i++) await new Promise((r) => setTimeout(r, 100));

    const archivedBefore = (await segmentsOnDisk()).length;
    capture = startCapture();
    await waitFor(async () => (await segmentsOnDisk()).length >= archivedBefore + 2, 'the restarted capture to archive two segments under the load', 60_000);
    const rows = await load.stop();
    expect(rows).toBeGreaterThan(100);
    await source.sql(`INSERT INTO ${source.schema}.audit (what, at) VALUES ('last write', NOW(6))`);
    const lastGtid = await source.sql('SELECT @@gtid_binlog_pos');
    const expected = await source.checksums(source.sql);
    await waitFor(async () => (await archive()).runs.at(-1)?.to.gtid === lastGtid, `the archive to reach GTID ${lastGtid}`, 60_000);
    process.kill(capture.pid, 'SIGTERM');
    expect((await capture.result).exitCode).toBe(0);

    const summary = await archive();
    expect(summary.gaps).toEqual([]);
    expect(summary.runs).toHaveLength(1);
    expect(summary.base).toBe(baseId);
    // Byte ranges tile every file from 0: nothing archived twice, nothing skipped.
    // A merged object (`.L<level>-<window>`, made by the capture's compaction) covers its sources,
    // which stay until it is committed: a range inside one already counted is no second copy.
    const ranges = (await segmentsOnDisk())
      .map((s) => /^(.+)\/(\d+)-(\d+)(\.L\d+-[^/]+)?$/.exec(s))
      .map((m) => ({ file: m?.[1] ?? '', start: Number(m?.[2]), end: Number(m?.[3]) }))
      .sort((a, b) => (a.file !== b.file ? (a.file < b.file ? -1 : 1) : a.start - b.start || b.end - a.end));
    let covered = { file: '', end: 0 };
    for (const r of ranges) {
      if (r.file !== covered.file) covered = { file: r.file, end: 0 };
      if (r.end <= covered.end) continue;
      expect(r.start, `segment ${r.file}:${r.start}-${r.end}`).toBe(covered.end);
      covered.end = r.end;
    }

    // The killed capture's half-sent segment: never committed. s3rver (unlike S3) keeps what it
    // received of a PutObject body under the key; prune removes such data as an orphan. The base is
    // restored below, with the binlog on top, so these checks skip their own restore.
    const check = { env: faultEnv, recorded, checksums: source.checksums, restore: false };
    const afterKill = await assertStoreConsistent(config, check);
    expect(afterKill.listed).toEqual([baseId]);
    expect(afterKill.strays).toEqual([expect.stringMatching(/^source\/binlog\/mysql-bin\.\d+\/\d{12}-\d{12}\.binlog$/)]);
    const pruned = await agent(['--config', config, 'prune', '--json'], faultEnv);
    expect(pruned.exitCode).toBe(0);
    expect((JSON.parse(pruned.stdout) as { orphansRemoved: string[] }[])[0]?.orphansRemoved).toEqual(afterKill.strays);
    expect(await assertStoreConsistent(config, check)).toEqual({ listed: [baseId], strays: [] });

    const target = await freshTarget();
    try {
      const yaml = parse(await readFile(config, 'utf8')) as { databases: unknown[] };
      yaml.databases.push({ name: 'target', host: '127.0.0.1', port: target.port, user: 'agent', password: TARGET_PASSWORD });
      const targetConfig = await writeConfig(await testDir('faults-pitr'), stringify(yaml));
      const restored = await agent(['--config', targetConfig, 'restore', '--database', 'source', '--target', 'target', '--no-binlog', '--to-gtid', lastGtid], faultEnv);
      expect(restored.exitCode, restored.stderr).toBe(0);
      expect(restored.stdout).toContain(`the last replayed transaction is ${lastGtid}`);
      expect(await source.checksums(target.sql)).toBe(expected);
      expect(await target.sql(`SELECT COUNT(*) FROM ${source.schema}.load_test`)).toBe(await source.sql(`SELECT COUNT(*) FROM ${source.schema}.load_test`));
    } finally {
      await target.stop();
    }
  }, 300_000);

  // A SIGKILL of `agent binlog capture` must not leave its `mariadb-binlog --stop-never` child
  // running (holding a replication connection, writing into the spool): tools are started with
  // the kernel's parent-death signal (setpriv --pdeathsig KILL).
  it('a capture killed with SIGKILL leaves no mariadb-binlog running', () => {
    expect(orphansAfterKill).toBeDefined();
    expect(orphansAfterKill).toEqual([]);
  });
});
